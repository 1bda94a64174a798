import { performance } from "node:perf_hooks";
import { blockNumberIn, namedBlock, readsHeadBlock, readsLatest, sameBlock, type ClientHeads } from "./blocks.ts";
import { contradiction } from "./contradiction.ts";
import { RpcCode } from "./errors.ts";
import type { FailureKind, ProviderHealth } from "./health.ts";
import type { UpstreamDispatcher } from "./httpClient.ts";
import { cannotHoldResponse, errorResponse, resultResponse, upstreamBody, type RpcCall, type RpcId } from "./jsonRpc.ts";
import type { FailoverParameters } from "./options.ts";
import type { ChainTable, Random } from "./routingTable.ts";
import { signedTransactionOf } from "./transactionHash.ts";
import { minAttemptMs, UpstreamAttempt, writeMethods, type AnswerBudget, type ConnectionGates, type Outcome } from "./upstream.ts";
import type { WriteAffinity } from "./writeAffinity.ts";

// One call, routed: draw a provider, and if it fails (connect error, timeout, 5xx, 429, malformed
// reply, wrong id) draw another, all within one deadline. Reads may be hedged: when the call is
// slower than the chain's latency quantile a second attempt starts and the first good answer wins.
// A result or an execution error is an answer and is never retried. A raw transaction goes to
// several providers at once (same bytes, same hash).
//
// The hot path is event-driven: each attempt reports to its call, which decides at once (answer,
// retry, give up); one shared sweeper timer, armed for the earliest moment something is due,
// enforces attempt timeouts and starts hedges, so a call costs no promise and no timer of its own.

export type RouteContext = {
  client: UpstreamDispatcher;
  failover: FailoverParameters;
  random: Random;
  counters: { retries: number; hedges: number };
  sweeper: Sweeper;
  /** The router's connections to each origin (limits.connectionsPerProvider): more attempts wait in its queue. */
  gates: ConnectionGates;
  /** Who took each client's last transaction (asked first about its transactions). */
  affinity: WriteAffinity;
  /** The newest block each client was shown (its reads of the latest state need it). */
  heads: ClientHeads;
};

/** How one call is routed, past its providers' weights. */
export type RouteOptions = {
  /** Providers not to ask. */
  exclude?: readonly ProviderHealth[];
  /** Holds the answers being collected against a client's part of the buffer budget. */
  budget?: AnswerBudget | null;
  /** The client's address (ClientShare.key), for its calls about its own transactions (writeAffinity.ts) and its reads of the latest state (blocks.ts); null for the router's own calls. */
  client?: string | null;
};

export type CallResult = {
  /** The response object's bytes (the provider's own when it answered). */
  bytes: Buffer;
  /** Who answered; null when the router answered itself (an error). */
  provider: ProviderHealth | null;
  /** The answer's result when it is a quantity (an eth_blockNumber's height), else null. */
  quantity: number | null;
  attempts: number;
  /** "answer": a provider's answer; otherwise why the router answered itself. */
  outcome: "answer" | "no_provider" | "upstream_failed" | "deadline_exceeded" | "over_budget" | "abandoned";
};

/** A call being routed, as its caller holds it. */
export type CallHandle = {
  /**
   * Nobody waits for the answer any more (the client went away): no new attempt starts, attempts
   * still waiting for a connection are dropped, those already sent run to their end unused, and
   * the call ends at once ("abandoned"). A broadcast goes on: its copies may already be out.
   */
  abandon: () => void;
};

/**
 * Failures no request can cause (an address the policy refuses, a rate limit, a redirect, another
 * HTTP status, a reply that is not JSON-RPC or not for our id; and a connection that failed before
 * the request went out): a call that meets them tries further providers without counting them
 * against maxAttempts, so while one healthy provider remains it is reached. Failures a request can
 * cause count (a timeout, a 5xx, an answer too large, a JSON-RPC fault, a connection lost once the
 * request was out: a request that kills a node must not be sent to every provider).
 */
const providerOnly: ReadonlySet<FailureKind> = new Set<FailureKind>(["endpoint_refused", "http_429", "http_redirect", "http_status", "malformed", "wrong_id"]);

/** Whether `call` asks for the state at "pending" (eth_getTransactionCount's second param). */
function atPending(call: RpcCall): boolean {
  return Array.isArray(call.params) && call.params[1] === "pending";
}

/** Calls about a client's transaction that a provider not knowing it answers with null. */
const nullWhenUnknown: ReadonlySet<string> = new Set(["eth_getTransactionByHash", "eth_getTransactionReceipt"]);

/**
 * A write copy's error that may only mean another copy of the transaction was mined first. (Not
 * "already known": the transaction waits in that node's pool, which says more than most errors.)
 */
const nonceTooLow = /nonce too low/i;

/**
 * One timer for all calls in flight: attempt timeouts and hedges. It is armed for the earliest
 * moment a listed call needs looking at and sleeps otherwise: a fixed 10 ms interval cost about
 * 20 µs of CPU per request at one connection (each wakeup of an idle event loop is dear here).
 */
export type { CallRouting };
export type Sweeper = {
  add: (call: CallRouting) => void;
  remove: (call: CallRouting) => void;
  /** A listed call needs looking at by `at` (performance.now() ms). */
  wake: (at: number) => void;
  /** Whether a wakeup is set (none while no call is listed): for tests. */
  readonly armed: boolean;
  stop: () => void;
};

