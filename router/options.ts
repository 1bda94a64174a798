import { RouterOptionError } from "./errors.ts";
import { methodPattern } from "./jsonRpc.ts";
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
  /** Probes in flight at most, across all providers (fewer when the set needs fewer; see prober.ts). */
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
  /** Nor earlier than this many times the drawn provider's own latency average (EWMA), up to half attemptTimeoutMs (0: the chain's quantile alone). */
  hedgeOwnLatencyFactor: number;
  /** eth_sendRawTransaction goes to this many providers at once. */
  writeFanout: number;
  /** For this long after a client's transaction, its calls about its transactions go first to the provider that took it (ms; 0: never). */
  writeAffinityMs: number;
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
  /** Client requests handled at once (counted from their body's end); beyond it the router answers "at capacity". */
  maxConcurrentRequests: number;
  /** Bytes held for clients at once, past the first 16 KiB of each request body and each answer not yet sent. */
  clientBufferBytes: number;
  /** The part of clientBufferBytes one client (address, IPv6 /64) may hold. */
  clientBufferBytesPerClient: number;
  /** Requests of one client handled at once; beyond it the client is told to wait for its answers. */
  maxInFlightPerClient: number;
  /**
   * Calls being answered at once (a batch counts each of its calls): what the router holds for them
   * (about 2 KB each while they wait for a provider) and asks of providers is bounded by calls, not
   * by requests. A request that would pass it is answered "at capacity".
   */
  maxCallsInFlight: number;
  /** The part of maxCallsInFlight one client (address, IPv6 /64) may have; at least maxBatchItems. */
  maxCallsInFlightPerClient: number;
  /** While a large answer (past 16 KiB) waits for a client, the window over which it must take clientTakeBytesPerSecond, or be disconnected (ms). */
  clientStallMs: number;
  /** The slowest rate, on average over each clientStallMs, at which a client with a large answer waiting must take bytes (bytes per second). */
  clientTakeBytesPerSecond: number;
  /** Client connections open at once; more are closed as they come. */
  maxConnections: number;
  /** Client connections open at once from one address (an IPv6 client counts by its /64). */
  maxConnectionsPerClient: number;
  /** A client has this long to send a whole request, headers and body (ms). */
  requestReadTimeoutMs: number;
  /** Connections kept to each provider origin (scheme://host:port, shared by the providers on it) for client calls. */
  connectionsPerProvider: number;
  /** Filters (eth_newFilter, eth_newBlockFilter) open at once on the router. */
  maxFilters: number;
  /** The part of maxFilters one client (address, IPv6 /64) may hold. */
  maxFiltersPerClient: number;
  /** A filter not polled for this long is removed (ms). */
  filterIdleMs: number;
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
  probe: { intervalMs: 2_000, timeoutMs: 2_000, chainIdIntervalMs: 60_000, concurrency: 1_024 },
  failover: {
    attemptTimeoutMs: 5_000,
    deadlineMs: 10_000,
    maxAttempts: 4,
    hedge: true,
    hedgeQuantile: 0.95,
    hedgeMinMs: 50,
    hedgeOwnLatencyFactor: 2,
    writeFanout: 2,
    writeAffinityMs: 30_000,
  },
  limits: {
    // A six-blob transaction with its cell proofs is ≈1.65 MB of hex (see router/README.md).
    maxBodyBytes: 2 * 1024 * 1024,
    maxBatchItems: 1_000,
    maxDepth: 32,
    maxResponseBytes: 16 * 1024 * 1024,
    maxConcurrentRequests: 4096,
    clientBufferBytes: 256 * 1024 * 1024,
    clientBufferBytesPerClient: 64 * 1024 * 1024,
    maxInFlightPerClient: 1024,
    maxCallsInFlight: 16_384,
    maxCallsInFlightPerClient: 4_096,
    clientStallMs: 30_000,
    clientTakeBytesPerSecond: 64 * 1024,
    maxConnections: 8192,
    maxConnectionsPerClient: 512,
    requestReadTimeoutMs: 10_000,
    connectionsPerProvider: 64,
    maxFilters: 10_000,
    maxFiltersPerClient: 1_000,
    filterIdleMs: 300_000,
  },
  methods: defaultMethodPolicy,
  shareWindowMs: 10_000,
};

