import { ProviderHealth, type ProviderState } from "./health.ts";
import type { Logger } from "./log.ts";
import { LatencyWindow } from "./quantiles.ts";
import type { RoutingOptions } from "./options.ts";
import type { ProviderRecord } from "./providerSet.ts";
import { capShares, scoreFactors } from "./scoring.ts";

/** A uniform random number in [0, 1); replaceable by a seeded generator. */
export type Random = () => number;

/** The lower and upper median heads of a chain from `at` (performance.now() ms), of `count` fresh heads. */
type Medians = { at: number; lower: number; upper: number; count: number };

/**
 * The providers of one chain and the weights requests are drawn by. Weights are rebuilt (O(n)) when
 * eligibility changes or every `reweighIntervalMs`; a draw is one random number and a binary search
 * over cumulative weights (O(log n), no allocation).
 */
export class ChainTable {
  readonly chainId: number;
  providers: ProviderHealth[] = [];
  private byKey = new Map<string, ProviderHealth>();
  /** The highest height a provider answered (and was believed), who did, and the highest another did (see recordAnsweredHead). */
  private highest = -1;
  private highestBy: ProviderHealth | null = null;
  private secondHighest = -1;
  /** The median heads' changes, oldest first, as far back as a fresh head (the latest always kept). */
  private medianLog: Medians[] = [];

  /** The lower median head (what lag is measured against); -1 before any head. */
  get medianHead(): number {
    return this.medianLog.at(-1)?.lower ?? -1;
  }
  readonly latency: LatencyWindow;

