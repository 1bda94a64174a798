import type { CircuitParameters, ScoringParameters } from "./options.ts";
import type { ProviderRecord } from "./providerSet.ts";
import type { Factors } from "./scoring.ts";

// A provider's health as this router measures it: latency, error rate, circuit breaker, probation,
// chain id and head. One tracker per (chain, provider, url); it lives as long as the provider stays
// in the set with the same URL, so a set update never resets what was learned.

/** Where a provider stands for routing. Only "healthy" and "probation" receive client traffic. */
export type ProviderState =
  | "checking" // joined; chain id and head not verified yet
  | "healthy"
  | "probation" // new or recovering: receives a reduced share until it proves itself
  | "circuit_open" // failing: no traffic until the open period ends
  | "half_open" // open period over: the next probe decides
  | "lagging" // head too far behind (or implausibly ahead of) the chain's median head
  | "wrong_chain" // answered eth_chainId with another chain
  | "refused"; // its URL leads to an address this router refuses (loopback, private…; allowed in devnet mode)

/** Why an attempt failed on the provider's side (the caller's own mistakes are never failures). */
export type FailureKind =
  | "connect" // refused, reset before answering, DNS failure
  | "endpoint_refused" // resolves to a forbidden address (outside devnet mode)
  | "timeout"
  | "http_5xx"
  | "http_429"
  | "http_redirect" // 3xx: redirects are never followed
  | "http_4xx" // a 4xx but 413 and 429: the call may have caused it (a firewall's rules)
  | "http_status" // any other non-200 status
  | "malformed" // not a JSON-RPC response
  | "wrong_id"
  | "wrong_type" // a result not of the form its method's must have (its JSON type, a hex quantity)
  | "wrong_answer" // a result that contradicts its call (another block, a log outside the filter, not the hash of the transaction sent)
  | "too_large"
  | "rpc_fault" // a JSON-RPC error that is the provider's problem (rate limit, internal error)
  | "forked"; // gave a block that most providers asked do not have (filters.ts's vote)

export const failureKinds: readonly FailureKind[] = [
  "connect",
  "endpoint_refused",
  "timeout",
  "http_5xx",
  "http_429",
  "http_redirect",
  "http_status",
  "malformed",
  "wrong_id",
  "wrong_type",
  "wrong_answer",
  "too_large",
  "rpc_fault",
  "forked",
  "http_4xx",
];
const failureIndex = new Map(failureKinds.map((kind, i) => [kind, i]));

/** The factors of a provider's score, as /status shows them, and its √stake after the operator cap (0 while not eligible). */
export type ScoreParts = Factors & { cappedStake: number };

/** Token wei (18 decimals) to a float number of tokens, exact to 1e-6 token: enough for weights. */
export function tokens(wei: bigint): number {
  return Number(wei / 1_000_000_000_000n) / 1e6;
}

/** An exponentially weighted moving average with `sample` added; the sample itself when there was none (NaN). */
function ewma(average: number, sample: number, alpha: number): number {
  return Number.isNaN(average) ? sample : average + alpha * (sample - average);
}

export class ProviderHealth {
  readonly chainId: number;
  readonly address: string;
  readonly url: string;
  /** `scheme://host:port` and path, split once for the HTTP client. */
  readonly origin: string;
  readonly path: string;
  name: string;
  stake: bigint;
  slashedTotal: bigint;
  stakeTokens: number;
  slashedTokens: number;

  /** EWMA of successful attempt latency (ms), and of the bounds recordLatencyAtLeast gives: the score's; NaN before the first sample. */
  latencyMs = Number.NaN;
  /** EWMA of answered attempts' latency alone (ms): how long the provider usually takes to answer, which a hedge waits for. */
  answeredLatencyMs = Number.NaN;
  /** EWMA of failures per attempt (0…1). */
  errorRate = 0;
  consecutiveFailures = 0;
  private openUntil = 0;
  private circuitOpen = false;
  private openCount = 0;
  probationLeft: number;
  chainCheck: "pending" | "ok" | "wrong" = "pending";
  reportedChainId: number | null = null;
  lastChainCheckAt = 0;
  head = -1;
  headAt = 0;
  /**
   * The highest block it answered an eth_blockNumber routed by the router with (a client's, or a
   * filter poll's), within bounds (ChainTable.recordAnsweredHead): between probes, it shows a
   * new block is held.
   */
  answeredHead = -1;
  /** Gone from the provider set (calls in flight still hold it): never preferred again. */
  retired = false;
  /** Blocks behind the chain's lower median head as it stood when this head was read (negative: ahead). */
  lag = 0;
  outOfSync = false;
  /** The state last seen by the chain table (to log transitions once). */
  lastState: ProviderState | null = null;
  /** Last error seen, for /status. */
  lastFailure: string | null = null;
  lastFailureAt = 0;
  /** The last attempt or probe was refused by the endpoint policy (and nothing has answered since). */
  private endpointRefused = false;

