import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Address, PublicClient } from "viem";

/** The contract names a deployment holds, as Ignition's module returns them. */
export const contractNames = [
  "DinToken",
  "TimelockController",
  "DinGovernor",
  "ProviderRegistry",
  "SlashingManager",
] as const;
export type ContractName = (typeof contractNames)[number];

/**
 * What the indexer and the CLI need to find the contracts: written by `deployOpenDin`, read by
 * `indexer/ponder.config.ts` and the `din` CLI.
 */
export type Deployment = {
  chainId: number;
  /** The block before the first contract; the indexer starts here. */
  startBlock: number;
  deployer: Address;
  deployedAt: string;
  parameterSet: string;
  contracts: Record<ContractName, Address>;
};

export async function writeDeployment(path: string, deployment: Deployment): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(deployment, null, 2)}\n`);
}

export async function readDeployment(path: string): Promise<Deployment> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new Error(`no deployment file at ${path}: deploy first (npm start, or scripts/deploy.ts)`);
  }
  const parsed = JSON.parse(text) as Partial<Deployment>;
  for (const name of contractNames) {
    if (!parsed.contracts?.[name]) throw new Error(`deployment file ${path} lacks the ${name} address`);
  }
  if (typeof parsed.chainId !== "number" || typeof parsed.startBlock !== "number") {
    throw new Error(`deployment file ${path} lacks chainId or startBlock`);
  }
  return parsed as Deployment;
}

/**
 * Which of `contracts` (name → address) have no code on the chain, as "name address": a chain
 * started afresh keeps its id, and a deployment file or Ignition journal of the old one names
 * addresses where nothing is (a transaction sent there succeeds doing nothing).
 */
export async function contractsWithoutCode(client: Pick<PublicClient, "getCode">, contracts: Record<string, Address>): Promise<string[]> {
  const entries = Object.entries(contracts);
  const codes = await Promise.all(entries.map(([, address]) => client.getCode({ address })));
  return entries.filter((_, i) => codes[i] === undefined || codes[i] === "0x").map(([name, address]) => `${name} ${address}`);
}

/**
 * Why the deployment read from `source` cannot be used through the node at `rpcUrl`, in words, or
 * null when it can: the node does not answer, is on another chain, or lacks the contracts.
 */
export async function deploymentProblem(
  client: Pick<PublicClient, "getChainId" | "getCode">,
  deployment: Pick<Deployment, "chainId" | "contracts">,
  source: string,
  rpcUrl: string,
): Promise<string | null> {
  let chainId: number;
  try {
    chainId = await client.getChainId();
  } catch {
    return `cannot reach the chain at ${rpcUrl}: is the node running? (--rpc sets another URL)`;
  }
  if (chainId !== deployment.chainId) return `the node at ${rpcUrl} is on chain ${chainId}, but ${source} is on chain ${deployment.chainId}`;
  const missing = await contractsWithoutCode(client, deployment.contracts);
  if (missing.length === 0) return null;
  return `${source} names contracts the chain at ${rpcUrl} does not have (${missing.join(", ")}: no code there): the chain was started afresh since, or the file is another chain's; deploy again, or give the right --deployment`;
}
