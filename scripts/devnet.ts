import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createPublicClient, createWalletClient, http, parseEther, toHex, type Address, type Hex } from "viem";
import { mnemonicToAccount, privateKeyToAccount } from "viem/accounts";
import { hardhat } from "viem/chains";
import { abis } from "./cli/abis.ts";
import { exitCodeOf, parseArgsProblem, usageError } from "./cli/cliError.ts";
import { startChain, type Chain } from "./chain.ts";
import { deployOpenDin } from "./deploy.ts";
import { writeDeployment, type Deployment } from "./deployment.ts";
import { startIndexer } from "./indexer.ts";
import { startProviderNode, type ProviderNode } from "./providerNode.ts";
import { startRouter, type Router } from "./router.ts";

// `npm start`: the whole network on one machine. A Hardhat node (chain 31337), the contracts
// deployed by the Ignition module with devnet parameters, five provider nodes in front of the
// chain (each with its own latency and an admin route for faults), registered and staked with
// different amounts, the indexer on PGlite and the router in devnet mode. When everything answers
// it writes .devnet/devnet.json and prints where things are. Ctrl-C stops all of it.

/** Hardhat's well-known development mnemonic: its node funds these accounts with ETH. */
const devMnemonic = "test test test test test test test test test test test junk";
const devKey = (index: number): Hex => toHex(mnemonicToAccount(devMnemonic, { addressIndex: index }).getHdKey().privateKey!);

const providerProfiles = [
  { name: "aurora", stake: "20000", latencyMs: 5 },
  { name: "borealis", stake: "10000", latencyMs: 15 },
  { name: "cirrus", stake: "5000", latencyMs: 30 },
  { name: "drizzle", stake: "2500", latencyMs: 60 },
  { name: "ember", stake: "1000", latencyMs: 120 },
] as const;

export type DevnetAccount = { role: string; address: Address; privateKey: Hex; tokens: string };
export type DevnetProvider = {
  name: string;
  address: Address;
  privateKey: Hex;
  endpoint: string;
  adminUrl: string | null;
  stake: string;
  latencyMs: number;
};

/** The public shape of .devnet/devnet.json (DESIGN §4). */
export type DevnetInfo = {
  chainId: number;
  rpcUrl: string;
  routerUrl: string;
  indexerUrl: string;
  startBlock: number;
  contracts: Deployment["contracts"];
  deployer: { address: Address; privateKey: Hex };
  accounts: DevnetAccount[];
  providers: DevnetProvider[];
  startedAt: string;
};

export type DevnetOptions = {
  /** Folder for devnet.json and the indexer's data (default .devnet). */
  dir: string;
  chainPort: number;
  indexerPort: number;
  routerPort: number;
  onProgress: (step: string) => void;
};

export type Devnet = { info: DevnetInfo; stop: () => Promise<void> };

/**
 * A wanted port if it is free; otherwise (and for 0) undefined: the part then takes a port the OS
 * picks as it starts, and tries another if that one is taken before it listens.
 */
async function portOr(wanted: number, what: string, onProgress: (s: string) => void): Promise<number | undefined> {
  if (wanted === 0) return undefined;
  const free = await new Promise<boolean>((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(wanted, "127.0.0.1", () => server.close(() => done(true)));
  });
  if (free) return wanted;
  onProgress(`port ${wanted} is busy: the ${what} takes another one`);
  return undefined;
}

/** Whether a process with this pid runs (EPERM: it does, under another user). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Claims `dir` for this devnet with a pid file, and returns what gives it back: a second devnet in
 * the same folder would delete the first one's indexer data and overwrite its files. The file of a
 * devnet that ended without stopping (killed, the machine restarted) is taken over.
 */
async function claimDir(dir: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const path = resolve(dir, "devnet.pid");
  for (;;) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: "wx" });
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
      throw new Error(
        `a devnet is already running in ${dir} (pid ${pid}): use it, stop it with Ctrl-C, or start another with --dir <another folder>` +
          ` (if no devnet runs there, delete ${path})`,
      );
    }
    await rm(path, { force: true });
  }
}