export function startSweeper(slackMs = 5): Sweeper {
  // An intrusive doubly linked list: adding and removing a call allocates nothing.
  let head: CallRouting | null = null;
  let timer: NodeJS.Timeout | null = null;
  let armedAt = Infinity;
  let stopped = false;
  const arm = (at: number) => {
    if (stopped) return;
    if (timer !== null) clearTimeout(timer);
    armedAt = at;
    // libuv counts whole milliseconds from the start of the loop turn: a spare one keeps it from firing early.
    timer = setTimeout(sweep, Math.max(1, Math.ceil(at - performance.now()) + 1));
    timer.unref();
  };
  const sweep = () => {
    timer = null;
    armedAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (let call: CallRouting | null = head; call !== null; ) {
      const following: CallRouting | null = call.next;
      const at = call.tick(now);
      if (at < next) next = at;
      call = following;
    }
    // Calls a moment apart share a sweep. (A call that ended in its tick may still name a time: with
    // none listed, nothing is due.)
    if (head !== null && next < Infinity && next < armedAt) arm(Math.max(next, now + slackMs));
  };
  const wake = (at: number) => {
    if (at < armedAt - slackMs) arm(at);
  };
  return {
    add: (call) => {
      if (call.listed) return;
      call.listed = true;
      call.prev = null;
      call.next = head;
      if (head !== null) head.prev = call;
      head = call;
      wake(call.nextCheckAt());
    },
    remove: (call) => {
      if (!call.listed) return;
      call.listed = false;
      if (call.prev !== null) call.prev.next = call.next;
      else head = call.next;
      if (call.next !== null) call.next.prev = call.prev;
      call.prev = call.next = null;
      // Nothing left to look at: no wakeup for nothing (at one connection nearly every call ends
      // before its check is due, and a wakeup of an idle event loop costs more than a timer).
      if (head === null && timer !== null) {
        clearTimeout(timer);
        timer = null;
        armedAt = Infinity;
      }
    },
    wake,
    get armed() {
      return timer !== null;
    },
    stop: () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
  };
}

/** An answer giving the chain's head: a height, or the latest block numbered `height` (`block`: it, parsed). */
type HeadAnswer = { bytes: Buffer; provider: ProviderHealth; height: number; block?: unknown };

/** The state of one call being routed; decides on each attempt's outcome as it arrives. */
class CallRouting implements CallHandle {
  /** The sweeper's list links. */
  listed = false;
  prev: CallRouting | null = null;
  next: CallRouting | null = null;
  private readonly ctx: RouteContext;
  private readonly table: ChainTable;
  private readonly call: RpcCall;
  private readonly write: boolean;
  /** The block the call names by number (-1: none): providers known to hold it are asked first. */
  private readonly block: number;
  /**
   * The call asks for the chain's head: its height (eth_blockNumber) or its block
   * (eth_getBlockByNumber("latest")). An answer past what another provider is known to hold is
   * held (answerHead).
   */
  private readonly readsHead: "height" | "block" | null;
  private readonly body: string;
  private readonly id: RpcId;
  private readonly started: number;
  private readonly deadline: number;
  private readonly resolve: (result: CallResult) => void;
  private readonly budget: AnswerBudget | null;
  private readonly client: string | null;
  /** Whose turn its attempts wait in for a provider's connection (see ConnectionGate). */
  private readonly turn: string | null;
  /** The providers that took the client's last transaction, asked first about its transactions. */
  private readonly prefer: readonly ProviderHealth[] | null;
  /** The sender whose nonce at "pending" the client asks: an answer leaving out the client's transaction a provider took is asked elsewhere. */
  private readonly pendingNonceOf: string | null;
  /**
   * A provider the call prefers was drawn (one that took the client's transaction, or one known to
   * hold the block): its hedges stay among those, and a null from another is not taken as the answer.
   */
  private narrowed = false;
  /** A broadcast: the providers whose copy answered with a result (the client's calls about it prefer them). */
  private tookBy: ProviderHealth[] | null = null;
  /** Providers tried, and those the caller ruled out. */
  private readonly tried: ProviderHealth[];
  private readonly inFlight: UpstreamAttempt[] = [];
  private attempts = 0;
  /**
   * Attempts counted against maxAttempts. Not counted: a hedge (the router's own bet on a slow
   * provider), and an attempt that failed in a way no request can cause (see providerOnly).
   */
  private counted = 0;
  private hedgeAttempt: UpstreamAttempt | null = null;
  /** When an attempt still waiting in the router's queue next looks for a provider with a free connection (see tick). */
  private escapeAt = Infinity;
  /** How long an attempt may take once sent before a hedge starts (Infinity: no hedge, or hedged already). */
  private hedgeAfterMs = Infinity;
  private lastFailure = "";
  private fallback: { bytes: Buffer; provider: ProviderHealth } | null = null;
  /** The fallback's number, when it is a nonce that left out the client's transaction or a head below its block: a higher one replaces it. */
  private fallbackLow = -1;
  /** Providers that answered a head below the client's block in this call (their probed heads may say more: not yet probed since). */
  private belowBy: ProviderHealth[] | null = null;
  /** A head (a height, or the latest block) past what another provider is known to hold, while another is asked (answerHead). */
  private heldHead: HeadAnswer | null = null;
  /** The fallback is a write copy's "nonce too low": another copy's error says more. */
  private fallbackNonceTooLow = false;
  /** An answer came that the client could not hold: if nothing better comes, it hears to retry. */
  private overBudget = false;
  private finished = false;
  /** A provider answered the call (its answer, or its error as a fallback, went to the client). */
  private answered = false;
  /**
   * Failures the request itself may have caused (a timeout, a 5xx, an answer too large, a JSON-RPC
   * fault), held until the call ends: they count against their providers only if another provider
   * answered it. A call that fails the same way everywhere (a heavy eth_call, a huge eth_getLogs)
   * says nothing about the providers, and a client must not be able to open their circuits with it.
   */
  private suspects: { provider: ProviderHealth; kind: FailureKind; detail: string; at: number }[] | null = null;

