import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { providerAddress, recordsFor, startFaultyUpstreams, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { seededRandom, startRouter, type TestRouter } from "../helpers/startRouter.ts";
import { DEV_ACCOUNT, direct, hammer, waitFor } from "./support.ts";

// Traffic through the real HTTP path follows router/README.md's formula. The latency reference is
// set huge here so that a busy test machine's latency noise cannot move the shares (the latency
// factor is checked exactly in routingTable.test.ts): shares then go as √stake. The draw is seeded;
// 900 sequential calls give a standard error under 0.017 per share; the tolerance is 0.06.

const CHAIN = 31337;
const STAKES = [1_000, 2_000, 3_000];
let chain: Chain;
let nodes: ProviderNode[];
let router: TestRouter;

beforeAll(async () => {
  chain = await startChain();
  nodes = await startFaultyUpstreams(chain.rpcUrl, 3);
  router = await startRouter({
    records: recordsFor(nodes, CHAIN, STAKES),
    random: seededRandom(2024),
    routing: { scoring: { latencyReferenceMs: 1_000_000 } },
  });
  await waitFor(() => router.status().chains[0].providers.every((p) => p.state === "healthy"), "three healthy providers");
});

afterAll(async () => {
  await router?.stop();
  for (const node of nodes ?? []) await node.stop();
  await chain?.stop();
});

describe("traffic shares", () => {
  it("follow √stake over the HTTP path, as /status predicts", async () => {
    const balance = (await direct(chain.rpcUrl, "eth_getBalance", [DEV_ACCOUNT, "latest"])) as string;
    const result = await hammer(router, CHAIN, 900, 1, balance);
    expect(result.failures).toEqual([]);
    const roots = STAKES.map(Math.sqrt);
    const total = roots.reduce((a, b) => a + b, 0);
    const status = router.status().chains[0].providers;
    STAKES.forEach((_, i) => {
      const observed = (result.providers.get(providerAddress(i)) ?? 0) / 900;
      expect(Math.abs(observed - roots[i] / total), `provider ${i}: ${observed}`).toBeLessThan(0.06);
      expect(Math.abs(status[i].expectedShare - roots[i] / total)).toBeLessThan(0.01);
      expect(Math.abs(status[i].trafficShare - observed)).toBeLessThan(0.02);
    });
  });

  it("keep a slower provider's share: a read is hedged after what its provider usually takes, not after the others' quantile", async () => {
    // Provider 0 has 1.6% of the weight and answers in 120 ms, the others at once: the chain's 95th
    // percentile is theirs, so hedging after it alone (50 ms, the floor) let a faster provider win
    // every call drawn to provider 0, which then served none (seen in a soak: 27 calls of 58,549).
    nodes[0].setLatency(120);
    const slow = await startRouter({
      records: recordsFor(nodes, CHAIN, [10, 10_000, 10_000]),
      random: seededRandom(7),
      // The tests' routers hedge after 200 ms at the earliest; a gateway's, by default, after 50.
      routing: { scoring: { latencyReferenceMs: 1_000_000 }, failover: { hedgeMinMs: 50 } },
    });
    try {
      await waitFor(() => slow.status().chains[0].providers.every((p) => p.state === "healthy" && p.latencyMs !== null) && (slow.status().chains[0].providers[0].latencyMs ?? 0) > 100, "three healthy providers, the slow one measured");
      const balance = (await direct(chain.rpcUrl, "eth_getBalance", [DEV_ACCOUNT, "latest"])) as string;
      const result = await hammer(slow, CHAIN, 900, 1, balance);
      expect(result.failures).toEqual([]);
      const expected = slow.status().chains[0].providers[0].expectedShare;
      expect(expected).toBeGreaterThan(0.012);
      // 900 draws at 1.6% give 14 ± 4 calls; all lost to hedges, it served none.
      expect((result.providers.get(providerAddress(0)) ?? 0) / 900).toBeGreaterThan(expected / 3);
    } finally {
      await slow.stop();
      nodes[0].setLatency(0);
    }
  });
});
