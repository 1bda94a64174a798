import { RouterOptionError } from "./errors.ts";
import { defaultMethodPolicy, type MethodPolicy } from "./methodPolicy.ts";

// Every tunable of the router, with its default. router/README.md explains each one; the formula
// they feed is in scoring.ts. Options arrive from the edge (flags) as plain objects.

export type ScoringParameters = {
  /** L0 in the latency factor L0 / (L0 + latency): the latency, in ms, that halves a provider's score. */
  latencyReferenceMs: number;
  /** Weight of the newest sample in the latency EWMA (0…1]. */
  latencyAlpha: number;
  /** Weight of the newest outcome in the error-rate EWMA (0…1]. */
  errorAlpha: number;
  /** Error rate a provider restarts from when its circuit closes again after a half-open probe. */
  recoveringErrorRate: number;
  /** A provider more than this many blocks behind the median head of its chain gets no traffic. */
  maxLagBlocks: number;
  /** A provider claiming more than this many blocks ahead of the median head gets no traffic. */
  maxLeadBlocks: number;
  /** Multiplier on the weight of a provider in probation (new, or recovering after an open circuit). */
  probationWeight: number;
  /** Consecutive successes (probes or requests) that end probation. */
  probationSuccesses: number;
  /** Largest expected traffic share of one provider (operator) on a chain, 0 < cap ≤ 1. */
  maxOperatorShare: number;
  /** How often, at most, the weights of a chain are recomputed from the live measurements (ms). */
  reweighIntervalMs: number;
};

export type CircuitParameters = {
  /** Consecutive failures that open a provider's circuit. */
  failureThreshold: number;
  /** First open period (ms); doubled on each reopening, up to `maxOpenMs`. */
  baseOpenMs: number;
  maxOpenMs: number;
};

export type ProbeParameters = {
  /** Each provider is asked eth_blockNumber this often (ms). */
  intervalMs: number;
  /** Timeout of one probe call (ms). */
  timeoutMs: number;
  /** eth_chainId is asked when a provider joins and then this often (ms). */
  chainIdIntervalMs: number;
  /** Probes in flight at once across all providers. */
  concurrency: number;
};

export type FailoverParameters = {
  /** Time one attempt on one provider may take, connect to last byte (ms). */
  attemptTimeoutMs: number;
  /** Time a whole call may take across all its attempts (ms). */
  deadlineMs: number;
  /** Attempts (providers tried) per call, hedges and write copies included. */
  maxAttempts: number;
  /** Hedge reads: start a second attempt when the first has not answered after the chain's latency quantile. */
  hedge: boolean;
  /** The latency quantile after which a read is hedged (0…1). */
  hedgeQuantile: number;
  /** Never hedge earlier than this (ms). */
  hedgeMinMs: number;
  /** eth_sendRawTransaction goes to this many providers at once. */
  writeFanout: number;
};

export type Limits = {
  /** Largest request body (bytes). */
  maxBodyBytes: number;
  /** Calls in one batch. */
  maxBatchItems: number;
  /** JSON nesting depth in a request. */
  maxDepth: number;
  /** Largest upstream response body (bytes). */
  maxResponseBytes: number;
  /** Client requests handled at once; beyond it the router answers "at capacity" at once. */
  maxConcurrentRequests: number;
  /** Connections kept per provider. */
  connectionsPerProvider: number;
};

export type RoutingOptions = {
  scoring: ScoringParameters;
  circuit: CircuitParameters;
  probe: ProbeParameters;
  failover: FailoverParameters;
  limits: Limits;
  methods: MethodPolicy;
  /** Traffic shares in /status cover the last one or two windows of this length (ms). */
  shareWindowMs: number;
};

