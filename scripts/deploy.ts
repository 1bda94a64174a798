import { access, readdir, readFile, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { network } from "hardhat";
import { createPublicClient, http, type Address, type Hex, type PublicClient } from "viem";
import OpenDIN from "../ignition/modules/OpenDIN.ts";
import { contractsWithoutCode, readDeployment, writeDeployment, type Deployment } from "./deployment.ts";
import { parseArgsProblem } from "./cli/cliError.ts";

export type DeployOptions = {
  rpcUrl: string;
  /** "devnet", "production", or a path to an Ignition parameters JSON file. */
  parameters: string;
  /** Deployer key; without one the node's first unlocked account deploys (devnet). */
  privateKey?: Hex;
  /** Where to write the deployment file. */
  out?: string;
  /**
   * Keep Ignition's journal (under ignition/deployments/chain-<id>) so an interrupted deployment
   * resumes. Off for throwaway chains, where a journal from an earlier chain would mislead Ignition.
   */
  keepJournal?: boolean;
  /** The kept journal's folder under ignition/deployments (default chain-<chain id>). */
  journalName?: string;
};

const parametersDir = fileURLToPath(new URL("../ignition/parameters/", import.meta.url));
const ignitionDir = fileURLToPath(new URL("../ignition/deployments/", import.meta.url));

/** Deploys the OpenDIN contract set with the Ignition module and returns (and writes) the deployment. */
export async function deployOpenDin(options: DeployOptions): Promise<Deployment> {
  const parameterSet = options.parameters;
  const parametersPath = await parametersFile(parameterSet);

  const publicClient = createPublicClient({ transport: http(options.rpcUrl) });
  const chainId = await publicClient.getChainId();

  const deploymentId = options.keepJournal ? (options.journalName ?? `chain-${chainId}`) : `throwaway-${chainId}-${process.pid}-${Date.now()}`;
  if (options.keepJournal) await refuseStaleJournal(publicClient, options.rpcUrl, `${ignitionDir}${deploymentId}`);
  else if (options.out) await refuseLiveOut(publicClient, chainId, options.out);

  const connection = await network.connect({
    network: "localhost",
    override: { url: options.rpcUrl, ...(options.privateKey ? { accounts: [options.privateKey] } : {}) },
  });
  try {
    const deployed = await connection.ignition.deploy(OpenDIN, { parameters: parametersPath, deploymentId });
    const [deployer] = await (await connection.viem.getWalletClients())[0].getAddresses();
    const deployment: Deployment = {
      chainId,
      startBlock: (await firstBlock(`${ignitionDir}${deploymentId}/journal.jsonl`)) - 1,
      deployer,
      deployedAt: new Date().toISOString(),
      parameterSet,
      contracts: {
        DinToken: deployed.token.address,
        TimelockController: deployed.timelock.address,
        DinGovernor: deployed.governor.address,
        ProviderRegistry: deployed.registry.address,
        SlashingManager: deployed.slashingManager.address,
      },
    };
    if (options.out) await writeDeployment(options.out, deployment);
    return deployment;
  } finally {
    await connection.close();
    if (!options.keepJournal) await rm(`${ignitionDir}${deploymentId}`, { recursive: true, force: true });
  }
}

/** The parameters file of a set's name (ignition/parameters/<name>.json) or of a path; refused before anything is sent when there is none. */
async function parametersFile(parameterSet: string): Promise<string> {
  const named = /^[a-z]+$/.test(parameterSet);
  const path = named ? `${parametersDir}${parameterSet}.json` : parameterSet;
  if (await access(path).then(() => true, () => false)) return path;
  const sets = (await readdir(parametersDir)).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -".json".length));
  throw new Error(
    named
      ? `there is no parameter set "${parameterSet}": give one of ${sets.join(", ")} (ignition/parameters/), or a JSON file's path`
      : `the parameters file ${parameterSet} does not exist: give one of ${sets.join(", ")} (ignition/parameters/), or a JSON file's path`,
  );
}

/**
 * A kept journal names the contracts Ignition deployed; on a chain started afresh with the same id
 * they are not there, and Ignition, trusting the journal, reported them deployed (or went on from
 * them). Refused before anything is sent.
 */