  // Traffic, for /status and /metrics.
  /** Client calls' requests to this provider on the router's connections now (the HTTP client holds them). */
  inFlight = 0;
  /** Client calls' requests to it waiting for one of the router's connections to its origin (upstream.ts's ConnectionGate). */
  waiting = 0;
  served = 0; // client calls this provider answered (results and passed-through errors)
  /** Sum and count of successful attempt latencies (probes too), for the dashboard's latency chart. */
  latencySumMs = 0;
  latencySamples = 0;
  windowServed = 0;
  previousWindowServed = 0;
  readonly failures = new Float64Array(failureKinds.length);
  probes = 0;

  parts: ScoreParts = { stake: 0, cappedStake: 0, latency: 1, errors: 1, lag: 1, slash: 1, probation: 1, score: 1, weight: 0 };
  /** Called when something that decides eligibility changes (the chain table rebuilds then). */
  onChange: () => void = () => {};

  private readonly scoring: ScoringParameters;
  private readonly circuit: CircuitParameters;

  constructor(record: ProviderRecord, scoring: ScoringParameters, circuit: CircuitParameters) {
    this.chainId = record.chainId;
    this.address = record.address;
    this.url = record.url;
    const url = new URL(record.url);
    this.origin = url.origin;
    this.path = `${url.pathname}${url.search}` || "/";
    this.name = record.name;
    this.stake = record.stake;
    this.slashedTotal = record.slashedTotal;
    this.stakeTokens = tokens(record.stake);
    this.slashedTokens = tokens(record.slashedTotal);
    this.scoring = scoring;
    this.circuit = circuit;
    this.probationLeft = scoring.probationSuccesses;
  }

  /** Takes the on-chain facts of a newer set (stake, slashes, name); measurements stay. */
  update(record: ProviderRecord): void {
    this.name = record.name;
    if (record.stake !== this.stake || record.slashedTotal !== this.slashedTotal) {
      this.stake = record.stake;
      this.slashedTotal = record.slashedTotal;
      this.stakeTokens = tokens(record.stake);
      this.slashedTokens = tokens(record.slashedTotal);
      this.onChange();
    }
  }

  circuitState(now: number): "closed" | "open" | "half_open" {
    if (!this.circuitOpen) return "closed";
    return now >= this.openUntil ? "half_open" : "open";
  }

  /** When the open period ends (0 when the circuit is closed). */
  get reopensAt(): number {
    return this.circuitOpen ? this.openUntil : 0;
  }

  get inProbation(): boolean {
    return this.probationLeft > 0;
  }

  state(now: number): ProviderState {
    if (this.chainCheck === "wrong") return "wrong_chain";
    // A policy, not an outage: its circuit still opens and half-opens, so a URL that resolves
    // elsewhere later is noticed by the next probe.
    if (this.endpointRefused) return "refused";
    if (this.circuitOpen) return now >= this.openUntil ? "half_open" : "circuit_open";
    if (this.chainCheck === "pending" || this.head < 0) return "checking";
    if (this.outOfSync) return "lagging";
    return this.probationLeft > 0 ? "probation" : "healthy";
  }

  eligible(now: number): boolean {
    const state = this.state(now);
    return state === "healthy" || state === "probation";
  }

  /** A successful answer to a client call (a result or an error that is not the provider's fault). */
  recordSuccess(latencyMs: number): void {
    this.consecutiveFailures = 0;
    this.recordAnswer(latencyMs);
  }

  /**
   * An attempt cut off unanswered after `latencyMs` (a hedge answered first): its latency was at
   * least that. Only a bound past the average says something, and it moves the average alone (no
   * error, no success): a provider that answers its probes but never a client call would otherwise
   * keep the latency of its probes, and its share, while every call drawn to it waits for a hedge.
   * Not in answeredLatencyMs: a hedge waiting for a multiple of an average the bounds raised waited
   * longer each time, up to seconds a call (a re-probe of the review's fix).
   */
  recordLatencyAtLeast(latencyMs: number): void {
    if (!(latencyMs > this.latencyMs)) return; // (NaN before its first answer: an unanswered call sets no average)
    this.latencyMs += this.scoring.latencyAlpha * (latencyMs - this.latencyMs);
  }

