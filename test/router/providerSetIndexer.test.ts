import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/freePort.ts";
import { startChain } from "../../scripts/chain.ts";
import { createLogger, type LogFields } from "../../router/log.ts";
import { indexerProviderSet, normalizeRecords, type IndexerProviderSetOptions, type ProviderSetSource } from "../../router/providerSet.ts";
import { readSnapshot, writeSnapshot } from "../../router/snapshot.ts";
import { indexerRow, startFakeIndexer, type FakeIndexer } from "./providerSetFakeIndexer.ts";
import { waitFor } from "./support.ts";

// The provider set from a sick indexer: one that drops its live query as soon as it opens, one that
// never answers, one whose errors carry secrets. The router must neither hammer it, nor leak
// connections to it, nor repeat what it says on the public /status.

type Line = LogFields & { level: string; msg: string };

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

async function fake(...args: Parameters<typeof startFakeIndexer>): Promise<FakeIndexer> {
  const indexer = await startFakeIndexer(...args);
  cleanup.push(indexer.stop);
  return indexer;
}

/** Starts a provider set on `indexerUrl` with a log the test can read. */
async function source(indexerUrl: string, options: Partial<IndexerProviderSetOptions> = {}) {
  const lines: Line[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line) as Line) });
  const set: ProviderSetSource = indexerProviderSet({ indexerUrl, startupWaitMs: 200, log, ...options });
  cleanup.push(set.stop);
  await set.start(() => {});
  return { set, lines };
}

