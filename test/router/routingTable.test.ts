import { describe, expect, it } from "vitest";
import type { ProviderHealth } from "../../router/health.ts";
import { resolveRoutingOptions, type RoutingOverrides } from "../../router/options.ts";
import type { ProviderRecord } from "../../router/providerSet.ts";
import { ChainTable } from "../../router/routingTable.ts";
import { capShares } from "../../router/scoring.ts";
import { providerAddress } from "../helpers/faultyUpstream.ts";
import { seededRandom } from "../helpers/startRouter.ts";

// Traffic follows the formula of router/README.md. Draws use a seeded generator, so each run
// draws the same sequence; the tolerance is stated per test (about four standard errors of a
// share estimated from the number of draws).

const CHAIN = 31337;
const TOKEN = 10n ** 18n;

type Spec = { stake: number; slashed?: number; latencyMs?: number; errorRate?: number; lag?: number; probation?: boolean };

function tableOf(specs: readonly Spec[], overrides: RoutingOverrides = {}): { table: ChainTable; providers: ProviderHealth[] } {
  const options = resolveRoutingOptions(overrides);
  const table = new ChainTable(CHAIN, options);
  const records: ProviderRecord[] = specs.map((s, i) => ({
    address: providerAddress(i),
    chainId: CHAIN,
    url: `http://node-${i}.example:8545`,
    stake: BigInt(s.stake) * TOKEN,
    slashedTotal: BigInt(s.slashed ?? 0) * TOKEN,
    name: `node-${i}`,
  }));
  table.setProviders(records);
  const head = 1_000;
  table.providers.forEach((p, i) => {
    const s = specs[i];
    p.setChainCheck(CHAIN, CHAIN, 0);
    table.recordHead(p, head - (s.lag ?? 0), 0);
    p.latencyMs = s.latencyMs ?? Number.NaN;
    p.errorRate = s.errorRate ?? 0;
    p.probationLeft = s.probation ? 5 : 0;
  });
  table.updateMedianHead(0, Infinity);
  return { table, providers: table.providers };
}

/** The README formula, written out independently of router/scoring.ts (before the cap). */
function formulaWeight(s: Spec, medianLag: number, o = resolveRoutingOptions()): number {
  const sc = o.scoring;
  const latency = s.latencyMs === undefined ? 1 : sc.latencyReferenceMs / (sc.latencyReferenceMs + s.latencyMs);
  const errors = 1 - (s.errorRate ?? 0);
  const lag = 1 - Math.max(0, (s.lag ?? 0) - medianLag) / (sc.maxLagBlocks + 1);
  const slash = s.stake / (s.stake + (s.slashed ?? 0));
  const probation = s.probation ? sc.probationWeight : 1;
  return Math.sqrt(s.stake) * latency * errors * lag * slash * probation;
}