  constructor(
    ctx: RouteContext,
    table: ChainTable,
    call: RpcCall,
    id: RpcId,
    resolve: (result: CallResult) => void,
    options: RouteOptions,
  ) {
    const exclude = options.exclude ?? nobody;
    this.ctx = ctx;
    this.tried = exclude.length === 0 ? [] : [...exclude];
    this.table = table;
    this.call = call;
    this.id = id;
    this.resolve = resolve;
    this.write = writeMethods.has(call.method);
    this.readsHead = call.method === "eth_blockNumber" ? "height" : readsHeadBlock(call) ? "block" : null;
    this.client = options.client ?? null;
    this.turn = this.client ?? options.budget?.turn ?? null; // a filter's calls for a client carry its budget
    this.started = performance.now();
    // A read of the latest state needs the newest block its client was shown, as if it named it.
    const named = namedBlock(call);
    const shown = this.client === null ? -1 : ctx.heads.of(table.chainId, this.client, this.started);
    this.block = shown >= 0 && readsLatest(call) ? Math.max(named, shown) : named;
    // A broadcast's answer (a hash) is small, and "retry" would be a lie once a copy went out.
    this.budget = this.write ? null : (options.budget ?? null);
    this.body = upstreamBody(call, id);
    this.prefer = this.client === null ? null : ctx.affinity.preferred(table.chainId, this.client, call.method, this.started);
    const sender = this.client !== null && call.method === "eth_getTransactionCount" && atPending(call) ? (call.params as unknown[])[0] : null;
    this.pendingNonceOf = typeof sender === "string" ? sender : null;
    this.deadline = this.started + ctx.failover.deadlineMs;
  }

  start(): void {
    const initial = this.write ? this.ctx.failover.writeFanout : 1;
    for (let i = 0; i < initial; i++) if (!this.launch()) break;
    if (this.finished) return; // the HTTP client may fail an attempt inside dispatch: all of them, at once
    if (this.attempts > 0) {
      this.scheduleHedge();
      this.ctx.sweeper.add(this);
      return;
    }
    if (this.table.awaitingProbes(performance.now())) void this.waitForProbes();
    else this.giveUp();
  }

  /** Providers that just joined are probed before they get traffic: wait for that rather than fail. */
  private async waitForProbes(): Promise<void> {
    while (!this.finished && this.attempts === 0 && this.table.awaitingProbes(performance.now()) && this.deadline - performance.now() > minAttemptMs) {
      await this.table.nextChange(Math.min(250, this.deadline - performance.now()));
      const initial = this.write ? this.ctx.failover.writeFanout : 1;
      for (let i = 0; i < initial; i++) if (!this.launch()) break;
    }
    if (this.finished) return;
    if (this.attempts === 0) this.giveUp();
    else {
      this.scheduleHedge();
      this.ctx.sweeper.add(this);
    }
  }

  private scheduleHedge(): void {
    const f = this.ctx.failover;
    if (this.write || !f.hedge || this.counted >= f.maxAttempts) return;
    const quantile = this.table.latency.value();
    if (!Number.isNaN(quantile)) this.hedgeAfterMs = Math.max(f.hedgeMinMs, quantile);
  }

  /** Starts an attempt on `chosen`, or on a provider drawn now. */
  private launch(hedge = false, chosen: ProviderHealth | null = null): boolean {
    if (this.finished) return false; // abandoned while it waited for probes
    const now = performance.now();
    const remaining = this.deadline - now;
    // A hedge spends none of the failover budget: a slow provider must not cost the call the retry
    // that would have reached a healthy one.
    if ((!hedge && this.counted >= this.ctx.failover.maxAttempts) || remaining < minAttemptMs) return false;
    const provider = chosen ?? this.pickProvider(now, hedge);
    if (provider === null) return false;
    this.tried.push(provider);
    this.attempts++;
    if (!hedge) this.counted++;
    const attempt = new UpstreamAttempt(provider, this.id, Math.min(this.ctx.failover.attemptTimeoutMs, remaining), this, this.budget, this.deadline, this.call.method, this.turn);
    this.inFlight.push(attempt);
    if (hedge) this.hedgeAttempt = attempt;
    attempt.start(this.ctx.client, this.body, this.ctx.gates);
    if (attempt.queued && this.escapeAt === Infinity) this.escapeAt = now + this.ctx.failover.hedgeMinMs;
    if (this.listed) this.ctx.sweeper.wake(Math.min(attempt.deadlineAt, this.escapeAt)); // a retry (the first ones are added with the call)
    return true;
  }