/** Deeply partial options, as callers pass them. */
export type RoutingOverrides = {
  [K in keyof RoutingOptions]?: RoutingOptions[K] extends Record<string, unknown> ? Partial<RoutingOptions[K]> : RoutingOptions[K];
};

/** [kind, min, max, min excluded]: a whole or real number in range. */
type NumberRule = ["integer" | "number", number, number, boolean?];
const day = 86_400_000;
const numberRules: Record<string, NumberRule> = {
  "scoring.latencyReferenceMs": ["number", 0, day, true],
  "scoring.latencyAlpha": ["number", 0, 1, true],
  "scoring.errorAlpha": ["number", 0, 1, true],
  "scoring.recoveringErrorRate": ["number", 0, 0.999],
  "scoring.maxLagBlocks": ["integer", 0, 1e9],
  "scoring.maxLeadBlocks": ["integer", 0, 1e9],
  "scoring.probationWeight": ["number", 0, 1, true],
  "scoring.probationSuccesses": ["integer", 0, 1e6],
  "scoring.maxOperatorShare": ["number", 0, 1, true],
  "scoring.reweighIntervalMs": ["number", 1, day],
  "circuit.failureThreshold": ["integer", 1, 1e6],
  "circuit.baseOpenMs": ["number", 1, day],
  "circuit.maxOpenMs": ["number", 1, day],
  "probe.intervalMs": ["number", 10, day],
  "probe.timeoutMs": ["number", 1, day],
  "probe.chainIdIntervalMs": ["number", 10, day],
  "probe.concurrency": ["integer", 1, 10_000],
  "failover.attemptTimeoutMs": ["number", 1, day],
  "failover.deadlineMs": ["number", 1, day],
  "failover.maxAttempts": ["integer", 1, 100],
  "failover.hedgeQuantile": ["number", 0, 0.999, true],
  "failover.hedgeMinMs": ["number", 0, day],
  "failover.hedgeOwnLatencyFactor": ["number", 0, 1_000],
  "failover.writeFanout": ["integer", 1, 100],
  "failover.writeAffinityMs": ["number", 0, day],
  "limits.maxBodyBytes": ["integer", 1024, 2 ** 31],
  "limits.maxBatchItems": ["integer", 1, 1e6],
  "limits.maxDepth": ["integer", 2, 10_000],
  "limits.maxResponseBytes": ["integer", 1024, 2 ** 31],
  "limits.maxConcurrentRequests": ["integer", 1, 1e7],
  "limits.clientBufferBytes": ["integer", 0, 2 ** 40],
  "limits.clientBufferBytesPerClient": ["integer", 0, 2 ** 40],
  "limits.maxInFlightPerClient": ["integer", 1, 1e7],
  "limits.maxCallsInFlight": ["integer", 1, 1e8],
  "limits.maxCallsInFlightPerClient": ["integer", 1, 1e8],
  "limits.clientStallMs": ["number", 100, day],
  "limits.clientTakeBytesPerSecond": ["integer", 1024, 2 ** 40],
  "limits.maxConnections": ["integer", 1, 1e7],
  "limits.maxConnectionsPerClient": ["integer", 1, 1e7],
  "limits.requestReadTimeoutMs": ["number", 100, day],
  "limits.connectionsPerProvider": ["integer", 1, 10_000],
  "limits.maxFilters": ["integer", 0, 1e7],
  "limits.maxFiltersPerClient": ["integer", 0, 1e7],
  "limits.filterIdleMs": ["number", 1_000, day],
  shareWindowMs: ["number", 100, day],
};

function describeRule([kind, min, max, minOpen]: NumberRule): string {
  return `${kind === "integer" ? "a whole number" : "a number"} ${minOpen ? `> ${min}` : `≥ ${min}`} and ≤ ${max}`;
}

