import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { freePort } from "../../scripts/freePort.ts";
import { normalizeRecords } from "../../router/providerSet.ts";
import { readSnapshot, writeSnapshot } from "../../router/snapshot.ts";
import { providerAddress, recordsFor, startFaultyUpstreams, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { startRouter } from "../helpers/startRouter.ts";
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
    await writeSnapshot(path, recordsFor(nodes, CHAIN, [1_000, 2_000, 3_000]));
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const router = await startRouter({ indexerUrl: nobody, snapshotPath: path, startupWaitMs: 300 });
    try {
      const status = router.status();
      expect(status.providerSet).toMatchObject({ source: "indexer", state: "unreachable", servingFrom: "snapshot", indexerUrl: nobody });
      expect(status.providerSet.lastError).toBeTruthy();
      expect(status.chains[0].providers).toHaveLength(3);
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

  it("writes and reads snapshots losslessly, and rejects a damaged one clearly", async () => {
    const path = join(dir, "roundtrip.json");
    const records = recordsFor(nodes, CHAIN, [1, 2, 3]).map((r) => ({ ...r, slashedTotal: 123_456_789_012_345_678_901n }));
    await writeSnapshot(path, records);
    expect((await readSnapshot(path))!.providers).toEqual(records);
    expect(await readSnapshot(join(dir, "missing.json"))).toBeNull();
    await writeFile(path, "{ not json");
    await expect(readSnapshot(path)).rejects.toThrow(/snapshot at .* cannot be used: not JSON/);
    expect(JSON.parse(await readFile(join(dir, "providers.json"), "utf8")).version).toBe(1);
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