  private eligible: ProviderHealth[] = [];
  private cumulative = new Float64Array(0);
  private weights = new Float64Array(0);
  private total = 0;
  private builtAt = -Infinity;
  private dirty = true;
  /** The earliest end of an open circuit's period after the last rebuild: its half-open state is seen (and logged) then. */
  private nextReopenAt = Infinity;
  private readonly options: RoutingOptions;
  private readonly log: Logger | null;
  private waiters: (() => void)[] = [];
  private readonly markDirty = () => {
    this.dirty = true;
    if (this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
  };

  constructor(chainId: number, options: RoutingOptions, log: Logger | null = null) {
    this.chainId = chainId;
    this.options = options;
    this.log = log;
    this.latency = new LatencyWindow(options.failover.hedgeQuantile);
  }

  /**
   * Replaces the provider list. A provider already present with the same URL keeps its tracker
   * (and all it learned); a changed URL starts a new tracker. Requests in flight keep the tracker
   * they hold, so nothing in flight is dropped. Returns the trackers that joined.
   */
  setProviders(records: readonly ProviderRecord[]): ProviderHealth[] {
    const next = new Map<string, ProviderHealth>();
    const joined: ProviderHealth[] = [];
    for (const record of records) {
      const key = `${record.address}|${record.url}`;
      let health = this.byKey.get(key);
      if (health === undefined) {
        health = new ProviderHealth(record, this.options.scoring, this.options.circuit);
        health.onChange = this.markDirty;
        joined.push(health);
      } else health.update(record);
      next.set(key, health);
    }
    for (const [key, health] of this.byKey) {
      if (next.has(key)) continue;
      health.onChange = () => {};
      health.retired = true;
    }
    this.byKey = next;
    this.providers = [...next.values()];
    this.markDirty();
    return joined;
  }

  /**
   * Sets the median heads from providers with a verified chain id and a fresh head, then every
   * provider's lag. A verdict needs a strict majority: a provider is behind when more than half
   * the heads are ahead of it (it is below the lower median), and implausibly ahead when more than
   * half are behind it (above the upper median). So one absurd height cannot make honest providers
   * look behind, one stuck or syncing node cannot make them look ahead, and with two providers
   * that disagree neither is judged.
   */
  updateMedianHead(now: number, freshMs: number): void {
    const heads: number[] = [];
    for (const p of this.providers) {
      if (p.chainCheck === "ok" && p.head >= 0 && now - p.headAt <= freshMs) heads.push(p.head);
    }
    if (heads.length === 0) return;
    heads.sort((a, b) => a - b);
    const lower = heads[(heads.length - 1) >> 1];
    const upper = heads[heads.length >> 1];
    const log = this.medianLog;
    const last = log.at(-1);
    if (last === undefined || last.lower !== lower || last.upper !== upper || last.count !== heads.length) log.push({ at: now, lower, upper, count: heads.length });
    // Keep what judging a fresh head needs: the entries since it was read, and the one before.
    while (log.length > 1 && log[1].at <= now - freshMs) log.shift();
    for (const p of this.providers) {
      if (p.head < 0) continue;
      // A head no probe has renewed for a while is as old as it is: judged against the medians now.
      const against = now - p.headAt <= freshMs ? this.mediansAsOf(p.headAt) : log[log.length - 1];
      if (p.setLag(against.lower, against.upper)) this.dirty = true;
    }
  }

  /** A probe's answer: `p`'s head now, judged at once (before any traffic goes to it). */
  recordHead(p: ProviderHealth, head: number, now: number): void {
    // Its chain went back (a reorganisation, a node reset): the heights answered may be gone too.
    if (head < p.head) [this.highest, this.highestBy, this.secondHighest] = [-1, null, -1];
    p.setHead(head, now);
    if (this.medianLog.length > 0) {
      const medians = this.mediansAsOf(now);
      p.setLag(medians.lower, medians.upper);
    }
  }

  /**
   * `p` answered an eth_blockNumber with `height` (or gave the latest block of that number, borne
   * out by another's: failover.ts gaveBlock), so it holds that block. Believed only up to
   * maxLagBlocks, plus the blocks the chain made over the median log's span (a few probe
   * intervals), past the upper median head or the highest height another provider answered, and
   * never more than maxLeadBlocks past the upper median head: a provider naming heights nobody
   * else has reached would draw to it every call for those blocks, while the first provider to
   * have a new block is believed also on a chain that makes many between probes. (Probed heads
   * count through the median only: one absurd probe must not widen the bound for another liar.)
   */
  recordAnsweredHead(p: ProviderHealth, height: number): void {
    const medians = this.medianLog.at(-1);
    if (medians === undefined || height <= p.answeredHead) return;
    const others = p === this.highestBy ? this.secondHighest : this.highest;
    const made = medians.upper - this.medianLog[0].upper;
    if (height > Math.max(medians.upper, others) + this.options.scoring.maxLagBlocks + made || this.pastLead(height)) return;
    p.answeredHead = height;
    this.shown(p, height);
  }

  /** Whether `height` is more than maxLeadBlocks past the upper median head: a height no provider could hold. */
  private pastLead(height: number): boolean {
    const medians = this.medianLog.at(-1);
    return medians !== undefined && height > medians.upper + this.options.scoring.maxLeadBlocks;
  }

  /** The highest block a provider other than `p` is known to hold: the upper median probed head, or a higher one another answered. */
  heldByAnother(p: ProviderHealth): number {
    return Math.max(this.medianLog.at(-1)?.upper ?? -1, p === this.highestBy ? this.secondHighest : this.highest);
  }

  /**
   * The highest head a client may be given from `p`'s answer (-1: any, no head known yet). With
   * three fresh heads or more, one another provider is known to hold (the upper median is then
   * always held by another); with one or two, where a liar's probe would set the bound itself and
   * an honest provider's lead over a stuck one could not be told from a lie, only maxLeadBlocks
   * past the upper median.
   */
  headToGive(p: ProviderHealth): number {
    const medians = this.medianLog.at(-1);
    if (medians === undefined) return -1;
    return medians.count >= 3 ? this.heldByAnother(p) : medians.upper + this.options.scoring.maxLeadBlocks;
  }

  /** Keeps the two highest heights providers answered (and were believed), and who answered the highest. */
  private shown(p: ProviderHealth, height: number): void {
    if (height > this.highest) {
      if (p !== this.highestBy) this.secondHighest = this.highest;
      this.highest = height;
      this.highestBy = p;
    } else if (p !== this.highestBy && height > this.secondHighest) this.secondHighest = height;
  }

  /**
   * The median heads as they stood at `at`. A provider is judged against the heads seen by the
   * time it answered, not against blocks made since: probes are seconds apart, and a chain may make
   * several blocks a second, so comparing heads of different moments would find honest providers
   * behind. Called only once the log has an entry.
   */
  private mediansAsOf(at: number): Medians {
    const log = this.medianLog;
    for (let i = log.length - 1; i >= 0; i--) if (log[i].at <= at) return log[i];
    return log[0];
  }

  /** Recomputes every provider's score parts and the cumulative weights of the eligible ones. */
  rebuild(now: number): void {
    const n = this.providers.length;
    if (this.weights.length < n) {
      this.weights = new Float64Array(n);
      this.cumulative = new Float64Array(n);
    }
    const eligible: ProviderHealth[] = [];
    const scoring = this.options.scoring;
    let nextReopenAt = Infinity;
    for (const p of this.providers) {
      if (p.reopensAt > now && p.reopensAt < nextReopenAt) nextReopenAt = p.reopensAt;
      const f = scoreFactors(p, scoring);
      const parts = p.parts;
      parts.stake = f.stake;
      parts.latency = f.latency;
      parts.errors = f.errors;
      parts.lag = f.lag;
      parts.slash = f.slash;
      parts.probation = f.probation;
      parts.score = f.score;
      parts.cappedStake = 0;
      parts.weight = 0;
      const state = p.state(now);
      if (state !== p.lastState) {
        if (this.log !== null) this.logTransition(p, p.lastState, state);
        p.lastState = state;
      }
      if (state === "healthy" || state === "probation") {
        this.weights[eligible.length] = f.stake;
        eligible.push(p);
      }
    }
    const count = eligible.length;
    const weights = this.weights;
    // The cap is on stake: no address gets more than its capped share for its stake alone. Reputation
    // and probation then move traffic between providers, so one serving better than the rest may
    // carry more: the cap must not push traffic onto providers that fail or just joined.
    if (sum(weights, count) <= 0) weights.fill(1, 0, count); // no stake to tell them apart
    capShares(weights, count, scoring.maxOperatorShare);
    for (let i = 0; i < count; i++) {
      const parts = eligible[i].parts;
      parts.cappedStake = weights[i];
      weights[i] *= parts.score * parts.probation;
    }
    if (sum(weights, count) <= 0) weights.fill(1, 0, count); // every score is 0: none is better than another
    let total = 0;
    for (let i = 0; i < count; i++) {
      total += weights[i];
      this.cumulative[i] = total;
      eligible[i].parts.weight = weights[i];
    }
    this.eligible = eligible;
    this.total = total;
    this.builtAt = now;
    this.nextReopenAt = nextReopenAt;
    this.dirty = false;
  }

  private logTransition(p: ProviderHealth, from: ProviderState | null, to: ProviderState): void {
    const fields = {
      chainId: this.chainId,
      provider: p.address,
      name: p.name, // (the registry's, as /status shows it: an operator knows its providers by name)
      from,
      to,
      ...(to === "wrong_chain" ? { reportedChainId: p.reportedChainId } : {}),
      ...(to === "lagging" ? { head: p.head, medianHead: this.medianHead } : {}),
      ...(to === "circuit_open" || to === "refused" ? { lastFailure: p.lastFailure } : {}),
    };
    const bad = to === "circuit_open" || to === "wrong_chain" || to === "lagging" || to === "refused";
    // A half-open probe failing again is said at info: the opening was warned of, and a dead
    // endpoint is retried for ever (a warning a minute each, from every router).
    if (bad && from !== "half_open") this.log!.warn("provider state changed", fields);
    else this.log!.info("provider state changed", fields);
  }

  /** Eligible providers and their expected shares (weight / total), as of the last rebuild. */
  expectedShares(now: number): Map<ProviderHealth, number> {
    this.refresh(now);
    const shares = new Map<ProviderHealth, number>();
    for (const p of this.eligible) shares.set(p, this.total > 0 ? p.parts.weight / this.total : 0);
    return shares;
  }

  get eligibleCount(): number {
    return this.eligible.length;
  }

  /** True while some provider waits for its first probe (a call may wait for it rather than fail). */
  awaitingProbes(now: number): boolean {
    for (const p of this.providers) if (p.state(now) === "checking") return true;
    return false;
  }

  /** Resolves at the next change of eligibility or provider list, or after `ms`. */
  nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Rebuilds the weights if eligibility changed or they are older than reweighIntervalMs. */
  refresh(now: number): void {
    if (this.dirty || now >= this.nextReopenAt || now - this.builtAt >= this.options.scoring.reweighIntervalMs) this.rebuild(now);
  }

  /**
   * Draws a provider by weight, skipping those in `tried`, those on an origin in `busyOrigins` and,
   * with `block` (≥ 0), those not known to hold that block. When every eligible provider was
   * skipped, falls back (unless `fallback` is false) to providers that are out of sync or whose
   * circuit is open (a likely failure beats a certain one); null when nothing is left.
   */
  pick(
    random: Random,
    tried: readonly ProviderHealth[] | null,
    now: number,
    fallback = true,
    busyOrigins: ReadonlySet<string> | null = null,
    block = -1,
  ): ProviderHealth | null {
    this.refresh(now);
    const count = this.eligible.length;
    // A draw past busy origins (an overflow draw) or for a block may skip much of the weight.
    const narrowed = busyOrigins !== null || block >= 0;
    if (count > 0) {
      // Each round is one binary search; a narrowed draw may take more.
      const rounds = narrowed ? 16 : 4;
      for (let round = 0; round < rounds; round++) {
        const p = this.eligible[upperBound(this.cumulative, count, random() * this.total)];
        if (!skipped(p, tried, busyOrigins, block)) return p;
      }
    }
    // Most of the weight skipped: draw among the rest directly (evenly when all of the rest have
    // weight 0: eligible still beats the fallback below), one pass to weigh them and one to draw.
    // A narrowed draw among many providers gives up instead: a heavy host that is saturated, or a
    // block only a few have shown yet, would otherwise cost two passes over the set on every call.
    if (count > 0 && (!narrowed || count <= maxNarrowedScan)) {
      let left = 0;
      let untried = 0;
      for (let i = 0; i < count; i++) {
        if (skipped(this.eligible[i], tried, busyOrigins, block)) continue;
        left += this.eligible[i].parts.weight;
        untried++;
      }
      if (untried > 0) {
        let r = random() * (left > 0 ? left : untried);
        for (let i = 0; i < count; i++) {
          const p = this.eligible[i];
          if (skipped(p, tried, busyOrigins, block)) continue;
          r -= left > 0 ? p.parts.weight : 1;
          if (r < 0) return p;
        }
      }
    }
    if (!fallback) return null;
    const unlikely: ProviderHealth[] = [];
    for (const p of this.providers) {
      if (p.chainCheck !== "ok" || p.head < 0 || (tried !== null && tried.includes(p))) continue;
      const state = p.state(now);
      if (state === "lagging" || state === "circuit_open" || state === "half_open") unlikely.push(p);
    }
    return unlikely.length === 0 ? null : unlikely[Math.floor(random() * unlikely.length)];
  }
}

/** Largest set a narrowed draw scans when random draws keep landing on busy origins or on providers without the block. */
const maxNarrowedScan = 256;

function skipped(p: ProviderHealth, tried: readonly ProviderHealth[] | null, busyOrigins: ReadonlySet<string> | null, block: number): boolean {
  return (tried !== null && tried.includes(p)) || (busyOrigins !== null && busyOrigins.has(p.origin)) || (block >= 0 && !p.holdsBlock(block));
}

function sum(values: Float64Array, count: number): number {
  let total = 0;
  for (let i = 0; i < count; i++) total += values[i];
  return total;
}

/** The first index whose cumulative weight exceeds r (clamped to the last). */
function upperBound(cumulative: Float64Array, count: number, r: number): number {
  let lo = 0;
  let hi = count - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cumulative[mid] > r) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
