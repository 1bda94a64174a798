import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import {
  createPublicClient,
  createWalletClient,
  http,
  isHex,
  type Account,
  type Address,
  type Chain,
  type PublicClient,
  type WalletClient,
  type Transport,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deploymentProblem, readDeployment, type ContractName } from "../deployment.ts";
import { CliError, usageError } from "./cliError.ts";

/** The common flags every chain command accepts. */
export type CommonFlags = {
  rpc?: string;
  deployment?: string;
  key?: string;
  json?: boolean;
};

export type CliContext = {
  rpcUrl: string;
  chainId: number;
  startBlock: bigint;
  contracts: Record<ContractName, Address>;
  routerUrl?: string;
  indexerUrl?: string;
  publicClient: PublicClient;
  json: boolean;
  /** Present when a key was given; commands that send transactions call `requireWallet`. */
  wallet?: WalletClient<Transport, Chain, Account>;
  /** Why the key given is no key: said by a command that needs one (a read needs none). */
  keyProblem?: string;
};

/** The running devnet's state file: in DIN_DEVNET (a devnet's --dir) when set, else in ./.devnet. */
export const devnetFile = (env: NodeJS.ProcessEnv): string => resolve(process.cwd(), env.DIN_DEVNET || ".devnet", "devnet.json");

type DevnetFile = {
  chainId: number;
  rpcUrl: string;
  routerUrl?: string;
  indexerUrl?: string;
  startBlock?: number;
  contracts: Record<ContractName, Address>;
};

/** Refuses a flag's value that is not an http(s) URL, naming what it should be (`whose`: "a node's") and an example. */
export function requireHttpUrl(flag: string, whose: string, value: string, example: string): void {
  if (!/^https?:\/\/[^\s/]+/i.test(value)) throw usageError(`${flag} must be ${whose} http:// or https:// URL, such as ${example}, not "${value}"`);
}

/**
 * Finds the chain and contracts: `--deployment` (with `--rpc`) when given, else the running
 * devnet's .devnet/devnet.json. The key comes from `--key` or DIN_PRIVATE_KEY.
 */
export async function loadContext(flags: CommonFlags, env: NodeJS.ProcessEnv): Promise<CliContext> {
  if (flags.rpc !== undefined) requireHttpUrl("--rpc", "a node's", flags.rpc, "http://127.0.0.1:8545");
  let rpcUrl: string;
  let chainId: number;
  let startBlock = 0n;
  let contracts: Record<ContractName, Address>;
  let routerUrl: string | undefined;
  let indexerUrl: string | undefined;
  const source = flags.deployment ?? devnetFile(env); // where the addresses come from
  if (flags.deployment) {
    if (!flags.rpc) throw usageError("--deployment needs --rpc <url> too: which node to send to");
    const deployment = await readDeployment(flags.deployment).catch((error: Error) => {
      throw new CliError(error.message);
    });
    rpcUrl = flags.rpc;
    chainId = deployment.chainId;
    startBlock = BigInt(deployment.startBlock);
    contracts = deployment.contracts;
  } else {
    let devnet: DevnetFile;
    try {
      devnet = JSON.parse(await readFile(source, "utf8")) as DevnetFile;
    } catch {
      throw new CliError(`no devnet is running (${source} not found): start one with "npm start", set DIN_DEVNET to the folder of one started with --dir, or give --rpc and --deployment`);
    }
    rpcUrl = flags.rpc ?? devnet.rpcUrl;
    chainId = devnet.chainId;
    startBlock = BigInt(devnet.startBlock ?? 0);
    contracts = devnet.contracts;
    routerUrl = devnet.routerUrl;
    indexerUrl = devnet.indexerUrl;
  }

  const publicClient = createPublicClient({ transport: http(rpcUrl, { retryCount: 0, timeout: 15_000 }) });
  const problem = await deploymentProblem(publicClient, { chainId, contracts }, source, rpcUrl);
  if (problem !== null) throw new CliError(problem);

  const key = flags.key || env.DIN_PRIVATE_KEY || undefined;
  let wallet: CliContext["wallet"];
  let keyProblem: string | undefined;
  if (key !== undefined && (!isHex(key) || key.length !== 66)) keyProblem = "--key (or DIN_PRIVATE_KEY) must be a 0x-prefixed 32-byte hex private key";
  else if (key !== undefined) {
    const chain = { id: chainId, name: `chain ${chainId}`, nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [rpcUrl] } } } as const satisfies Chain;
    wallet = createWalletClient({ account: privateKeyToAccount(key), chain, transport: http(rpcUrl, { retryCount: 0 }) });
  }
  return { rpcUrl, chainId, startBlock, contracts, routerUrl, indexerUrl, publicClient: publicClient as PublicClient, json: flags.json ?? false, wallet, keyProblem };
}

export function requireWallet(ctx: CliContext): NonNullable<CliContext["wallet"]> {
  if (ctx.keyProblem !== undefined) throw usageError(ctx.keyProblem);
  if (!ctx.wallet) throw usageError("this command sends a transaction: give --key <0x…> or set DIN_PRIVATE_KEY");
  return ctx.wallet;
}

/** The chain's clock (the latest block's timestamp): what the contracts compare deadlines against. */
export async function chainTime(ctx: CliContext): Promise<bigint> {
  return (await ctx.publicClient.getBlock()).timestamp;
}
