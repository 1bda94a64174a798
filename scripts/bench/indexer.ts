import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@ponder/client";
import { createPublicClient, createWalletClient, http, parseEther, type Address } from "viem";
import { hardhat } from "viem/chains";
import * as schema from "../../indexer/ponder.schema.ts";
import { startChain } from "../chain.ts";
import { abis } from "../cli/abis.ts";
import { deployOpenDin } from "../deploy.ts";
import { startIndexer } from "../indexer.ts";
import type { BenchRow } from "./table.ts";

// The indexer's figures: how soon a live-query subscriber sees a mined change, how fast it backfills
// registry history, and how much memory it holds.

const LIVE_SAMPLES = 25;
const BACKFILL_EVENTS = 10_000;
const SENDERS = 10;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function residentMemoryMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

export async function benchIndexer(log: (line: string) => void = () => undefined): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const chain = await startChain();
  const dirs: string[] = [];
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), "opendin-bench-indexer-"));
    dirs.push(dir);
    return dir;
  };
  try {
    const deployment = await deployOpenDin({ rpcUrl: chain.rpcUrl, parameters: "devnet" });
    const transport = http(chain.rpcUrl);
    const publicClient = createPublicClient({ chain: hardhat, transport });
    const [deployer, ...senders] = (await createWalletClient({ chain: hardhat, transport }).getAddresses()).slice(0, SENDERS + 1);
    const registry = deployment.contracts.ProviderRegistry;
    const wallet = (account: Address) => createWalletClient({ account, chain: hardhat, transport });
    const write = async (account: Address, address: Address, abi: typeof abis.token, functionName: string, args: readonly unknown[]) =>
      await wallet(account).writeContract({ address, abi, functionName, args });

    // Every sender is a registered provider with stake to top up.
    for (const sender of senders) {
      await publicClient.waitForTransactionReceipt({ hash: await write(deployer, deployment.contracts.DinToken, abis.token, "transfer", [sender, parseEther("100000")]) });
      await publicClient.waitForTransactionReceipt({ hash: await write(sender, deployment.contracts.DinToken, abis.token, "approve", [registry, parseEther("100000")]) });
      await publicClient.waitForTransactionReceipt({ hash: await write(sender, registry, abis.registry, "registerAndStake", ["bench", "", parseEther("1000")]) });
    }

    // Live latency: a top-up's receipt to the subscriber seeing the new stake.
    log("indexer: live-query latency");
    const indexer = await startIndexer({ rpcUrl: chain.rpcUrl, deployment, dataDir: await tempDir() });
    const client = createClient(`${indexer.url}/sql`, { schema });
    let latest = new Map<string, bigint>();
    const waiters: { address: string; stake: bigint; resolve: () => void }[] = [];
    const subscription = client.live(
      (db) => db.select().from(schema.provider),
      (result) => {
        latest = new Map(result.map((p) => [p.address.toLowerCase(), p.activeStake]));
        for (const waiter of waiters.splice(0)) {
          if (latest.get(waiter.address) === waiter.stake) waiter.resolve();
          else waiters.push(waiter);
        }
      },
    );
    const latencies: number[] = [];
    const who = senders[0];
    let stake = parseEther("1000");
    for (let i = 0; i < LIVE_SAMPLES; i++) {
      stake += parseEther("1");
      const seen = new Promise<void>((resolve) => waiters.push({ address: who.toLowerCase(), stake, resolve }));
      const hash = await write(who, registry, abis.registry, "stake", [parseEther("1")]);
      await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 5 });
      const receiptAt = performance.now();
      await seen;
      latencies.push(performance.now() - receiptAt);
    }
    subscription.unsubscribe();
    latencies.sort((a, b) => a - b);
    rows.push({ name: "indexer: receipt → live subscriber, median", value: quantile(latencies, 0.5) / 1000, unit: "s", note: `${LIVE_SAMPLES} top-ups, pollingInterval 200 ms` });
    rows.push({ name: "indexer: receipt → live subscriber, p95", value: quantile(latencies, 0.95) / 1000, unit: "s", note: "aim < 0.25 s" });
    await indexer.stop();

    // Backfill: 10,000 registry events already on chain, a fresh indexer from the start block.
    log(`indexer: writing ${BACKFILL_EVENTS} registry events`);
    const baselineStart = performance.now();
    const baseline = await startIndexer({ rpcUrl: chain.rpcUrl, deployment, dataDir: await tempDir() });
    const baselineSeconds = (performance.now() - baselineStart) / 1000;
    await baseline.stop();
    const rpc = async (method: string, params: unknown[] = []) => {
      const response = await fetch(chain.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
      return ((await response.json()) as { result: unknown }).result;
    };
    await rpc("evm_setAutomine", [false]);
    await Promise.all(
      senders.map(async (sender) => {
        for (let i = 0; i < BACKFILL_EVENTS / SENDERS; i++) {
          await write(sender, registry, abis.registry, "setEndpoint", [1n, `https://bench.example/${i}`]);
        }
      }),
    );
    // Mine until the pool is empty (a block holds only so much gas), then go back to automine.
    for (let i = 0; i < 200; i++) {
      await rpc("evm_mine");
      const pending = (await rpc("eth_getBlockByNumber", ["pending", false])) as { transactions: unknown[] } | null;
      if (!pending || pending.transactions.length === 0) break;
    }
    await rpc("evm_setAutomine", [true]);
    log("indexer: backfilling");
    const backfillStart = performance.now();
    const fresh = await startIndexer({ rpcUrl: chain.rpcUrl, deployment, dataDir: await tempDir(), timeoutMs: 600_000 });
    const backfillSeconds = (performance.now() - backfillStart) / 1000;
    const indexingSeconds = Math.max(0.001, backfillSeconds - baselineSeconds);
    rows.push({
      name: "indexer: backfill of 10,000 registry events",
      value: BACKFILL_EVENTS / indexingSeconds,
      unit: "events/s",
      note: `${backfillSeconds.toFixed(1)} s to ready, less ${baselineSeconds.toFixed(1)} s start-up on an empty history`,
    });
    rows.push({ name: "indexer: resident memory after backfill", value: await residentMemoryMiB(fresh.process.pid!), unit: "MiB", note: "Ponder process, PGlite" });
    await fresh.stop();
  } finally {
    await chain.stop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }
  return rows;
}