function draw(table: ChainTable, providers: readonly ProviderHealth[], n: number, seed: number): number[] {
  const random = seededRandom(seed);
  const counts = new Map<ProviderHealth, number>();
  for (let i = 0; i < n; i++) {
    const p = table.pick(random, null, 0)!;
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  return providers.map((p) => (counts.get(p) ?? 0) / n);
}

describe("provider choice by stake and reputation", () => {
  it("gives each provider weight / Σ weights of the traffic, every factor of the formula counted", () => {
    const specs: Spec[] = [
      { stake: 10_000 },
      { stake: 2_500, latencyMs: 100 }, // latency factor 1/2
      { stake: 6_400, errorRate: 0.25 }, // errors factor 3/4
      { stake: 3_600, lag: 3 }, // lag factor 1 − 3/6
      { stake: 4_900, slashed: 4_900 }, // slash factor 1/2
      { stake: 8_100, probation: true }, // probation factor 0.1
    ];
    const { table, providers } = tableOf(specs);
    const weights = specs.map((s) => formulaWeight(s, 0));
    const total = weights.reduce((a, b) => a + b, 0);
    expect(Math.max(...weights) / total).toBeLessThan(0.5); // below the operator cap: no capping here
    const n = 200_000;
    const shares = draw(table, providers, n, 42);
    // Tolerance: 0.006 absolute, over 4 standard errors of the largest share (√(p(1−p)/n) ≈ 0.0011).
    shares.forEach((share, i) => expect(Math.abs(share - weights[i] / total)).toBeLessThan(0.006));
    const expected = table.expectedShares(0);
    providers.forEach((p, i) => expect(expected.get(p)).toBeCloseTo(weights[i] / total, 9));
  });

  it("weighs stake by its square root, so a whale with 100× the stake gets 10× the traffic", () => {
    const { table, providers } = tableOf([{ stake: 1_000_000 }, ...Array.from({ length: 30 }, () => ({ stake: 10_000 }))], {
      scoring: { maxOperatorShare: 1 },
    });
    const shares = draw(table, providers, 100_000, 7);
    const whale = 1_000 / (1_000 + 30 * 100); // 0.25
    expect(Math.abs(shares[0] - whale)).toBeLessThan(0.006);
    expect(shares[0] / shares[1]).toBeGreaterThan(8.5);
    expect(shares[0] / shares[1]).toBeLessThan(11.5);
  });

  it("reweighs every reweighIntervalMs as latency and error rates move, with no provider changing state", () => {
    // The mutation check: weights rebuilt only on a change of state passed every test; a provider
    // failing a tenth of its calls, never enough to open its circuit, kept its share for ever.
    const { table, providers } = tableOf([{ stake: 1_000 }, { stake: 1_000 }]);
    expect(table.expectedShares(0).get(providers[1])).toBeCloseTo(0.5, 6);
    providers[1].errorRate = 0.9;
    const { reweighIntervalMs } = resolveRoutingOptions().scoring;
    expect(table.expectedShares(reweighIntervalMs - 1).get(providers[1])).toBeCloseTo(0.5, 6);
    expect(table.expectedShares(reweighIntervalMs).get(providers[1])).toBeCloseTo(0.1 / 1.1, 6);
  });

  it("caps one operator's share, handing the excess to the others in proportion", () => {
    const { table, providers } = tableOf([{ stake: 1_000_000 }, { stake: 10_000 }, { stake: 10_000 }, { stake: 40_000 }], {
      scoring: { maxOperatorShare: 0.4 },
    });
    const shares = draw(table, providers, 100_000, 11);
    // Uncapped: 1000, 100, 100, 200 of 1400. Capped at 0.4: the whale gets 0.4, the rest keep 1:1:2.
    expect(Math.abs(shares[0] - 0.4)).toBeLessThan(0.006);
    expect(Math.abs(shares[1] - 0.15)).toBeLessThan(0.006);
    expect(Math.abs(shares[3] - 0.3)).toBeLessThan(0.006);
  });

  it("caps on stake, so with two providers a newcomer in probation or a failing provider does not get half the traffic", () => {
    // Two healthy providers, one with 100× the stake: the cap evens them out.
    const whale = tableOf([{ stake: 1_000_000 }, { stake: 10_000 }]);
    expect(draw(whale.table, whale.providers, 20_000, 12).map((s) => Math.round(s * 10) / 10)).toEqual([0.5, 0.5]);
    // The same pair, the small one in probation: capped stake 1:1, then probation 0.1 → 1/11.
    const newcomer = tableOf([{ stake: 1_000_000 }, { stake: 10_000, probation: true }]);
    const shares = draw(newcomer.table, newcomer.providers, 20_000, 13);
    // Tolerance 0.01: over 4 standard errors (√(p(1−p)/n) ≈ 0.002).
    expect(Math.abs(shares[1] - 1 / 11)).toBeLessThan(0.01);
    // Equal stake, one failing nine calls in ten: it keeps a tenth of the other's weight.
    const failing = tableOf([{ stake: 10_000 }, { stake: 10_000, errorRate: 0.9 }]);
    expect(Math.abs(draw(failing.table, failing.providers, 20_000, 14)[1] - 0.1 / 1.1)).toBeLessThan(0.01);
  });

  it("draws past busy origins for the overflow, scanning a small set but giving up on a large one", () => {
    // Every random draw lands on provider 0; all origins but the last are busy.
    const always0 = () => 0;
    for (const [size, found] of [
      [3, true],
      [300, false],
    ] as const) {
      const { table, providers } = tableOf(Array.from({ length: size }, () => ({ stake: 100 })));
      const busy = new Set(providers.slice(0, -1).map((p) => p.origin));
      expect(table.pick(always0, [], 0, false, busy), `${size} providers`).toBe(found ? providers[size - 1] : null);
      // With real draws, another origin is found by the random rounds whatever the set's size.
      const other = table.pick(seededRandom(3), [], 0, false, new Set([providers[0].origin]));
      expect(other !== null && other !== providers[0], `${size} providers, one busy`).toBe(true);
    }
  });

  it("draws a call naming a block among providers known to hold it, by their weights", () => {
    // Heads 1000, 1000, 998, 998 (probed); provider 2 answered a client's eth_blockNumber with 1001.
    const { table, providers } = tableOf([{ stake: 100 }, { stake: 400 }, { stake: 100, lag: 2 }, { stake: 100, lag: 2 }]);
    table.recordAnsweredHead(providers[2], 1_001);
    const drawn = (block: number, seed: number) => {
      const random = seededRandom(seed);
      const counts = providers.map(() => 0);
      for (let i = 0; i < 4_000; i++) counts[providers.indexOf(table.pick(random, null, 0, false, null, block)!)]++;
      return counts.map((c) => c / 4_000);
    };
    const atHead = drawn(1_000, 21); // providers 0 and 1 by √stake (1:2), 2 by its answer
    expect(atHead[3]).toBe(0);
    expect(Math.abs(atHead[1] / atHead[0] - 2)).toBeLessThan(0.3);
    expect(drawn(1_001, 22)).toEqual([0, 0, 1, 0]);
    expect(table.pick(Math.random, [providers[2]], 0, false, null, 1_001)).toBeNull(); // the caller then draws among all
    // Believed only up to maxLagBlocks (5) past the highest height another provider has shown (1001, provider 2's).
    table.recordAnsweredHead(providers[3], 1_007);
    expect(table.pick(Math.random, null, 0, false, null, 1_007)).toBeNull();
    table.recordAnsweredHead(providers[3], 1_006);
    expect(table.pick(Math.random, null, 0, false, null, 1_006)).toBe(providers[3]);
    // Nor past its own height by more than that: showing the highest height does not raise its own bound.
    table.recordAnsweredHead(providers[3], 1_012);
    expect(providers[3].holdsBlock(1_012)).toBe(false);
    // A probe's head read before that answer does not undo it; a head gone back (a reorganisation, a reset) does.
    table.recordHead(providers[3], 998, 0);
    expect(providers[3].holdsBlock(1_006)).toBe(true);
    table.recordHead(providers[3], 990, 0);
    expect(providers[3].holdsBlock(1_006)).toBe(false);
    // An absurd probed head widens nobody's bound (it counts through the median only).
    table.recordHead(providers[0], 5_000, 0);
    table.recordAnsweredHead(providers[1], 1_050);
    expect(providers[1].holdsBlock(1_050)).toBe(false);
  });

  it("retries on an eligible provider without weight before falling back to lagging or open ones", () => {
    const { table, providers } = tableOf([{ stake: 100 }, { stake: 0 }, { stake: 100, lag: 50 }]);
    const random = seededRandom(15);
    expect(table.pick(random, [], 0)).toBe(providers[0]); // weight 0 is never drawn first
    expect(table.pick(random, [providers[0]], 0)).toBe(providers[1]);
    expect(table.pick(random, [providers[0], providers[1]], 0)).toBe(providers[2]);
  });

  it("water-fills the cap exactly and equalises when fewer than 1/cap providers have weight", () => {
    const w = new Float64Array([100, 1, 1, 1]);
    capShares(w, 4, 0.5);
    expect([...w]).toEqual([3, 1, 1, 1]);
    const two = new Float64Array([900, 100]);
    capShares(two, 2, 0.5);
    expect([...two]).toEqual([100, 100]); // the larger cut to the smaller: the smaller is not capped
    const none = new Float64Array([1, 1, 1]);
    capShares(none, 3, 0.5);
    expect([...none]).toEqual([1, 1, 1]);
  });

  it("sends nothing to providers that lag, serve the wrong chain or have an open circuit", () => {
    const { table, providers } = tableOf([{ stake: 100 }, { stake: 100, lag: 50 }, { stake: 100 }, { stake: 100 }]);
    providers[2].setChainCheck(1, CHAIN, 0);
    for (let i = 0; i < 3; i++) providers[3].recordFailure("http_5xx", "HTTP 500", 0);
    expect(providers.map((p) => p.state(1))).toEqual(["healthy", "lagging", "wrong_chain", "circuit_open"]);
    const shares = draw(table, providers, 10_000, 3);
    expect(shares).toEqual([1, 0, 0, 0]);
  });

  it("measures lag against the median head, so one absurd height cannot make the others look behind", () => {
    const { table, providers } = tableOf([{ stake: 100 }, { stake: 100 }, { stake: 100 }, { stake: 100 }]);
    providers[3].setHead(2 ** 40, 0);
    table.updateMedianHead(0, Infinity);
    expect(table.medianHead).toBe(1_000);
    expect(providers.map((p) => p.state(0))).toEqual(["healthy", "healthy", "healthy", "lagging"]);
  });

  it("judges a head only on a strict majority: a stuck or syncing node makes no honest provider look ahead", () => {
    // Two providers, one stuck far behind (a node still syncing): no majority either way, both judged in sync.
    const two = tableOf([{ stake: 100 }, { stake: 100, lag: 984 }]);
    expect(two.providers.map((p) => p.state(0))).toEqual(["healthy", "healthy"]);
    // Four, two of them stuck: still no majority.
    const even = tableOf([{ stake: 100 }, { stake: 100 }, { stake: 100, lag: 984 }, { stake: 100, lag: 984 }]);
    expect(even.providers.map((p) => p.state(0))).toEqual(["healthy", "healthy", "healthy", "healthy"]);
    // Four, one stuck: three heads are ahead of it, so it is behind; the others are in sync.
    const one = tableOf([{ stake: 100 }, { stake: 100 }, { stake: 100 }, { stake: 100, lag: 984 }]);
    expect(one.providers.map((p) => p.state(0))).toEqual(["healthy", "healthy", "healthy", "lagging"]);
    // Four, one absurdly high: three heads are behind it, so it is ahead.
    const high = tableOf([{ stake: 100 }, { stake: 100 }, { stake: 100 }, { stake: 100, lag: -(2 ** 40) }]);
    expect(high.providers.map((p) => p.state(0))).toEqual(["healthy", "healthy", "healthy", "lagging"]);
  });

  it("judges each head against the median of its own moment, so probes seconds apart on a fast chain find no honest provider behind", () => {
    // Four blocks a second (an L2), probes every 2 s at staggered moments, as the prober runs them.
    const { table, providers } = tableOf(Array.from({ length: 6 }, () => ({ stake: 100 })));
    const chainHead = (ms: number) => 1_000 + Math.floor(ms / 250);
    const behind = [0, 0, 0, 0, 0, 20]; // the last one really is 20 blocks behind
    const offsets = [0, 400, 800, 1_200, 1_600, 1_900];
    const lags: number[][] = providers.map(() => []);
    for (let now = 0; now <= 30_000; now += 100) {
      providers.forEach((p, i) => {
        if ((now - offsets[i]) % 2_000 === 0 && now >= offsets[i]) table.recordHead(p, chainHead(now) - behind[i], now);
      });
      table.updateMedianHead(now, 8_000);
      if (now >= 4_000) providers.forEach((p, i) => lags[i].push(p.lag));
    }
    // Compared with the latest median instead, the provider probed first would be found behind.
    for (let i = 0; i < 5; i++) expect(Math.max(...lags[i]), `provider ${i}`).toBeLessThanOrEqual(0);
    expect(Math.min(...lags[5])).toBeGreaterThanOrEqual(20 - 8); // at most one probe interval of blocks forgiven
    table.rebuild(30_000);
    expect(providers.map((p) => p.state(30_000))).toEqual(["healthy", "healthy", "healthy", "healthy", "healthy", "lagging"]);
    expect(providers.slice(0, 5).map((p) => p.parts.lag)).toEqual([1, 1, 1, 1, 1]);
    // Provider 0's probes stop answering: once its head is no longer fresh it is as old as it is.
    for (let now = 30_100; now <= 40_000; now += 100) {
      providers.forEach((p, i) => {
        if (i > 0 && (now - offsets[i]) % 2_000 === 0) table.recordHead(p, chainHead(now) - behind[i], now);
      });
      table.updateMedianHead(now, 8_000);
    }
    expect(providers[0].lag).toBeGreaterThan(30);
    table.rebuild(40_000);
    expect(providers[0].state(40_000)).toBe("lagging");
  });

  it("skips providers already tried, and falls back to open circuits only when nothing else is left", () => {
    const { table, providers } = tableOf([{ stake: 100 }, { stake: 100 }, { stake: 100 }]);
    const random = seededRandom(5);
    for (let i = 0; i < 3; i++) providers[2].recordFailure("timeout", "slow", 0);
    const first = table.pick(random, [], 1)!;
    const second = table.pick(random, [first], 1)!;
    expect(new Set([first, second])).toEqual(new Set([providers[0], providers[1]]));
    expect(table.pick(random, [first, second], 1)).toBe(providers[2]); // last resort
    expect(table.pick(random, [...providers], 1)).toBeNull();
  });

  it("draws from 10,000 providers correctly (cost of a draw: see npm run bench)", () => {
    const specs = Array.from({ length: 10_000 }, (_, i) => ({ stake: 100 + (i % 100) * 100 }));
    const { table, providers } = tableOf(specs);
    const random = seededRandom(9);
    const seen = new Set<ProviderHealth>();
    for (let i = 0; i < 100_000; i++) seen.add(table.pick(random, null, 0)!);
    expect(seen.size).toBeGreaterThan(9_000);
    expect(providers.length).toBe(10_000);
  });
});

describe("routing options", () => {
  it("refuses numbers out of range, not finite or not whole, saying which and why", () => {
    const refused: [RoutingOverrides, RegExp][] = [
      [{ shareWindowMs: 0 }, /shareWindowMs must be a number ≥ 100/],
      [{ shareWindowMs: Number.NaN }, /shareWindowMs .* got NaN/],
      [{ probe: { intervalMs: Infinity } }, /probe\.intervalMs/],
      [{ probe: { chainIdIntervalMs: -1 } }, /probe\.chainIdIntervalMs/],
      [{ scoring: { reweighIntervalMs: Number.NaN } }, /scoring\.reweighIntervalMs/],
      [{ failover: { hedgeMinMs: Number.NaN } }, /failover\.hedgeMinMs/],
      [{ failover: { maxAttempts: 2.5 } }, /failover\.maxAttempts must be a whole number/],
      [{ limits: { maxBatchItems: "100" as unknown as number } }, /limits\.maxBatchItems must be a whole number ≥ 1 and ≤ 1000000, got a string \("100"\)/],
      [{ scoring: { maxOperatorShare: 0 } }, /scoring\.maxOperatorShare must be a number > 0 and ≤ 1/],
      [{ circuit: { baseOpenMs: 5_000, maxOpenMs: 1_000 } }, /maxOpenMs must be ≥ baseOpenMs/],
      [{ failover: { attemptTimeoutMs: 5_000, deadlineMs: 1_000 } }, /deadlineMs must be ≥ attemptTimeoutMs/],
      [{ limits: { maxBatchItems: 100, maxCallsInFlightPerClient: 99 } }, /maxCallsInFlightPerClient must be ≥ maxBatchItems/],
      [{ limits: { maxBatchItems: 100, maxCallsInFlight: 50 } }, /maxCallsInFlight must be ≥ maxBatchItems/],
    ];
    for (const [overrides, message] of refused) expect(() => resolveRoutingOptions(overrides), JSON.stringify(overrides)).toThrow(message);
    expect(resolveRoutingOptions({ failover: { hedgeMinMs: 0 }, scoring: { maxOperatorShare: 1 } }).failover.hedgeMinMs).toBe(0);
  });
});