  /**
   * A provider by weight; for a client's call about its transactions, first one of the eligible
   * providers that took its last one (writeAffinity.ts); for a call naming a block, one known to
   * hold it if any is (blocks.ts), else any: the block may be new, and a provider that has it not
   * be known to yet. A hedge of a narrowed call stays among the providers it prefers: one without
   * what the call asks for would answer first, with less (an old nonce, logs that stop at its
   * head). Not a client's transaction or receipt: a provider that does not know it answers null,
   * held back while one that took it may still answer (settle), and the others know it once it is
   * mined (a soak: receipts waited 5 s for the hung provider that took their transactions).
   */
  private pickProvider(now: number, hedge: boolean): ProviderHealth | null {
    const preferred = this.pickPreferred(now);
    const holder = preferred === null && this.block >= 0 ? this.draw(now, this.block) : null;
    if (preferred !== null || holder !== null) {
      this.narrowed = true;
      return preferred ?? holder;
    }
    return hedge && this.hedgeStaysNarrowed() ? null : this.draw(now, -1);
  }

  /** Whether a hedge of this call stays among the providers it prefers (pickProvider says why). */
  private hedgeStaysNarrowed(): boolean {
    return this.narrowed && !(this.prefer !== null && nullWhenUnknown.has(this.call.method));
  }

  /**
   * One of the providers that took the client's transaction, drawn evenly among those eligible,
   * still in the set and not tried yet; for a call at a block (the nonce at "latest": the newest
   * block the client was shown), known to hold it: one behind would answer the nonce of before the
   * transaction. Not at "pending": a provider that took it counts it, a block behind or not, and
   * one at the head that has not seen it yet does not ("nonce too low" next).
   */
  private pickPreferred(now: number): ProviderHealth | null {
    if (this.prefer === null) return null;
    const block = atPending(this.call) ? -1 : this.block;
    let chosen: ProviderHealth | null = null;
    let count = 0;
    for (const p of this.prefer) {
      if (p.retired || this.tried.includes(p) || !p.eligible(now) || (block >= 0 && !p.holdsBlock(block))) continue;
      if (this.ctx.random() * ++count < 1) chosen = p; // each of the `count` so far kept with chance 1/count
    }
    return chosen;
  }

  /**
   * Whether `p`'s answer is a null or an empty log list for the block the call names, which `p` is
   * not known to hold, while it is behind the others (its probed head below the lower median): it
   * may not have the block yet, where others have (a block newer than the probes, known to no
   * provider: a dapp walkthrough got a null block and no logs for the block of the receipt it had
   * just been given). Another is asked; if all answer so, the answer is given. Not of a provider
   * level with the others: a block past everyone's head (a poll from the next block on) would
   * cost every provider's attempt.
   */
  private lacksBlock(p: ProviderHealth, answer: Outcome & { type: "answer" }): boolean {
    const empty = answer.nullResult || (this.call.method === "eth_getLogs" && Array.isArray(answer.result) && answer.result.length === 0);
    if (!empty || p.head >= this.table.medianHead) return false;
    const named = namedBlock(this.call); // (not the client's block a read at latest is routed by)
    return named >= 0 && !p.holdsBlock(named);
  }

  /** Whether `p` is one the call prefers: it took the client's transaction, or is known to hold the block. */
  private preferred(p: ProviderHealth): boolean {
    return (this.prefer !== null && this.prefer.includes(p)) || (this.block >= 0 && p.holdsBlock(this.block));
  }

  /**
   * A provider by weight (with `block` ≥ 0, among those known to hold it; no fallback to
   * providers out of sync then); when all of the router's connections to its origin are busy,
   * another eligible provider with a free one (its request would otherwise wait in the router's
   * queue), else the busy one after all. So traffic follows the weights until a provider is
   * saturated, and the overflow goes where it is served at once. Up to three more origins are
   * tried, each draw skipping the origins already found busy (one operator's paths on one host are
   * one origin).
   */
  private draw(now: number, block: number): ProviderHealth | null {
    const gates = this.ctx.gates;
    const drawn = this.table.pick(this.ctx.random, this.tried, now, block < 0, null, block);
    if (drawn === null || gates.hasFree(drawn.origin)) return drawn;
    const busyOrigins = new Set([drawn.origin]);
    for (let i = 0; i < 3; i++) {
      const other = this.table.pick(this.ctx.random, this.tried, now, false, busyOrigins, block);
      if (other === null) break;
      if (gates.hasFree(other.origin)) return other;
      busyOrigins.add(other.origin);
    }
    return drawn;
  }

  /** An attempt left the router's queue: its own deadline (earlier than the call's) and its hedge are now due. */
  sent(): void {
    if (this.listed) this.ctx.sweeper.wake(this.nextCheckAt());
  }

  /**
   * When to hedge: the latency quantile after the one attempt in flight went out, and not before
   * its provider's own usual time (a multiple of its latency average; by half the attempt timeout
   * at the latest). A hedge is for a provider slower than it usually is: one slow by nature is
   * drawn less often by its latency factor already, and hedging every call drawn to it would cost
   * a second request each time and hand its share to the faster ones. Not while the attempt waits
   * in the router's queue: one more request behind busy connections would only lengthen it.
   */
  private hedgeAt(): number {
    if (this.finished || this.inFlight.length !== 1) return Infinity;
    const attempt = this.inFlight[0];
    const f = this.ctx.failover;
    const usual = Math.min(attempt.provider.answeredLatencyMs * f.hedgeOwnLatencyFactor, f.attemptTimeoutMs / 2); // NaN before its first answer
    return Number.isNaN(attempt.sentAt) ? Infinity : attempt.sentAt + (usual > this.hedgeAfterMs ? usual : this.hedgeAfterMs);
  }

