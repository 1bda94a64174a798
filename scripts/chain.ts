import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { collectOutput, exitWithParent, stopChild } from "./childProcess.ts";
import { onFreePort } from "./freePort.ts";

export type Chain = {
  rpcUrl: string;
  port: number;
  process: ChildProcess;
  stop: () => Promise<void>;
};

export type StartChainOptions = {
  /** Port to listen on; a free one is chosen when omitted. */
  port?: number;
  /** Called with each line the node prints, e.g. to show progress. */
  onLine?: (line: string) => void;
  /** How long to wait for the node to answer, in ms. */
  timeoutMs?: number;
  /**
   * Also mine an empty block this often (ms), as a real chain does; 0 mines only on transactions.
   * Default 1000: the indexer's live sync expects the head to move.
   */
  blockIntervalMs?: number;
};

const root = fileURLToPath(new URL("..", import.meta.url));
const hardhatBin = fileURLToPath(new URL("../node_modules/hardhat/dist/src/cli.js", import.meta.url));

/**
 * Starts Hardhat's node (EDR, chain id 31337, automine) on 127.0.0.1 as a child process and
 * resolves once it answers JSON-RPC.
 */
export async function startChain(options: StartChainOptions = {}): Promise<Chain> {
  if (options.port !== undefined) return await startChainOn(options.port, options);
  return await onFreePort((port) => startChainOn(port, options), (error) => String(error).includes("EADDRINUSE"));
}

async function startChainOn(port: number, options: StartChainOptions): Promise<Chain> {
  const child = spawn(process.execPath, [...exitWithParent.flags, hardhatBin, "node", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: exitWithParent.env({ ...process.env, FORCE_COLOR: "0" }),
  });
  // The node is asked only once it says it listens: until then the port may hold another server.
  let listening = false;
  const output = collectOutput(child, (line) => {
    if (line.includes("Started HTTP and WebSocket JSON-RPC server at")) listening = true;
    options.onLine?.(line);
  });
  const rpcUrl = `http://127.0.0.1:${port}`;
  const stop = () => stopChild(child, 3_000);

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`the Hardhat node exited with code ${child.exitCode} before answering:\n${output()}`);
    }
    if (listening && (await answers(rpcUrl))) {
      const interval = options.blockIntervalMs ?? 1000;
      const mining = interval > 0 ? await rpc(rpcUrl, "evm_setIntervalMining", [interval]).catch(() => null) : null;
      if (interval > 0 && !mining?.ok) {
        await stop();
        throw new Error(`the Hardhat node at ${rpcUrl} did not take evm_setIntervalMining:\n${output()}`);
      }
      return { rpcUrl, port, process: child, stop };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await stop();
  throw new Error(`the Hardhat node did not answer at ${rpcUrl} in time:\n${output()}`);
}

async function rpc(rpcUrl: string, method: string, params: unknown[]): Promise<Response> {
  return await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(5_000), // whatever else holds the port may never answer
  });
}

async function answers(rpcUrl: string): Promise<boolean> {
  try {
    return (await rpc(rpcUrl, "eth_chainId", [])).ok;
  } catch {
    return false;
  }
}