  /** Latency, error rate and probation, for client calls and probes alike. */
  private recordAnswer(latencyMs: number): void {
    const s = this.scoring;
    this.latencyMs = ewma(this.latencyMs, latencyMs, s.latencyAlpha);
    this.answeredLatencyMs = ewma(this.answeredLatencyMs, latencyMs, s.latencyAlpha);
    this.latencySumMs += latencyMs;
    this.latencySamples++;
    this.errorRate -= s.errorAlpha * this.errorRate;
    this.endpointRefused = false;
    if (this.probationLeft > 0 && !this.circuitOpen) {
      this.probationLeft--;
      if (this.probationLeft === 0) {
        this.openCount = 0; // proven again: the next opening starts from the base period
        this.onChange();
      }
    }
  }

  recordFailure(kind: FailureKind, detail: string, now: number): void {
    this.noteFailure(kind, detail, now);
    this.errorRate += this.scoring.errorAlpha * (1 - this.errorRate);
    this.consecutiveFailures++;
    if (this.probationLeft > 0) this.probationLeft = this.scoring.probationSuccesses; // probation needs a clean run
    if (!this.circuitOpen && this.consecutiveFailures >= this.circuit.failureThreshold) this.open(now);
  }

  /** A health probe answered: in half-open state this closes the circuit into probation. */
  recordProbeSuccess(latencyMs: number, now: number): void {
    this.probes++;
    if (this.circuitOpen) {
      if (now < this.openUntil) return; // a probe that started before the circuit opened
      this.circuitOpen = false;
      this.consecutiveFailures = 0;
      this.probationLeft = Math.max(1, this.scoring.probationSuccesses);
      this.errorRate = Math.min(this.errorRate, this.scoring.recoveringErrorRate);
      this.onChange();
    }
    // Not a reset of consecutive failures: eth_blockNumber answering says little about client calls that fail.
    this.recordAnswer(latencyMs);
  }

  /** A health probe failed: in half-open state the circuit opens again for twice as long. */
  recordProbeFailure(kind: FailureKind, detail: string, now: number): void {
    this.probes++;
    if (this.circuitOpen) {
      if (now >= this.openUntil) this.open(now);
      this.noteFailure(kind, detail, now);
      return;
    }
    this.recordFailure(kind, detail, now);
  }

  private noteFailure(kind: FailureKind, detail: string, now: number): void {
    this.failures[failureIndex.get(kind) ?? 0]++;
    this.lastFailure = `${kind}: ${detail}`;
    this.lastFailureAt = now;
    this.endpointRefused = kind === "endpoint_refused";
  }

  private open(now: number): void {
    this.openCount++;
    const period = Math.min(this.circuit.maxOpenMs, this.circuit.baseOpenMs * 2 ** (this.openCount - 1));
    this.circuitOpen = true;
    this.openUntil = now + period;
    this.probationLeft = this.scoring.probationSuccesses;
    this.onChange();
  }

  setChainCheck(reported: number, expected: number, now: number): void {
    this.reportedChainId = reported;
    this.lastChainCheckAt = now;
    const verdict = reported === expected ? "ok" : "wrong";
    if (verdict !== this.chainCheck) {
      this.chainCheck = verdict;
      this.onChange();
    }
  }

  /** Whether it is known to hold block `n`: its probed head or an answer reached it. */
  holdsBlock(n: number): boolean {
    return this.head >= n || this.answeredHead >= n;
  }

  /** It answered its head as `height`: a higher block credited to it from another answer of its is not to be counted on. */
  answeredHeadBelow(height: number): void {
    if (this.answeredHead > height) this.answeredHead = -1;
  }

  setHead(head: number, now: number): void {
    const first = this.head < 0;
    if (head < this.head) this.answeredHead = -1; // its chain went back (a reorganisation, a node reset): what it showed may be gone
    this.head = head;
    this.headAt = now;
    if (first) this.onChange();
  }

  /**
   * Sets the lag (blocks behind the lower median head) and whether the head is out of sync: more
   * than maxLagBlocks behind the lower median, or more than maxLeadBlocks ahead of the upper one.
   * Returns true when that flipped.
   */
  setLag(lowerMedian: number, upperMedian: number): boolean {
    this.lag = this.head < 0 ? 0 : lowerMedian - this.head;
    const outOfSync = this.head >= 0 && (this.lag > this.scoring.maxLagBlocks || this.head - upperMedian > this.scoring.maxLeadBlocks);
    if (outOfSync === this.outOfSync) return false;
    this.outOfSync = outOfSync;
    this.onChange();
    return true;
  }

  /** Ends a traffic-share window (called every shareWindowMs). */
  rotateWindow(): void {
    this.previousWindowServed = this.windowServed;
    this.windowServed = 0;
  }

  failureCount(kind: FailureKind): number {
    return this.failures[failureIndex.get(kind) ?? 0];
  }
}