  /**
   * Called by the sweeper: time out overdue attempts, start a hedge when the call is slow. Returns
   * when the call next needs looking at.
   */
  tick(now: number): number {
    for (let i = this.inFlight.length - 1; i >= 0; i--) {
      const attempt = this.inFlight[i];
      if (attempt !== undefined && now >= attempt.deadlineAt) attempt.timeout();
    }
    if (now >= this.escapeAt) this.escapeQueue(now);
    if (now >= this.hedgeAt()) {
      this.hedgeAfterMs = Infinity;
      if (this.launch(true)) this.ctx.counters.hedges++;
    }
    return this.nextCheckAt();
  }

  /** The next attempt deadline, hedge or queue escape time (Infinity: nothing to wait for). */
  nextCheckAt(): number {
    let at = Math.min(this.hedgeAt(), this.escapeAt);
    for (const attempt of this.inFlight) if (attempt.deadlineAt < at) at = attempt.deadlineAt;
    return at;
  }

  /**
   * An attempt waiting in the router's queue for a provider's connections (all busy: the provider
   * hangs, or a burst) moves to another provider that has a free connection now, if one is drawn;
   * else it keeps its place and looks again after hedgeMinMs. Nothing was sent, so it is neither
   * an attempt more nor a retry, and its provider may still be asked. Without this, a call queued
   * behind a hanging provider's connections waited there until its deadline while others were idle
   * (a soak: 3 receipts failed so, behind the hung provider that took their transaction, with two
   * healthy providers of five).
   */
  private escapeQueue(now: number): void {
    this.escapeAt = Infinity;
    const waiting = this.inFlight.find((a) => a.queued);
    if (waiting === undefined || this.finished || this.deadline - now < minAttemptMs) return;
    // Where a draw for the call would send it now: the providers it prefers first (they took the
    // client's transaction, they hold its block), then (not for a hedge of a narrowed call) any,
    // as a retry would: the ones that took a transaction may hang, and the others know it once
    // mined. But a call waiting for a provider known to hold its block does not move to one not
    // known to: that one would answer less (null, "header not found").
    const hedge = waiting === this.hedgeAttempt;
    let other = this.pickProvider(now, hedge);
    // A preferred one busy too (both providers that took a transaction hang): any with a free
    // connection. (A call not narrowed was drawn among all already.)
    if ((other === null || !this.ctx.gates.hasFree(other.origin)) && this.narrowed && !(hedge && this.hedgeStaysNarrowed())) other = this.draw(now, -1);
    if (other !== null && this.block >= 0 && waiting.provider.holdsBlock(this.block) && !other.holdsBlock(this.block)) other = null;
    if (other !== null && this.ctx.gates.hasFree(other.origin)) {
      waiting.cancel(); // leaves the wait list: not a byte was sent
      this.tried.splice(this.tried.lastIndexOf(waiting.provider), 1); // launch listed it: it may be asked again
      this.attempts--;
      if (!hedge) this.counted--;
      this.launch(hedge, other);
      if (this.inFlight.length === 0) return this.finishWithFallbackOrError();
    }
    if (this.escapeAt === Infinity && this.inFlight.some((a) => a.queued)) this.escapeAt = now + this.ctx.failover.hedgeMinMs;
  }

  /**
   * An answer that contradicts the call (another block, a log outside the filter, a made-up hash
   * for a transaction sent: contradiction.ts) is not the answer: another provider is asked, and it
   * is held against its provider once another answers (were the router's reading wrong for some
   * chain, it would blame nobody).
   */
  private checked(outcome: Outcome & { type: "answer" }): Outcome {
    const wrong = contradiction(this.call, outcome.result);
    if (wrong === null) return outcome;
    return { type: "failure", kind: "wrong_answer", detail: `answered ${this.call.method} ${wrong}`, latencyMs: outcome.latencyMs };
  }