export const defaultRoutingOptions: RoutingOptions = {
  scoring: {
    latencyReferenceMs: 100,
    latencyAlpha: 0.2,
    errorAlpha: 0.05,
    recoveringErrorRate: 0.5,
    maxLagBlocks: 5,
    maxLeadBlocks: 100,
    probationWeight: 0.1,
    probationSuccesses: 10,
    maxOperatorShare: 0.5,
    reweighIntervalMs: 250,
  },
  circuit: { failureThreshold: 3, baseOpenMs: 2_000, maxOpenMs: 60_000 },
  probe: { intervalMs: 2_000, timeoutMs: 2_000, chainIdIntervalMs: 60_000, concurrency: 32 },
  failover: {
    attemptTimeoutMs: 5_000,
    deadlineMs: 10_000,
    maxAttempts: 4,
    hedge: true,
    hedgeQuantile: 0.95,
    hedgeMinMs: 50,
    writeFanout: 2,
  },
  limits: {
    maxBodyBytes: 1024 * 1024,
    maxBatchItems: 100,
    maxDepth: 32,
    maxResponseBytes: 16 * 1024 * 1024,
    maxConcurrentRequests: 4096,
    connectionsPerProvider: 64,
  },
  methods: defaultMethodPolicy,
  shareWindowMs: 10_000,
};

/** Deeply partial options, as callers pass them. */
export type RoutingOverrides = {
  [K in keyof RoutingOptions]?: RoutingOptions[K] extends Record<string, unknown> ? Partial<RoutingOptions[K]> : RoutingOptions[K];
};

/** Merges overrides into the defaults and checks every value's range. */
export function resolveRoutingOptions(overrides: RoutingOverrides = {}): RoutingOptions {
  const o: RoutingOptions = {
    scoring: { ...defaultRoutingOptions.scoring, ...overrides.scoring },
    circuit: { ...defaultRoutingOptions.circuit, ...overrides.circuit },
    probe: { ...defaultRoutingOptions.probe, ...overrides.probe },
    failover: { ...defaultRoutingOptions.failover, ...overrides.failover },
    limits: { ...defaultRoutingOptions.limits, ...overrides.limits },
    methods: (overrides.methods as MethodPolicy | undefined) ?? defaultRoutingOptions.methods,
    shareWindowMs: overrides.shareWindowMs ?? defaultRoutingOptions.shareWindowMs,
  };
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new RouterOptionError(`router option out of range: ${what}`);
  };
  const unit = (x: number) => x > 0 && x <= 1;
  check(o.scoring.latencyReferenceMs > 0, "scoring.latencyReferenceMs must be > 0");
  check(unit(o.scoring.latencyAlpha) && unit(o.scoring.errorAlpha), "scoring alphas must be in (0, 1]");
  check(o.scoring.recoveringErrorRate >= 0 && o.scoring.recoveringErrorRate < 1, "scoring.recoveringErrorRate must be in [0, 1)");
  check(unit(o.scoring.probationWeight), "scoring.probationWeight must be in (0, 1]");
  check(unit(o.scoring.maxOperatorShare), "scoring.maxOperatorShare must be in (0, 1]");
  check(o.scoring.maxLagBlocks >= 0 && o.scoring.maxLeadBlocks >= 0, "scoring lag limits must be ≥ 0");
  check(Number.isInteger(o.scoring.probationSuccesses) && o.scoring.probationSuccesses >= 0, "scoring.probationSuccesses must be an integer ≥ 0");
  check(o.circuit.failureThreshold >= 1 && o.circuit.baseOpenMs > 0 && o.circuit.maxOpenMs >= o.circuit.baseOpenMs, "circuit parameters");
  check(o.probe.intervalMs > 0 && o.probe.timeoutMs > 0 && o.probe.concurrency >= 1, "probe parameters");
  check(o.failover.attemptTimeoutMs > 0 && o.failover.deadlineMs >= o.failover.attemptTimeoutMs, "failover.deadlineMs must be ≥ attemptTimeoutMs > 0");
  check(o.failover.maxAttempts >= 1 && o.failover.writeFanout >= 1, "failover.maxAttempts and writeFanout must be ≥ 1");
  check(o.failover.hedgeQuantile > 0 && o.failover.hedgeQuantile < 1, "failover.hedgeQuantile must be in (0, 1)");
  check(o.limits.maxBodyBytes >= 1024 && o.limits.maxBatchItems >= 1 && o.limits.maxDepth >= 2, "limits");
  check(o.limits.maxResponseBytes >= 1024 && o.limits.maxConcurrentRequests >= 1 && o.limits.connectionsPerProvider >= 1, "limits");
  return o;
}