/** Provider n's row as the indexer gives it (named pn). */
const row = (n: number) => indexerRow({ address: `0x${String(n).padStart(40, "0")}`, chainId: 31337, url: `https://node-${n}.example`, stake: 10n ** 21n, slashedTotal: 0n, name: `p${n}` });
const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the provider set from a sick indexer", () => {
  it("backs off from an indexer whose live query drops right after connecting, and retries at once after a long connection", async () => {
    const indexer = await fake({ live: 30 });
    const { set } = await source(indexer.url, { reconnectMinMs: 50, reconnectMaxMs: 400 });
    await sleep(2_000);
    // 50, 100, 200, 400, 400 … ms apart: about eight connections in two seconds, not forty.
    expect(indexer.hits.ready.length).toBeLessThanOrEqual(10);
    expect(Math.max(...gaps(indexer.hits.ready))).toBeGreaterThanOrEqual(380);
    // Once a connection has stayed live for reconnectMaxMs, a loss is retried after reconnectMinMs.
    indexer.behaviour.live = "ok";
    await waitFor(() => set.status().state === "live", "a live connection");
    await sleep(600);
    const before = indexer.hits.ready.length;
    const droppedAt = performance.now();
    indexer.dropLive();
    await waitFor(() => indexer.hits.ready.length > before, "a reconnection");
    expect(indexer.hits.ready[before] - droppedAt).toBeLessThan(300);
  });

  it("says once, not at each read, that it leaves out rows it cannot use, and again when their number changes", async () => {
    // A CLI walkthrough: after a provider registered a ws:// endpoint (the registry takes it), the
    // router warned "dropped malformed provider rows" at every update, 20 times.
    const ws = (n: number) => ({ ...row(n), url: `wss://node-${n}.example` });
    const indexer = await fake({}, [row(1), ws(2)]);
    const { lines } = await source(indexer.url, { reconcileIntervalMs: 50 });
    const leftOut = () => lines.filter((l) => l.msg.startsWith("left out provider rows")).map((l) => l.dropped);
    await waitFor(() => indexer.hits.db.length >= 5, "five reads of the set");
    expect(leftOut()).toEqual([1]);
    indexer.rows = [row(1), ws(2), ws(3)];
    const reads = indexer.hits.db.length;
    await waitFor(() => indexer.hits.db.length >= reads + 4, "four more reads");
    expect(leftOut()).toEqual([1, 2]);
  });

  it("says when the indexer last gave its set, changed or not, beside when the set last changed", async () => {
    // A gateway walkthrough: lastUpdateAt moves only when the set changes, so a set the indexer
    // re-confirmed at every read looked as old as its last change.
    const indexer = await fake({}, [row(1)]);
    const { set } = await source(indexer.url, { reconcileIntervalMs: 50 });
    await waitFor(() => set.status().confirmedAt !== null, "a first set");
    const first = set.status();
    await sleep(20);
    await waitFor(() => set.status().confirmedAt! > first.confirmedAt!, "the set confirmed again");
    expect(set.status()).toMatchObject({ lastUpdateAt: first.lastUpdateAt, updates: first.updates });
    indexer.rows = [row(1), row(2)];
    await waitFor(() => set.status().updates === first.updates + 1, "the changed set");
    expect(set.status().lastUpdateAt! > first.lastUpdateAt!).toBe(true);
  });

  it("tells a long live query's end at info, and warns only when its reconnection fails", async () => {
    // A persona walkthrough: Ponder ends its live queries about every five minutes, and each time
    // the router warned "indexer unreachable", then "reachable again", 300 ms apart (an alert on
    // those warnings would fire all day).
    const indexer = await fake({}, [row(1)]);
    const { set, lines } = await source(indexer.url, { reconnectMinMs: 50, reconnectMaxMs: 400 });
    const warnings = () => lines.filter((l) => l.level === "warn").map((l) => l.msg);
    await waitFor(() => set.status().state === "live", "a live connection");
    await sleep(600);
    const live = indexer.hits.live.length;
    indexer.dropLive();
    await waitFor(() => indexer.hits.live.length > live && set.status().state === "live", "live again");
    expect(warnings()).toEqual([]);
    expect(lines.map((l) => l.msg).slice(-2)).toEqual(["the indexer's live query ended: reconnecting", "indexer live query connected"]);
    // The reconnection fails: now it is an outage, said once, and its end too.
    await sleep(600);
    indexer.behaviour.ready = 503;
    indexer.dropLive();
    await waitFor(() => set.status().state === "unreachable", "the indexer unreachable");
    await sleep(300); // retries meanwhile, not warned of again
    expect(warnings()).toEqual(["indexer unreachable: serving the last known provider set"]);
    expect(set.status().servingFrom).toBe("indexer"); // the set in force all along
    indexer.behaviour.ready = "ok";
    await waitFor(() => set.status().state === "live", "live again");
    expect(warnings()).toEqual(["indexer unreachable: serving the last known provider set", "indexer reachable again: taking the provider set from its live query"]);
  });

  it("tells an indexer still indexing from a URL that is no indexer (a walkthrough pointed a router at a router: \"not ready yet\")", async () => {
    const indexing = await source((await fake({ ready: 503 })).url);
    expect(indexing.set.status().lastError).toBe("the indexer is not ready yet (GET /ready → HTTP 503: still indexing)");
    const other = await source((await fake({ ready: 404 })).url);
    expect(other.set.status().lastError).toBe("the indexer URL answers GET /ready with HTTP 404: it is not an OpenDIN indexer's base URL (Ponder answers 200, or 503 while indexing)");
  });

  it("tells a chain node given as the indexer URL (a gateway walkthrough: Hardhat answers /ready with 200, and the router said only that the live query disconnected)", async () => {
    const chain = await startChain();
    try {
      const node = await source(chain.rpcUrl);
      await waitFor(() => node.set.status().lastError !== null, "the first attempt");
      expect(node.set.status().lastError).toBe("the indexer URL answers GET /ready as a chain's JSON-RPC node does (is it the chain's RPC URL?): it is not an OpenDIN indexer's base URL");
    } finally {
      await chain.stop();
    }
  });

  it("aborts a /ready that does not answer, on its timeout and on stop()", async () => {
    const indexer = await fake({ ready: "hang" });
    const hasty = await source(indexer.url, { requestTimeoutMs: 150, reconnectMinMs: 50, reconnectMaxMs: 100 });
    await waitFor(() => indexer.hits.ready.length >= 5, "five attempts");
    expect(indexer.waiting()).toBeLessThanOrEqual(1); // the attempt under way, not one per attempt
    await hasty.set.stop();

    const patient = await source(indexer.url, { requestTimeoutMs: 60_000 });
    await waitFor(() => indexer.waiting() === 1, "a request waiting on /ready");
    await patient.set.stop();
    await waitFor(() => indexer.waiting() === 0, "stop() to close the request", 2_000);
  });

  it("asks an indexer whose /sql does not answer one query at a time", async () => {
    // @ponder/client's query takes no abort signal: the router can stop waiting, not cancel it.
    const indexer = await fake({ db: "hang" });
    const { set } = await source(indexer.url, { requestTimeoutMs: 100, reconnectMinMs: 20, reconnectMaxMs: 50 });
    await waitFor(() => indexer.hits.ready.length >= 6, "six attempts");
    expect(indexer.hits.db.length).toBe(1);
    expect(set.status().lastError).toMatch(/^the indexer's \/sql (did not answer within 100 ms|has not answered its previous query yet)$/);
  });

  it("holds back a set read behind the one in force (an indexer restarted from its finalized block), until the indexer catches up or catchUpWaitMs passes", async () => {
    const indexer = await fake({}, [row(1), row(2)]);
    indexer.block = 100;
    const sets: string[][] = [];
    const lines: Line[] = [];
    const log = createLogger({ level: "warn", write: (line) => lines.push(JSON.parse(line) as Line) });
    const set = indexerProviderSet({ indexerUrl: indexer.url, startupWaitMs: 2_000, reconcileIntervalMs: 100, catchUpWaitMs: 1_500, log });
    cleanup.push(set.stop);
    await set.start((records) => sets.push(records.map((r) => r.name)));
    expect(sets).toEqual([["p1", "p2"]]);

    // Restarted: ready, but back at block 70, where provider 2 had not registered yet.
    indexer.rows = [row(1)];
    indexer.block = 70;
    await waitFor(() => set.status().lastError !== null, "the router to notice");
    expect(set.status().lastError).toBe("the indexer is catching up (at block 70; the set in force was read at block 100): that set is kept meanwhile");
    await sleep(300);
    expect(sets).toEqual([["p1", "p2"]]);
    // Caught up, with a change made meanwhile: taken at once, and said.
    indexer.rows = [row(1), row(2), row(3)];
    indexer.block = 104;
    await waitFor(() => sets.length === 2, "the caught-up set");
    expect(sets[1]).toEqual(["p1", "p2", "p3"]);
    expect(set.status().lastError).toBeNull();
    expect(lines.map((l) => l.msg)).toEqual([
      "the indexer is behind the set in force (restarted, or a reorg): keeping that set until it catches up",
      "the indexer caught up: taking its set again",
    ]); // and no reconnection: the reads every 100 ms and every second never overlap into a "lost" indexer

    // An indexer that stays behind (its chain was reset, say) is followed after catchUpWaitMs.
    indexer.rows = [row(3)];
    indexer.block = 5;
    await waitFor(() => sets.length === 3, "the set after the wait", 5_000);
    expect(sets[2]).toEqual(["p3"]);
    expect(lines.slice(2).map((l) => l.msg)).toEqual([
      "the indexer is behind the set in force (restarted, or a reorg): keeping that set until it catches up",
      "the indexer stayed behind the set in force: taking its set",
    ]);
    // An indexer that does not say which block it is at is taken at its word, as before.
    indexer.block = null;
    indexer.rows = [row(4)];
    await waitFor(() => sets.length === 4, "the set from an indexer without /status");
  });

  it("holds back an indexer that comes back behind the snapshot the router started from", async () => {
    // Not ready at first (as an indexer still starting), so the router starts from its snapshot.
    const indexer = await fake({ ready: 503 }, [row(1)]);
    const indexerUrl = indexer.url;
    const dir = await mkdtemp(join(tmpdir(), "din-snapshot-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, "providers.json");
    await writeSnapshot(path, normalizeRecords([row(1), row(2)]).records, indexerUrl, 100);
    expect((await readSnapshot(path))?.block).toBe(100);
    const sets: string[][] = [];
    const set = indexerProviderSet({ indexerUrl, snapshotPath: path, startupWaitMs: 200, reconnectMinMs: 50, reconnectMaxMs: 100, catchUpWaitMs: 60_000, log: createLogger({ level: "error" }) });
    cleanup.push(set.stop);
    await set.start((records) => sets.push(records.map((r) => r.name)));
    expect(set.status().servingFrom).toBe("snapshot");

    // Both restarted: the indexer answers from block 70, before provider 2 registered.
    indexer.block = 70;
    indexer.behaviour.ready = "ok";
    await waitFor(() => set.status().state === "live" && set.status().lastError !== null, "the router to notice");
    expect(set.status().lastError).toBe("the indexer is catching up (at block 70; the set in force was read at block 100): that set is kept meanwhile");
    expect(sets).toEqual([["p1", "p2"]]);
    // Caught up, with a provider registered meanwhile: taken, and the snapshot records its block.
    indexer.rows = [row(1), row(2), row(3)];
    indexer.block = 101;
    await waitFor(() => sets.length === 2, "the caught-up set");
    expect(sets[1]).toEqual(["p1", "p2", "p3"]);
    expect(set.status().lastError).toBeNull();
    await waitFor(async () => (await readSnapshot(path))?.block === 101, "the snapshot to record the new block");
  });

  it("keeps the indexer's error bodies and address off /status, and logs them capped", async () => {
    const secret = "postgres://ponder:hunter2@db.internal:5432/ponder";
    const body = `error: relation "endpoint" does not exist (${secret})\n${"x".repeat(2_000_000)}`;
    const indexer = await fake({ db: { status: 500, body } });
    const { set, lines } = await source(indexer.url, { reconnectMinMs: 10_000 });
    await waitFor(() => set.status().lastError !== null, "the failure");
    const status = set.status();
    expect(status.lastError).toBe("the indexer's /sql answered with an error (details in the router's log)");
    expect(JSON.stringify(status)).not.toContain(indexer.url.slice(7));
    expect(Object.keys(status)).not.toContain("indexerUrl");
    expect(Object.keys(status)).not.toContain("snapshotPath");
    const warning = lines.find((l) => l.level === "warn" && typeof l.detail === "string" && l.detail.includes(secret));
    expect(warning).toBeDefined();
    expect((warning!.detail as string).length).toBeLessThanOrEqual(2_000);
    // The log line is where the details are: it does not send its reader to itself (a gateway walkthrough).
    expect(warning!.error).toBe("the indexer's /sql answered with an error");

    const nobody = `http://127.0.0.1:${await freePort()}`;
    const refused = await source(nobody, { reconnectMinMs: 10_000 });
    await waitFor(() => refused.set.status().lastError !== null, "the failure");
    expect(refused.set.status().lastError).toBe("cannot reach the indexer (ECONNREFUSED)");
  });
});