export async function startDevnet(options: DevnetOptions): Promise<Devnet> {
  const { onProgress } = options;
  const stops: (() => Promise<void>)[] = [await claimDir(options.dir)]; // given back last
  let stopping = false;
  const stop = async () => {
    stopping = true;
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const built = ["../artifacts/contracts/ProviderRegistry.sol/ProviderRegistry.json", "../indexer/abis.generated.ts", "../router/dashboard/dist/app.js"];
    if (!built.every((path) => existsSync(fileURLToPath(new URL(path, import.meta.url))))) {
      onProgress("compiling the contracts (npm run build)");
      const steps = [
        [fileURLToPath(new URL("../node_modules/hardhat/dist/src/cli.js", import.meta.url)), "build", "--quiet"],
        [fileURLToPath(new URL("./exportAbis.ts", import.meta.url))],
        [fileURLToPath(new URL("./buildDashboard.ts", import.meta.url))],
      ];
      for (const args of steps) {
        if (spawnSync(process.execPath, args, { stdio: "inherit" }).status !== 0) throw new Error("compiling the contracts failed");
      }
    }

    onProgress("starting the chain (Hardhat node, chain id 31337)");
    const chain: Chain = await startChain({ port: await portOr(options.chainPort, "chain", onProgress) });
    stops.push(chain.stop);

    onProgress("deploying the contracts with the Ignition module (devnet parameters)");
    const deployment = await deployOpenDin({ rpcUrl: chain.rpcUrl, parameters: "devnet" });
    // For `npm run indexer` and `din indexer` against this chain.
    await writeDeployment(resolve(options.dir, "deployment.json"), deployment);

    const publicClient = createPublicClient({ chain: { ...hardhat, rpcUrls: { default: { http: [chain.rpcUrl] } } }, transport: http(chain.rpcUrl) });
    const send = async (key: Hex, address: Address, abi: typeof abis.token, functionName: string, args: readonly unknown[]) => {
      const wallet = createWalletClient({ account: privateKeyToAccount(key), chain: hardhat, transport: http(chain.rpcUrl) });
      const hash = await wallet.writeContract({ address, abi, functionName, args });
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      if (receipt.status !== "success") throw new Error(`${functionName} failed in transaction ${hash}`);
    };
    const token = deployment.contracts.DinToken;
    const deployerKey = devKey(0);

    onProgress("funding the dev accounts with DIN and delegating votes");
    const accounts: DevnetAccount[] = [
      { role: "watcher", address: privateKeyToAccount(devKey(6)).address, privateKey: devKey(6), tokens: "1000" },
      { role: "voter", address: privateKeyToAccount(devKey(7)).address, privateKey: devKey(7), tokens: "5000000" },
      { role: "voter", address: privateKeyToAccount(devKey(8)).address, privateKey: devKey(8), tokens: "5000000" },
      { role: "user", address: privateKeyToAccount(devKey(9)).address, privateKey: devKey(9), tokens: "10000" },
      { role: "operator (spare, not registered)", address: privateKeyToAccount(devKey(10)).address, privateKey: devKey(10), tokens: "50000" },
    ];
    for (const account of accounts) await send(deployerKey, token, abis.token, "transfer", [account.address, parseEther(account.tokens)]);
    for (const account of accounts.filter((a) => a.role === "voter")) await send(account.privateKey, token, abis.token, "delegate", [account.address]);
    await send(deployerKey, token, abis.token, "delegate", [privateKeyToAccount(deployerKey).address]);

    onProgress("starting five provider nodes in front of the chain");
    const providers: DevnetProvider[] = [];
    for (const [i, profile] of providerProfiles.entries()) {
      const node: ProviderNode = await startProviderNode({ upstreamUrl: chain.rpcUrl, latencyMs: profile.latencyMs });
      stops.push(node.stop);
      const key = devKey(1 + i);
      const address = privateKeyToAccount(key).address;
      const stake = parseEther(profile.stake);
      await send(deployerKey, token, abis.token, "transfer", [address, stake * 2n]);
      await send(key, token, abis.token, "approve", [deployment.contracts.ProviderRegistry, stake]);
      await send(key, deployment.contracts.ProviderRegistry, abis.registry, "registerAndStake", [profile.name, `https://${profile.name}.devnet.example/meta.json`, stake]);
      await send(key, deployment.contracts.ProviderRegistry, abis.registry, "setEndpoint", [BigInt(deployment.chainId), node.url]);
      providers.push({ name: profile.name, address, privateKey: key, endpoint: node.url, adminUrl: node.adminUrl, stake: profile.stake, latencyMs: profile.latencyMs });
      onProgress(`  ${profile.name}: ${profile.stake} DIN staked, ${profile.latencyMs} ms latency, serving ${node.url}`);
    }

    onProgress("starting the indexer (Ponder on PGlite)");
    const dataDir = resolve(options.dir, "indexer");
    await rm(dataDir, { recursive: true, force: true }); // a new chain: old rows would be wrong
    const indexerOptions = { rpcUrl: chain.rpcUrl, deployment: resolve(options.dir, "deployment.json"), dataDir };
    let indexer = await startIndexer({ ...indexerOptions, port: await portOr(options.indexerPort, "indexer", onProgress) });
    stops.push(() => indexer.stop());
    // An indexer that ends on its own is started again on its port, indexing from the start (a
    // gateway walkthrough found it gone without a word, and had to guess how to restart it); the
    // router serves the set it last gave meanwhile. A start that fails counts as an end (another
    // walkthrough killed it while it started again: it was left dead, said two minutes later). A
    // third end within a minute, or a second failed start in a row (one failing at its readiness
    // deadline, two minutes on, would be retried for ever), is left alone: a fault to look at.
    const exits: number[] = [];
    let failedStarts = 0;
    const restartIndexer = (what: string) => {
      if (stopping) return;
      exits.push(Date.now());
      const recent = exits.filter((at) => Date.now() - at < 60_000).length;
      if (recent > 2 || failedStarts > 1) {
        const byHand = `npx din indexer --rpc ${chain.rpcUrl} --deployment ${indexerOptions.deployment} --port ${indexer.port} --data-dir ${dataDir}`;
        const why = failedStarts > 1 ? `${failedStarts} starts failed in a row` : `${recent} ends in a minute`;
        onProgress(`the indexer ${what}: not started again (${why}); the router serves the provider set it last gave. To start it by hand: ${byHand}; Ctrl-C stops the devnet`);
        return;
      }
      onProgress(`the indexer ${what}: starting it again; the router serves the provider set it last gave meanwhile`);
      void (async () => {
        await rm(dataDir, { recursive: true, force: true });
        const again = await startIndexer({ ...indexerOptions, port: indexer.port, exactPort: true });
        if (stopping) return void (await again.stop());
        indexer = again;
        failedStarts = 0;
        again.process.once("exit", (code, signal) => restartIndexer(exited(code, signal)));
        onProgress(`the indexer is back at ${again.url}`);
      })().catch((error: unknown) => {
        failedStarts++;
        restartIndexer(`could not be started again (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`);
      });
    };
    const exited = (code: number | null, signal: NodeJS.Signals | null) => `exited (${code !== null ? `code ${code}` : `signal ${signal}`})`;
    indexer.process.once("exit", (code, signal) => restartIndexer(exited(code, signal)));

    onProgress("starting the router (devnet mode: loopback endpoints allowed)");
    const router: Router = await startRouter({
      indexerUrl: indexer.url,
      port: await portOr(options.routerPort, "router", onProgress),
      devnet: true,
      snapshotPath: resolve(options.dir, "router-providers.json"),
      logLevel: "warn",
    });
    stops.push(router.stop);

    onProgress("waiting for the router to route through a provider");
    await waitForRouting(router.url, deployment.chainId);

    const info: DevnetInfo = {
      chainId: deployment.chainId,
      rpcUrl: chain.rpcUrl,
      routerUrl: router.url,
      indexerUrl: indexer.url,
      startBlock: deployment.startBlock,
      contracts: deployment.contracts,
      deployer: { address: privateKeyToAccount(deployerKey).address, privateKey: deployerKey },
      accounts,
      providers,
      startedAt: new Date().toISOString(),
    };
    await writeFile(resolve(options.dir, "devnet.json"), `${JSON.stringify(info, null, 2)}\n`);
    stops.push(() => rm(resolve(options.dir, "devnet.json"), { force: true }));
    return { info, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function waitForRouting(routerUrl: string, chainId: number): Promise<void> {
  const deadline = Date.now() + 90_000;
  let last = "";
  while (Date.now() < deadline) {
    try {
      // /health first: a call before the router knows the chain is a client's refusal in its
      // /metrics (a walkthrough found five unknown_chain refusals on a devnet nobody had used).
      const health = await fetch(`${routerUrl}/health`);
      if (!health.ok) {
        last = ((await health.json()) as { reason?: string }).reason ?? `HTTP ${health.status}`;
        await new Promise((r) => setTimeout(r, 300));
        continue;
      }
      const response = await fetch(`${routerUrl}/rpc/${chainId}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }),
      });
      const body = (await response.json()) as { result?: string; error?: { message: string } };
      if (body.result && response.headers.get("x-din-provider")) return;
      last = body.error?.message ?? `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`the router did not route a request in 90 s (last answer: ${last})`);
}

function summary(info: DevnetInfo, dir: string): string {
  const watcher = info.accounts.find((a) => a.role === "watcher")!;
  const spare = info.accounts.find((a) => a.role.startsWith("operator"))!;
  const stateFile = resolve(dir, "devnet.json");
  // din looks in ./.devnet unless told where the devnet is.
  const env = dir === resolve(".devnet") ? "" : `DIN_DEVNET=${dir} `;
  return [
    "",
    "OpenDIN devnet is running.",
    "",
    `  dashboard (open in a browser)          ${info.routerUrl}/`,
    `  router (point dapps and wallets here)  ${info.routerUrl}/rpc/${info.chainId}   chain id ${info.chainId}`,
    `  router status                          ${info.routerUrl}/status`,
    `  indexer GraphQL                        ${info.indexerUrl}/graphql`,
    `  chain (Hardhat node)                   ${info.rpcUrl}`,
    `  providers                              ${info.providers.map((p) => `${p.name} ${p.stake} DIN`).join(", ")}`,
    `  state file                             ${stateFile} (addresses, dev keys, fault admin URLs)`,
    "",
    "Try:",
    `  curl -s -X POST ${info.routerUrl}/rpc/${info.chainId} -H 'content-type: application/json' \\`,
    `       -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'`,
    `  ${env}npx din provider status ${info.providers[0].address}`,
    `  ${env}DIN_PRIVATE_KEY=${spare.privateKey} npx din provider register --name my-node --stake 500 --endpoint ${info.chainId}=${info.rpcUrl}`,
    `  (a watcher key: ${watcher.privateKey})`,
    "",
    "Ctrl-C stops everything.",
  ].join("\n");
}

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const options = {
    dir: { type: "string", default: ".devnet" },
    "chain-port": { type: "string", default: "8545" },
    "indexer-port": { type: "string", default: "42069" },
    "router-port": { type: "string", default: "8080" },
    help: { type: "boolean", default: false },
  } as const;
  let values;
  try {
    values = parseArgs({ args: [...argv], options, strict: true }).values;
  } catch (error) {
    throw usageError(`${parseArgsProblem(error)} (devnet --help lists the flags)`);
  }
  if (values.help) {
    console.log("usage: npm start [-- --dir .devnet --chain-port 8545 --indexer-port 42069 --router-port 8080]");
    return;
  }
  const port = (flag: string, value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65_535) throw usageError(`--${flag} must be a port number (0 picks a free one), not "${value}"`);
    return n;
  };
  const started = Date.now();
  const devnet = await startDevnet({
    dir: resolve(values.dir),
    chainPort: port("chain-port", values["chain-port"]),
    indexerPort: port("indexer-port", values["indexer-port"]),
    routerPort: port("router-port", values["router-port"]),
    onProgress: (step) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${step}`),
  });
  console.log(summary(devnet.info, resolve(values.dir)));
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping the devnet…");
    devnet.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(`devnet: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(exitCodeOf(error));
  });
}