async function refuseStaleJournal(client: PublicClient, rpcUrl: string, journalDir: string): Promise<void> {
  let deployed: Record<string, Address>;
  try {
    deployed = JSON.parse(await readFile(`${journalDir}/deployed_addresses.json`, "utf8")) as Record<string, Address>;
  } catch {
    return; // no journal, or nothing deployed yet
  }
  const missing = await contractsWithoutCode(client, deployed);
  if (missing.length > 0) {
    throw new Error(`Ignition's journal ${journalDir} names contracts the chain at ${rpcUrl} does not have (${missing.join(", ")}): it is another chain's with the same id, or this one was started afresh; move the journal aside to deploy anew`);
  }
}

/**
 * Without a kept journal a new set of contracts is deployed; over a deployment file whose contracts
 * are on this chain, the indexer and the CLI would be moved to the new set without a word.
 */
async function refuseLiveOut(client: PublicClient, chainId: number, out: string): Promise<void> {
  if (!(await access(out).then(() => true, () => false))) return;
  const existing = await readDeployment(out).catch(() => null);
  if (existing === null || existing.chainId !== chainId) return;
  if ((await contractsWithoutCode(client, existing.contracts)).length > 0) return; // a chain started afresh: nothing to keep
  throw new Error(`${out} names a deployment on this chain (ProviderRegistry ${existing.contracts.ProviderRegistry}): deploying again would make a second set and replace it; give another --out, or --keep-journal to resume the one Ignition's journal records`);
}

/**
 * The first block holding one of the deployment's transactions, from Ignition's journal: the chain's
 * head would be later when a deployment resumes (or is run again), and the indexer would miss the
 * events of the contracts deployed before.
 */
async function firstBlock(journalPath: string): Promise<number> {
  let first = Infinity;
  for (const line of (await readFile(journalPath, "utf8")).split("\n")) {
    if (!line.includes('"TRANSACTION_CONFIRM"')) continue;
    const message = JSON.parse(line) as { type: string; receipt?: { blockNumber?: unknown } };
    const block = message.receipt?.blockNumber;
    if (message.type === "TRANSACTION_CONFIRM" && typeof block === "number" && block < first) first = block;
  }
  if (!Number.isFinite(first)) throw new Error(`Ignition's journal ${journalPath} records no confirmed transaction`);
  return first;
}

const usage = `usage: node scripts/deploy.ts [--rpc <url>] [--parameters devnet|production|<file.json>] [--key <0x…>] [--out <file>] [--keep-journal]
  --rpc           the chain's JSON-RPC URL (default http://127.0.0.1:8545)
  --parameters    Ignition parameters: a set in ignition/parameters/ (default devnet) or a JSON file's path
  --key           the deployer's private key (or DIN_PRIVATE_KEY); without one, the node's first unlocked account
  --out           the deployment file the indexer and the CLI read (default deployments/local.json)
  --keep-journal  keep Ignition's journal (ignition/deployments/chain-<id>) so an interrupted run resumes`;

async function main(): Promise<void> {
  let values;
  try {
    values = parseArgs({
      options: {
        rpc: { type: "string", default: "http://127.0.0.1:8545" },
        parameters: { type: "string", default: "devnet" },
        out: { type: "string", default: "deployments/local.json" },
        key: { type: "string" },
        "keep-journal": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }).values;
  } catch (error) {
    throw new Error(`${parseArgsProblem(error)}\n${usage}`);
  }
  if (values.help) {
    console.log(usage);
    return;
  }
  const privateKey = (values.key ?? process.env.DIN_PRIVATE_KEY) as Hex | undefined;
  // Ignition is silent until it is done: minutes on a real network, a block per transaction.
  console.log(`deploying OpenDIN (${values.parameters} parameters) through ${values.rpc}: 5 contracts and their wiring…`);
  const deployment = await deployOpenDin({
    rpcUrl: values.rpc,
    parameters: values.parameters,
    privateKey,
    out: values.out,
    keepJournal: values["keep-journal"],
  });
  console.log(`deployed OpenDIN on chain ${deployment.chainId} from block ${deployment.startBlock}`);
  for (const [name, address] of Object.entries(deployment.contracts)) console.log(`  ${name.padEnd(20)} ${address}`);
  console.log(`wrote ${values.out}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
