import { performance } from "node:perf_hooks";
import type { ProviderHealth } from "./health.ts";
import type { ChainTable } from "./routingTable.ts";

// GET /history: requests per second and mean latency of every provider over the last minutes, for
// the dashboard's charts. Sampled from the trackers' cumulative counters once per interval, so
// the request path pays nothing for it. A page is built once per sample for each `since` a reader
// asks, and building pages takes at most about a tenth of the router's time: with thousands of
// providers the whole window is megabytes, and a client asking for it in a loop must not keep the
// router building.

/** One sample: [unix ms, calls answered per second, mean latency in ms (null: no successful attempt)]. */
export type HistoryPoint = [number, number, number | null];

export type HistoryResponse = {
  intervalMs: number;
  chains: { chainId: number; providers: { address: string; name: string; points: HistoryPoint[] }[] }[];
};

type Series = {
  chainId: number;
  address: string;
  name: string;
  /** The tracker the counters were last read from (a new URL is a new tracker, counted from zero). */
  tracker: ProviderHealth;
  /** When the counters below were read (unix ms). */
  readAt: number;
  served: number;
  latencySumMs: number;
  latencySamples: number;
  points: HistoryPoint[];
};

export class TrafficHistory {
  readonly intervalMs: number;
  private readonly keep: number;
  private readonly series = new Map<string, Series>();
  /** When each sample in the window was taken (unix ms), oldest first: the same for every series. */
  private readonly times: number[] = [];
  /** This sample's pages, by the number of samples they hold. */
  private pages = new Map<number, Buffer>();
  /** No page is built before then (performance.now() ms): ten times the last build's time after it. */
  private nextBuildAt = 0;

  /** Keeps `windowMs` of samples taken every `intervalMs`. */
  constructor(intervalMs = 1_000, windowMs = 300_000) {
    this.intervalMs = intervalMs;
    this.keep = Math.max(1, Math.round(windowMs / intervalMs));
  }

  sample(tables: Iterable<ChainTable>, at: number): void {
    this.times.push(at);
    if (this.times.length > this.keep) this.times.shift();
    this.pages = new Map();
    const seen = new Set<string>();
    for (const table of tables) {
      for (const p of table.providers) {
        const key = `${table.chainId}|${p.address}`;
        seen.add(key);
        let s = this.series.get(key);
        if (s === undefined || s.tracker !== p) {
          // First sight (or a new tracker): start from its counters, keep any earlier points.
          const points = s?.points ?? [];
          s = { chainId: table.chainId, address: p.address, name: p.name, tracker: p, readAt: at, served: p.served, latencySumMs: p.latencySumMs, latencySamples: p.latencySamples, points };
          this.series.set(key, s);
          continue;
        }
        const samples = p.latencySamples - s.latencySamples;
        const latency = samples > 0 ? (p.latencySumMs - s.latencySumMs) / samples : null;
        // Per second of time actually elapsed (a busy event loop fires the sampling timer late),
        // unless that is not plausible (the host was suspended): then the interval it should have been.
        const elapsed = at - s.readAt;
        const seconds = (elapsed > 0 && elapsed < 10 * this.intervalMs ? elapsed : this.intervalMs) / 1000;
        s.points.push([at, (p.served - s.served) / seconds, latency === null ? null : Math.round(latency * 10) / 10]);
        if (s.points.length > this.keep) s.points.shift();
        s.name = p.name;
        s.readAt = at;
        s.served = p.served;
        s.latencySumMs = p.latencySumMs;
        s.latencySamples = p.latencySamples;
      }
    }
    // Only points of the window's samples are kept (so a page is the same for every `since` between
    // two samples); a provider that left the set keeps its past until none of it is in the window.
    const oldest = this.times[0];
    for (const [key, s] of this.series) {
      while (s.points.length > 0 && s.points[0][0] < oldest) s.points.shift();
      if (!seen.has(key) && s.points.length === 0) this.series.delete(key);
    }
  }

  /**
   * read(since) as JSON, or null when another page was built too recently (the asker is told to come
   * back). Readers asking for the same samples share one page until the next sample. Pages of the
   * newest two samples, what a dashboard polls for each second, are always built: they are small
   * (2,000 providers: 2 ms), and at most two a sample.
   */
  page(since: number, clock: () => number = () => performance.now()): Buffer | null {
    let newer = 0;
    while (newer < this.times.length && this.times[this.times.length - 1 - newer] > since) newer++;
    let page = this.pages.get(newer);
    if (page !== undefined) return page;
    const small = newer <= 2;
    const started = clock();
    if (!small && started < this.nextBuildAt) return null;
    page = Buffer.from(JSON.stringify(this.read(newer === this.times.length ? -Infinity : this.times[this.times.length - 1 - newer])));
    this.pages.set(newer, page);
    const done = clock();
    if (!small) this.nextBuildAt = done + 9 * (done - started);
    return page;
  }

  /** The points taken after `since` (unix ms; 0 for all). */
  read(since = 0): HistoryResponse {
    const chains = new Map<number, HistoryResponse["chains"][number]>();
    for (const s of this.series.values()) {
      let chain = chains.get(s.chainId);
      if (chain === undefined) chains.set(s.chainId, (chain = { chainId: s.chainId, providers: [] }));
      // The newest points are at the end: a reader polling for them costs what it gets.
      let first = s.points.length;
      while (first > 0 && s.points[first - 1][0] > since) first--;
      chain.providers.push({ address: s.address, name: s.name, points: s.points.slice(first) });
    }
    return { intervalMs: this.intervalMs, chains: [...chains.values()].sort((a, b) => a.chainId - b.chainId) };
  }
}