  settle(attempt: UpstreamAttempt, settled: Outcome): void {
    const index = this.inFlight.indexOf(attempt);
    if (index >= 0) this.inFlight.splice(index, 1);
    const p = attempt.provider;
    // Cut off by us (a hedge answered, or the client left) once out: it took at least this long.
    if (settled.type === "cancelled" && !Number.isNaN(attempt.sentAt)) p.recordLatencyAtLeast(settled.latencyMs);
    // A null from a provider the call does not prefer, while it prefers others, and a nonce that
    // leaves out a transaction a provider took: that provider may lack what the call asks for
    // (another is asked; if none does better, its answer is given).
    const lowNonce = settled.type === "answer" && this.missesTakenNonce(settled.quantity) ? settled.quantity! : -1;
    let outcome: Outcome =
      settled.type === "answer" && ((this.narrowed && settled.nullResult && !this.preferred(p)) || lowNonce >= 0 || this.lacksBlock(p, settled))
        ? { type: "soft", bytes: settled.bytes, latencyMs: settled.latencyMs }
        : settled;
    if (outcome.type === "answer" && outcome.error === null) outcome = this.checked(outcome);
    // The head the answer gives, when the call asks for it (an error gives none).
    const head = outcome.type !== "answer" || this.readsHead === null ? null : this.readsHead === "height" ? outcome.quantity : blockNumberIn(outcome.result);
    // A head below the newest block its client was shown (a provider's eth_blockNumber stuck while
    // its other answers go on, as behind a load balancer with one node stalled; or a block too new
    // for the probes to say who holds it): the client would go back. Another provider is asked; if
    // none shows as much, the client's block is given while a provider is known to hold it (one
    // failed attempt must not take the client back: review 22), else the highest head answered, and
    // the client's block comes down to it (finishWithFallbackOrError): a height no provider is known
    // to hold (a liar's, one of a chain gone back) would otherwise stay the client's for a minute.
    let lowHead = -1;
    if (outcome.type === "answer" && head !== null && head < this.block && this.heldHead === null) {
      lowHead = head;
      p.answeredHeadBelow(head);
      (this.belowBy ??= []).push(p);
      outcome = { type: "soft", bytes: outcome.bytes, latencyMs: outcome.latencyMs };
    }
    // (Not a soft answer, which says no more than an error does: a provider answering every read
    // with "header not found" at once would otherwise keep a fast latency.)
    if (outcome.type === "answer") {
      p.recordSuccess(outcome.latencyMs);
      this.table.latency.add(outcome.latencyMs);
      if (outcome.block !== null) this.shown(p, outcome.block); // (a latest block's number once given: gaveBlock)
      // (Also a copy answering after the call was answered.)
      if (this.write && this.client !== null && outcome.error === null) this.tookTransaction(p);
    } else if (outcome.type === "failure") {
      const providersOwn = providerOnly.has(outcome.kind) || (outcome.kind === "connect" && Number.isNaN(attempt.sentAt));
      // (Answered already: a write copy failing after another copy's answer.)
      if (outcome.callsOwn) {
        // The call's own size (a 413 past the common limit): held against nobody.
      } else if (providersOwn || this.answered) p.recordFailure(outcome.kind, outcome.detail, performance.now());
      else if (!this.finished) (this.suspects ??= []).push({ provider: p, kind: outcome.kind, detail: outcome.detail, at: performance.now() });
      // The provider's own failing, whatever was asked: another provider costs the call nothing more
      // than it would have cost on a healthy one, so it does not use up the call's retries.
      if (attempt !== this.hedgeAttempt && providersOwn) this.counted--;
    }
    if (this.finished) {
      // A write copy finishing after the answer went out: counted above.
      if (this.inFlight.length === 0) this.ctx.sweeper.remove(this);
      return;
    }

    if (outcome.type === "queued") {
      // The call's deadline came while this attempt waited for a connection: not the provider's doing.
      this.lastFailure = `${p.address}: waited for a connection to it (the router's ${this.ctx.gates.connections} were busy or connecting)`;
      if (this.inFlight.length === 0) this.finishWithFallbackOrError();
      return;
    }
    if (outcome.type === "over_budget") {
      // Not retried (another provider would send the same answer); an attempt still collecting (a
      // hedge) may fit once this one's bytes are given back.
      this.overBudget = true;
      if (this.inFlight.length === 0) this.finishWithFallbackOrError();
      return;
    }
    if (outcome.type === "answer") {
      if (this.write && outcome.error !== null) {
        // "nonce too low" from one copy may only mean another copy already got in: wait for the
        // others, and give another copy's error rather than that one (a revert says why).
        const tooLow = nonceTooLow.test(outcome.error.message);
        if (this.fallback === null || (this.fallbackNonceTooLow && !tooLow)) {
          this.fallback = { bytes: outcome.bytes, provider: p };
          this.fallbackNonceTooLow = tooLow;
        }
        if (this.inFlight.length === 0) this.finishWithFallbackOrError();
        return;
      }
      if (this.heldHead !== null && head === null) return this.answerHeld(null); // an error (or a null block) is no head
      if (head !== null) return this.answerHead({ bytes: outcome.bytes, provider: p, height: head, block: outcome.result });
      this.answer(outcome.bytes, p, "answer", outcome.quantity);
      return;
    }
    if (outcome.type === "soft") {
      // Of nonces that all leave the transaction out, the highest (the transaction may be queued
      // behind a gap, or dropped); of heads below the client's block, the highest.
      const low = Math.max(lowNonce, lowHead);
      if (low > this.fallbackLow) [this.fallback, this.fallbackLow] = [{ bytes: outcome.bytes, provider: p }, low];
      else this.fallback ??= { bytes: outcome.bytes, provider: p };
    } else if (outcome.type === "failure") this.lastFailure = `${p.address}: ${outcome.detail}`;
    else return; // cancelled by us
    // No retry once an answer was too large to hold: another provider's would be as large.
    if (!this.overBudget && (!this.write || this.inFlight.length === 0)) {
      if (this.launch()) this.ctx.counters.retries++;
      if (this.finished) return; // the retry settled the call already (it failed inside dispatch)
    }
    if (this.inFlight.length === 0) this.finishWithFallbackOrError();
  }

