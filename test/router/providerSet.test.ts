import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readdir, readFile, rm, symlink, writeFile, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { freePort } from "../../scripts/freePort.ts";
import { createLogger, type LogFields, type Logger } from "../../router/log.ts";
import { normalizeRecords } from "../../router/providerSet.ts";
import { checkSnapshotPath, readSnapshot, sameIndexerUrl, writeSnapshot } from "../../router/snapshot.ts";
import { providerAddress, recordsFor, startFaultyUpstreams, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { startRouter } from "../helpers/startRouter.ts";
import { indexerRow, startFakeIndexer } from "./providerSetFakeIndexer.ts";
import { DEV_ACCOUNT, direct, hammer, waitFor } from "./support.ts";

// The provider set changes under the router's feet: changes apply at once, calls in flight finish
// on the provider they started on, and with no indexer at start-up the snapshot on disk serves.

const CHAIN = 31337;
let chain: Chain;
let nodes: ProviderNode[];
let dir: string;
let balance: string;

beforeAll(async () => {
  chain = await startChain({ blockIntervalMs: 0 }); // a still chain: heads move only when a test says so
  nodes = await startFaultyUpstreams(chain.rpcUrl, 3);
  dir = await mkdtemp(join(tmpdir(), "din-router-"));
  balance = (await direct(chain.rpcUrl, "eth_getBalance", [DEV_ACCOUNT, "latest"])) as string;
});

/** A logger whose lines the test reads. */
function capturingLog(): { log: Logger; lines: (LogFields & { level: string; msg: string })[] } {
  const lines: (LogFields & { level: string; msg: string })[] = [];
  return { log: createLogger({ level: "warn", write: (line) => lines.push(JSON.parse(line) as (typeof lines)[number]) }), lines };
}

afterAll(async () => {
  for (const node of nodes ?? []) await node.stop();
  await chain?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the provider set", () => {
  it("applies a new set at once without dropping the calls in flight", async () => {
    const router = await startRouter({ records: recordsFor(nodes.slice(0, 1), CHAIN, [1_000]) });
    try {
      nodes[0].setLatency(400);
      const inFlight = hammer(router, CHAIN, 20, 20, balance);
      await waitFor(() => (nodes[0].stats().byMethod.eth_getBalance ?? 0) >= 20, "20 calls on provider 0");
      // Provider 0 leaves, providers 1 and 2 join, while its 20 calls are still being answered.
      const next = recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000]).slice(1);
      router.setProviders(next);
      const during = await hammer(router, CHAIN, 20, 4, balance);
      const first = await inFlight;
      expect(first.failures).toEqual([]);
      expect([...first.providers.keys()]).toEqual([providerAddress(0)]);
      expect(during.failures).toEqual([]);
      expect([...during.providers.keys()].sort()).not.toContain(providerAddress(0));
      expect(router.status().chains[0].providers.map((p) => p.address)).toEqual([providerAddress(1), providerAddress(2)]);
    } finally {
      nodes[0].setLatency(0);
      await router.stop();
    }
  });

  it("keeps what it learned about a provider across updates, and takes a new stake at once", async () => {
    const records = recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000]);
    const router = await startRouter({ records, routing: { scoring: { maxOperatorShare: 1 } } });
    try {
      await hammer(router, CHAIN, 30, 3, balance);
      await waitFor(() => router.status().chains[0].providers.every((p) => p.state === "healthy"), "all healthy");
      const served = router.status().chains[0].providers.map((p) => p.served);
      router.setProviders(records.map((r, i) => (i === 2 ? { ...r, stake: 9_000n * 10n ** 18n } : r)));
      const after = router.status().chains[0].providers;
      expect(after.map((p) => p.served)).toEqual(served);
      expect(after[2].parts.stake).toBeCloseTo(Math.sqrt(9_000), 6);
      // √9000 / √1000 = 3: three times the weight, give or take the measured latencies.
      expect(after[2].expectedShare / after[0].expectedShare).toBeGreaterThan(2.5);
    } finally {
      await router.stop();
    }
  });

  it("starts from the snapshot when the indexer is unreachable, and says so in /status", async () => {
    const path = join(dir, "providers.json");
    const nobody = `http://127.0.0.1:${await freePort()}`;
    await writeSnapshot(path, recordsFor(nodes, CHAIN, [1_000, 2_000, 3_000]), nobody);
    const router = await startRouter({ indexerUrl: nobody, snapshotPath: path, startupWaitMs: 300 });
    try {
      const status = router.status();
      expect(status.providerSet).toMatchObject({ source: "indexer", state: "unreachable", servingFrom: "snapshot" });
      expect(status.providerSet.lastError).toBe("cannot reach the indexer (ECONNREFUSED)");
      expect(status.chains[0].providers).toHaveLength(3);
      // /status is public: it says the indexer is away, not where the indexer or the snapshot are.
      const publicStatus = (await router.get("/status")).text;
      expect(publicStatus).not.toContain(nobody.slice("http://".length));
      expect(publicStatus).not.toContain(dir);
      const result = await hammer(router, CHAIN, 30, 3, balance);
      expect(result.failures).toEqual([]);
      expect(router.metrics()).toMatch(/din_router_provider_set_live\{source="indexer",serving_from="snapshot"\} 0/);
      // The dashboard's registry view says the indexer is away, without telling the world where it is.
      const registry = await fetch(`${router.url}/registry`);
      expect(registry.status).toBe(502);
      const text = await registry.text();
      expect(JSON.parse(text)).toEqual({ errors: [{ message: "the indexer is unreachable" }] });
      expect(text).not.toContain(nobody);
    } finally {
      await router.stop();
    }
  });

  it("starts with no providers on a damaged snapshot, and takes the indexer's set once it answers", async () => {
    const path = join(dir, "damaged.json");
    const indexerUrl = `http://127.0.0.1:${await freePort()}`;
    const records = recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000]);
    const oldFormat = JSON.stringify({ version: 1, writtenAt: "2025-01-01T00:00:00.000Z", providers: [] });
    const startOn = async (damage: string) => {
      await writeFile(path, damage);
      const { log, lines } = capturingLog();
      const router = await startRouter({ indexerUrl, snapshotPath: path, startupWaitMs: 200, log });
      try {
        expect(router.status().providerSet).toMatchObject({ state: "unreachable", servingFrom: "none" });
        expect(router.status().chains).toEqual([]);
        // A wallet must not read "chain not served" (404) from a router that only lacks its set: retry shortly.
        const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] });
        expect(answer.status).toBe(503);
        expect(answer.json()).toEqual({
          jsonrpc: "2.0",
          id: 1,
          error: { code: -32002, message: "this router has no provider set yet: the indexer is unreachable and no usable snapshot was loaded; retry shortly" },
        });
        expect(lines.some((l) => l.level === "warn" && /snapshot/.test(l.msg) && /cannot be used/.test(String(l.error)))).toBe(true);
        // A gateway walkthrough: /health said "no provider set yet, or it lists no provider", and a
        // log read at warnings saw "cannot connect", then nothing, though the router served no call.
        const health = await fetch(`${router.url}/health`);
        expect([health.status, ((await health.json()) as { reason: string }).reason]).toEqual([503, "this router has no provider set yet: the indexer is unreachable and no usable snapshot was loaded (see /status)"]);
        expect(lines.filter((l) => l.level === "warn" && l.msg.startsWith("serving no call until the indexer gives a provider set"))).toHaveLength(1);
      } catch (error) {
        await router.stop();
        throw error;
      }
      return { router, lines };
    };
    for (const damage of ['{ "version": 2, "providers": [', "null"]) await (await startOn(damage)).router.stop();

    const { router, lines } = await startOn(oldFormat);
    // The indexer comes back: its set is routed, and replaces the damaged snapshot.
    const indexer = await startFakeIndexer({}, records.map(indexerRow), Number(new URL(indexerUrl).port));
    try {
      await waitFor(() => router.status().providerSet.state === "live" && router.status().chains[0]?.eligibleProviders === 3, "the indexer's set");
      // A log read at warnings only (the devnet's) sees the indexer's absence end, not only begin.
      expect(lines.filter((l) => l.level === "warn" && l.msg.startsWith("indexer reachable again"))).toHaveLength(1);
      expect((await hammer(router, CHAIN, 30, 3, balance)).failures).toEqual([]);
      await waitFor(async () => (await readSnapshot(path).catch(() => null))?.indexerUrl === indexerUrl, "a sound snapshot");
    } finally {
      await router.stop();
      await indexer.stop();
    }
  });

  it("routes only the sound rows of a snapshot", async () => {
    const path = join(dir, "edited.json");
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const records = recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000]);
    await writeSnapshot(path, records, nobody);
    const file = JSON.parse(await readFile(path, "utf8")) as { providers: unknown[] };
    const good = file.providers[0] as Record<string, unknown>;
    file.providers.push(
      { ...good, address: providerAddress(7), url: "file:///etc/passwd" },
      { ...good, address: providerAddress(8), url: "http://user:secret@127.0.0.1:1" },
      { ...good, address: providerAddress(9), stake: "lots" },
      { ...good, address: "0x12" },
      { ...good, address: providerAddress(10), chainId: -1 },
      null,
    );
    await writeFile(path, JSON.stringify(file));
    const { log, lines } = capturingLog();
    const router = await startRouter({ indexerUrl: nobody, snapshotPath: path, startupWaitMs: 200, log });
    try {
      expect(router.status().providerSet.servingFrom).toBe("snapshot");
      expect(router.status().chains[0].providers.map((p) => p.address)).toEqual(records.map((r) => r.address));
      expect(lines.find((l) => l.msg === "dropped malformed provider rows from the snapshot")).toMatchObject({ dropped: 6 });
    } finally {
      await router.stop();
    }
  });

  it("ignores a snapshot written for another indexer", async () => {
    const path = join(dir, "elsewhere.json");
    await writeSnapshot(path, recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000]), "http://127.0.0.1:1");
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const { log, lines } = capturingLog();
    const router = await startRouter({ indexerUrl: nobody, snapshotPath: path, startupWaitMs: 200, log });
    try {
      expect(router.status().providerSet.servingFrom).toBe("none");
      expect(router.status().chains).toEqual([]);
      expect(lines.some((l) => l.level === "warn" && /another indexer/.test(l.msg))).toBe(true);
    } finally {
      await router.stop();
    }
  });

  it("takes a snapshot written for the same indexer under another spelling of its URL (localhost for 127.0.0.1)", async () => {
    const port = await freePort();
    const path = join(dir, "spelling.json");
    const records = recordsFor(nodes, CHAIN, [1_000, 1_000]);
    await writeSnapshot(path, records, `http://localhost:${port}/`);
    const { log } = capturingLog();
    const router = await startRouter({ indexerUrl: `http://127.0.0.1:${port}`, snapshotPath: path, startupWaitMs: 200, log });
    try {
      expect(router.status().providerSet.servingFrom).toBe("snapshot");
      expect(router.status().chains[0].providers.map((p) => p.address)).toEqual(records.map((r) => r.address));
    } finally {
      await router.stop();
    }
    expect(sameIndexerUrl("http://LOCALHOST:42069/", "http://[::1]:42069")).toBe(true);
    expect(sameIndexerUrl("http://indexer.example", "http://indexer.example:80/")).toBe(true);
    for (const other of ["http://127.0.0.1:42070", "https://127.0.0.1:42069", "http://127.0.0.1:42069/other", "http://10.0.0.1:42069", "http://127.example.com:42069"]) {
      expect(sameIndexerUrl("http://127.0.0.1:42069", other), other).toBe(false);
    }
  });

  it("writes and reads snapshots losslessly, on disk before the rename, and rejects a damaged one clearly", async () => {
    const path = join(dir, "roundtrip.json");
    const records = recordsFor(nodes, CHAIN, [1, 2, 3]).map((r) => ({ ...r, slashedTotal: 123_456_789_012_345_678_901n }));
    // FileHandle.sync() must run while the final name does not exist yet (a first write).
    const handle = await open(join(dir, "probe"), "w");
    const fileHandle = Object.getPrototypeOf(handle) as FileHandle;
    await handle.close();
    const synced: boolean[] = [];
    const original = fileHandle.sync;
    const sync = vi.spyOn(fileHandle, "sync").mockImplementation(function (this: FileHandle) {
      synced.push(existsSync(path));
      return original.call(this);
    });
    try {
      await writeSnapshot(path, records, "http://127.0.0.1:42069");
    } finally {
      sync.mockRestore();
    }
    expect(synced).toEqual([false]);
    const snapshot = (await readSnapshot(path))!;
    expect(snapshot.indexerUrl).toBe("http://127.0.0.1:42069");
    expect(normalizeRecords(snapshot.providers)).toEqual({ records, dropped: 0 });
    expect(JSON.parse(await readFile(path, "utf8")).version).toBe(2);
    expect(await readSnapshot(join(dir, "missing.json"))).toBeNull();
    await writeFile(path, "{ not json");
    await expect(readSnapshot(path)).rejects.toThrow(/snapshot at .* cannot be used: not JSON/);
    // Each way a hand-edited file can be wrong is named (a version 2 file must not be told "expected version 2").
    const cases: [unknown, RegExp][] = [
      [[], /not a provider-set snapshot/],
      [{ version: 1, indexerUrl: "http://x", providers: [] }, /version 1 is not one this router reads \(it reads 2\)/],
      [{ version: 2, providers: [] }, /"indexerUrl" is missing or not a string/],
      [{ indexerUrl: "http://x", providers: [] }, /"version" is missing \(this router reads version 2\)/],
      [{ version: 2, indexerUrl: "http://x", providers: {} }, /"providers" is missing or not a list/],
    ];
    for (const [content, message] of cases) {
      await writeFile(path, JSON.stringify(content));
      await expect(readSnapshot(path)).rejects.toThrow(message);
    }
  });

  it("leaves no temporary file behind when a snapshot cannot be written", async () => {
    const parent = join(dir, "unwritable");
    const path = join(parent, "providers.json");
    await mkdir(path, { recursive: true }); // a directory where the file should go: the rename fails
    await expect(writeSnapshot(path, recordsFor(nodes, CHAIN, [1]), "http://127.0.0.1:42069")).rejects.toThrow(/EISDIR|ENOTEMPTY|EEXIST|EPERM/);
    expect(await readdir(parent)).toEqual(["providers.json"]);
  });

  it("writes its snapshot through no link planted at its temporary file's name (a shared directory)", async () => {
    const path = join(dir, "linked.json");
    const victim = join(dir, "victim.txt");
    await writeFile(victim, "not the router's");
    await symlink(victim, `${path}.${process.pid}.tmp`);
    checkSnapshotPath(path);
    expect(await readFile(victim, "utf8")).toBe("not the router's");
    await symlink(victim, `${path}.${process.pid}.tmp`);
    const records = recordsFor(nodes, CHAIN, [1]);
    await writeSnapshot(path, records, "http://127.0.0.1:42069");
    expect(await readFile(victim, "utf8")).toBe("not the router's");
    expect(normalizeRecords((await readSnapshot(path))!.providers).records).toEqual(records);
  });

  it("drops malformed rows from the indexer instead of routing to them", () => {
    const good = { address: providerAddress(0).toUpperCase().replace("0X", "0x"), chain_id: "31337", url: "https://rpc.example.org", stake: "1000", slashed_total: "0", name: "a" };
    const { records, dropped } = normalizeRecords([
      good,
      { ...good, url: "wss://rpc.example.org" }, // not routable over HTTP
      { ...good, url: "http://user:pass@rpc.example.org" }, // credentials in a URL
      { ...good, address: "0x1234" },
      { ...good, chain_id: "-1" },
      { ...good, stake: "lots" },
      null,
    ]);
    expect(dropped).toBe(6);
    expect(records).toEqual([{ address: providerAddress(0), chainId: 31337, url: "https://rpc.example.org", stake: 1000n, slashedTotal: 0n, name: "a" }]);
  });
});