/** A value as an error message names it: a string is said to be one (a config file's "32768" reads like 32768). */
function describeValue(value: unknown): string {
  if (typeof value === "string") return `a string (${JSON.stringify(value)})`;
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object" && value !== null) return "an object";
  return String(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Reads routing overrides from a router config file's JSON text: sections and names as in the
 * defaults (router/README.md lists them). A name the router does not know is refused, since a
 * misspelt limit would otherwise be silently ignored; then every value is checked.
 */
export function parseRoutingConfig(text: string): RoutingOverrides {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RouterOptionError(`not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(value)) throw new RouterOptionError('must be a JSON object such as {"limits": {"maxCallsInFlight": 32768}}');
  const defaults = defaultRoutingOptions as unknown as Record<string, unknown>;
  for (const [section, fields] of Object.entries(value)) {
    const known = Object.hasOwn(defaults, section) ? defaults[section] : undefined; // not "constructor", "__proto__"
    if (known === undefined) throw new RouterOptionError(`unknown section "${section}" (known: ${Object.keys(defaults).join(", ")})`);
    if (!isObject(known)) {
      // A number (shareWindowMs): resolveRoutingOptions checks its range; null would mean the default.
      if (typeof fields !== "number") throw new RouterOptionError(`${section} must be a number`);
      continue;
    }
    if (!isObject(fields)) throw new RouterOptionError(`"${section}" must be an object of options`);
    for (const field of Object.keys(fields)) {
      if (!Object.hasOwn(known, field)) throw new RouterOptionError(`unknown option ${section}.${field} (${section} has: ${Object.keys(known).join(", ")})`);
    }
  }
  const methods = (value as { methods?: Record<string, unknown> }).methods;
  if (methods?.allowedMethods !== undefined) {
    const list = methods.allowedMethods;
    if (!Array.isArray(list) || !list.every((m) => typeof m === "string" && methodPattern.test(m))) {
      throw new RouterOptionError("methods.allowedMethods must be a list of method names such as \"eth_call\"");
    }
  }
  if (methods?.refusalReasons !== undefined && !(isObject(methods.refusalReasons) && Object.values(methods.refusalReasons).every((r) => typeof r === "string"))) {
    throw new RouterOptionError("methods.refusalReasons must map method names to the reason a client reads");
  }
  const overrides = value as RoutingOverrides;
  resolveRoutingOptions(overrides); // every value in range, or the error naming the one that is not
  return overrides;
}

/** Merges overrides into the defaults and checks every value's range. */
export function resolveRoutingOptions(overrides: RoutingOverrides = {}): RoutingOptions {
  const o: RoutingOptions = {
    scoring: { ...defaultRoutingOptions.scoring, ...overrides.scoring },
    circuit: { ...defaultRoutingOptions.circuit, ...overrides.circuit },
    probe: { ...defaultRoutingOptions.probe, ...overrides.probe },
    failover: { ...defaultRoutingOptions.failover, ...overrides.failover },
    limits: { ...defaultRoutingOptions.limits, ...overrides.limits },
    methods: {
      allowedMethods: overrides.methods?.allowedMethods ?? defaultRoutingOptions.methods.allowedMethods,
      // Reasons added to the defaults' (a reason only speaks for a method that is refused).
      refusalReasons: { ...defaultRoutingOptions.methods.refusalReasons, ...overrides.methods?.refusalReasons },
    },
    shareWindowMs: overrides.shareWindowMs ?? defaultRoutingOptions.shareWindowMs,
  };
  // Every number: finite, in range, whole where it counts something. Then what relates two of them.
  const sections = o as unknown as Record<string, Record<string, unknown>>;
  for (const [name, rule] of Object.entries(numberRules)) {
    const [section, field] = name.split(".");
    const value = field === undefined ? (o as unknown as Record<string, unknown>)[section] : sections[section][field];
    const [kind, min, max, minOpen] = rule;
    const ok =
      typeof value === "number" &&
      Number.isFinite(value) &&
      (kind === "number" || Number.isInteger(value)) &&
      (minOpen ? value > min : value >= min) &&
      value <= max;
    if (!ok) throw new RouterOptionError(`router option ${name} must be ${describeRule(rule)}, got ${describeValue(value)}`);
  }
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new RouterOptionError(`router option ${what}`);
  };
  check(typeof o.failover.hedge === "boolean", "failover.hedge must be true or false");
  check(o.circuit.maxOpenMs >= o.circuit.baseOpenMs, "circuit.maxOpenMs must be ≥ baseOpenMs");
  check(o.failover.deadlineMs >= o.failover.attemptTimeoutMs, "failover.deadlineMs must be ≥ attemptTimeoutMs");
  // A whole batch must fit, or a full batch would never be answered.
  check(o.limits.maxCallsInFlightPerClient >= o.limits.maxBatchItems, "limits.maxCallsInFlightPerClient must be ≥ maxBatchItems");
  check(o.limits.maxCallsInFlight >= o.limits.maxBatchItems, "limits.maxCallsInFlight must be ≥ maxBatchItems");
  return o;
}