  /**
   * An eth_blockNumber answer past the highest block another provider is known to hold
   * (ChainTable.headToGive) is held while another provider is asked, and the lower of the two
   * answers given (answerHeldHeight); so is an eth_getBlockByNumber("latest") answer, by its
   * block's number (answerHeldBlock). A provider naming heights the others have not reached would
   * otherwise move clients and filters past blocks nobody has, which they skip for good once mined
   * (the hostile-provider fuzz: viem's watchEvent lost 34 of 40 logs to a lead of three blocks; a
   * block three numbers ahead reached 17 of 40 latest-block calls, and viem's watchBlocks skips up
   * to it); and a provider that merely got a new block first costs the call a second request,
   * until another's answer or probe shows the block (the same fuzz, re-run on a version that gave
   * the block another was known to hold at once: 40 of 40 calls made right after a block were behind it).
   */
  private answerHead(answer: HeadAnswer): void {
    if (this.heldHead !== null) return this.answerHeld(answer);
    const { bytes, provider: p, height } = answer;
    const bound = this.table.headToGive(p);
    if (bound < 0 || height <= bound) {
      if (this.readsHead === "block") this.gaveBlock(height, null); // (a height was learnt as it came: settle)
      return this.answer(bytes, p, "answer", this.readsHead === "height" ? height : null);
    }
    this.heldHead = answer;
    if (this.inFlight.length > 0) return; // a hedge is out already
    if (this.launch()) this.ctx.counters.retries++;
    else this.answerHeld(null);
  }

  private answerHeld(second: HeadAnswer | null): void {
    if (this.readsHead === "block") this.answerHeldBlock(second);
    else this.answerHeldHeight(second);
  }

  /**
   * The held height, brought down to a second answer's if lower, but not below the floor: the
   * block another provider is known to hold, or the client's shown head (a router-made answer
   * when it is neither provider's); with no second answer (or an error), the floor. (With fewer
   * than three fresh heads headToGive is maxLeadBlocks past the median, a height nobody may hold:
   * a liar asked first among two providers had the client given it, not the other's true head; so
   * the floor is also at most heldByAnother, the upper median or a height another answered.)
   */
  private answerHeldHeight(second: HeadAnswer | null): void {
    const held = this.heldHead!;
    const known = Math.min(this.table.headToGive(held.provider), this.table.heldByAnother(held.provider));
    const floor = Math.min(held.height, Math.max(known, this.block));
    const given = second === null ? floor : Math.max(floor, Math.min(second.height, held.height));
    if (given === held.height) return this.answer(held.bytes, held.provider, "answer", given);
    if (given === second?.height) return this.answer(second.bytes, second.provider, "answer", given);
    this.answer(resultResponse(this.id, `"0x${given.toString(16)}"`), held.provider, "answer", given);
  }

  /**
   * The held latest block, or another provider's: a block cannot be made, so a lower one is given
   * when it is no older than the client was shown (a real block behind the head is better than a
   * made-up one ahead); with no such answer (none, an error, a block older than that), another
   * provider is asked while attempts last, and the held block is given last.
   */
  private answerHeldBlock(second: HeadAnswer | null): void {
    const held = this.heldHead!;
    if (second !== null && second.height >= held.height) {
      // The held provider's block is borne out by another's reaching its number; the other holds it
      // if it gave that very block (a liar asked second may claim the number: a review).
      this.gaveBlock(held.height, second.height === held.height && sameBlock(held.block, second.block) ? [held.provider, second.provider] : [held.provider]);
      return this.answer(held.bytes, held.provider, "answer", null);
    }
    if (second !== null && second.height >= this.block) {
      this.gaveBlock(second.height, null);
      return this.answer(second.bytes, second.provider, "answer", null);
    }
    if (this.inFlight.length > 0) return; // another answer is coming
    // (Not past an answer too large to hold: another's would be as large.)
    if (!this.overBudget && this.launch()) this.ctx.counters.retries++;
    else this.answer(held.bytes, held.provider, "answer", null);
  }

  /**
   * A latest block numbered `height` is given: the client was shown it, and the table learns it of
   * `holders` only, whose answers another provider's bore out. Not of one provider's answer alone:
   * probes ask heights, not blocks, and a provider credited with a block it lacks (made up, or
   * claimed by number) would draw the calls naming that block, and its client's latest reads, until
   * its probed head went back (two reviews: its nulls and its old state given).
   */
  private gaveBlock(height: number, holders: readonly ProviderHealth[] | null): void {
    if (holders !== null) for (const p of holders) this.table.recordAnsweredHead(p, height);
    if (this.client !== null) this.ctx.heads.shown(this.table.chainId, this.client, height, performance.now());
  }

  /**
   * `p`'s answer shows it holds `block`: the table learns it from a height (between probes), and
   * the client learns it up to the head it may be given (ChainTable.headToGive: with three fresh
   * heads or more, one another provider is known to hold): one provider alone (a liar a few blocks
   * ahead, within what the table believes) would otherwise draw all its latest reads.
   */
  private shown(p: ProviderHealth, block: number): void {
    if (this.readsHead === "height") this.table.recordAnsweredHead(p, block);
    if (this.client === null) return;
    const bound = this.table.headToGive(p);
    const held = bound < 0 ? block : Math.min(block, bound);
    this.ctx.heads.shown(this.table.chainId, this.client, held, performance.now());
  }

  /**
   * `p` took the client's transaction: its calls about its transactions prefer it (and the other
   * copies that did), and a nonce at "pending" that leaves the transaction out is asked elsewhere.
   */
  private tookTransaction(p: ProviderHealth): void {
    if (this.tookBy === null) {
      this.tookBy = [p];
      const sent = Array.isArray(this.call.params) ? signedTransactionOf(this.call.params[0]) : null; // (a send without params is the provider's to refuse)
      this.ctx.affinity.took(this.table.chainId, this.client!, this.tookBy, sent, performance.now());
    } else if (!this.tookBy.includes(p)) this.tookBy.push(p);
  }

  /** Whether `count`, an answer to the sender's nonce at "pending", leaves out the client's transaction a provider took (WriteAffinity.missesTaken). */
  private missesTakenNonce(count: number | null): boolean {
    return this.pendingNonceOf !== null && count !== null && this.ctx.affinity.missesTaken(this.table.chainId, this.client!, this.pendingNonceOf, count, performance.now());
  }

  /** Ends the call with a provider's answer (or the router's own, when `provider` is null). */
  private answer(bytes: Buffer, provider: ProviderHealth | null, outcome: CallResult["outcome"] = "answer", quantity: number | null = null): void {
    if (this.finished) return;
    this.finished = true;
    // Hedges that lost are cancelled; copies of a write go on broadcasting (their outcomes still count).
    if (!this.write) for (let i = this.inFlight.length - 1; i >= 0; i--) this.inFlight[i]?.cancel();
    if (this.inFlight.length === 0) this.ctx.sweeper.remove(this); // else write copies still go on
    if (provider !== null) {
      provider.served++;
      provider.windowServed++;
      this.answered = true;
      if (this.suspects !== null) for (const s of this.suspects) s.provider.recordFailure(s.kind, s.detail, s.at);
    }
    this.suspects = null;
    this.resolve({ bytes, provider, quantity, attempts: this.attempts, outcome });
  }

  abandon(): void {
    if (this.finished || this.write) return;
    for (let i = this.inFlight.length - 1; i >= 0; i--) this.inFlight[i]?.abandon();
    this.answer(errorResponse(this.call.id, RpcCode.internalError, "the client went away"), null, "abandoned");
  }

  private finishWithFallbackOrError(): void {
    if (this.heldHead !== null) return this.answerHeld(null);
    if (this.fallback !== null) {
      if (this.readsHead !== null && this.fallbackLow >= 0 && this.client !== null) {
        // No provider asked showed the client's block (see settle).
        const now = performance.now();
        const held = this.table.providers.some((p) => p.holdsBlock(this.block) && p.eligible(now) && !this.belowBy!.includes(p));
        if (held && this.readsHead === "height") return this.answer(resultResponse(this.id, `"0x${this.block.toString(16)}"`), this.fallback.provider, "answer", this.block);
        if (!held) this.ctx.heads.lower(this.table.chainId, this.client, this.block, this.fallbackLow, now);
      }
      this.answer(this.fallback.bytes, this.fallback.provider);
      return;
    }
    if (this.overBudget) {
      this.answer(cannotHoldResponse(this.call.id), null, "over_budget");
      return;
    }
    this.giveUp();
  }

  private giveUp(): void {
    if (this.finished) return;
    this.finished = true;
    this.suspects = null; // no provider answered: the failures may be the request's own
    this.ctx.sweeper.remove(this);
    const f = this.ctx.failover;
    const table = this.table;
    if (this.attempts === 0) {
      const now = performance.now();
      // Not an outage to wait out: this router's endpoint policy refuses every one of them.
      const refused = table.providers.length > 0 && table.providers.every((p) => p.state(now) === "refused");
      const why = refused
        ? `every provider of chain ${table.chainId} has an endpoint at an address this router refuses (loopback, private or link-local; allowed only in devnet mode, --devnet)`
        : `no provider of chain ${table.chainId} can take requests right now; retry shortly`;
      this.resolve({
        bytes: errorResponse(this.call.id, RpcCode.noProvider, why),
        provider: null,
        quantity: null,
        attempts: 0,
        outcome: "no_provider",
      });
    } else if (performance.now() >= this.deadline - minAttemptMs) {
      this.resolve({
        bytes: errorResponse(
          this.call.id,
          RpcCode.deadlineExceeded,
          `no provider answered within ${f.deadlineMs} ms (${this.attempts} attempts; last: ${this.lastFailure})`,
        ),
        provider: null,
        quantity: null,
        attempts: this.attempts,
        outcome: "deadline_exceeded",
      });
    } else {
      this.resolve({
        bytes: errorResponse(this.call.id, RpcCode.upstreamFailed, `all ${this.attempts} attempts failed (last: ${this.lastFailure})`),
        provider: null,
        quantity: null,
        attempts: this.attempts,
        outcome: "upstream_failed",
      });
    }
  }
}

const nobody: readonly ProviderHealth[] = [];

const noOptions: RouteOptions = {};

/** Routes one call on `table`'s providers; `done` hears the result once. `id` is the id sent upstream. */
export function routeCall(ctx: RouteContext, table: ChainTable, call: RpcCall, id: RpcId, done: (result: CallResult) => void, options = noOptions): CallHandle {
  const routing = new CallRouting(ctx, table, call, id, done, options);
  routing.start();
  return routing;
}
