import type { ProviderHealth } from "./health.ts";
import type { ChainTable } from "./routingTable.ts";

// GET /history: requests per second and mean latency of every provider over the last minutes, for
// the dashboard's charts. Sampled from the trackers' cumulative counters once per interval, so
// the request path pays nothing for it.

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

  /** Keeps `windowMs` of samples taken every `intervalMs`. */
  constructor(intervalMs = 1_000, windowMs = 300_000) {
    this.intervalMs = intervalMs;
    this.keep = Math.max(1, Math.round(windowMs / intervalMs));
  }

  sample(tables: Iterable<ChainTable>, at: number): void {
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
        // unless the wall clock was stepped: then the interval it should have been.
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
    // A provider that left the set keeps its past until its last point is out of the window.
    for (const [key, s] of this.series) {
      const last = s.points.at(-1)?.[0] ?? 0;
      if (!seen.has(key) && at - last > this.keep * this.intervalMs) this.series.delete(key);
    }
  }

  /** The points taken after `since` (unix ms; 0 for all). */
  read(since = 0): HistoryResponse {
    const chains = new Map<number, HistoryResponse["chains"][number]>();
    for (const s of this.series.values()) {
      let chain = chains.get(s.chainId);
      if (chain === undefined) chains.set(s.chainId, (chain = { chainId: s.chainId, providers: [] }));
      chain.providers.push({ address: s.address, name: s.name, points: s.points.filter((point) => point[0] > since) });
    }
    return { intervalMs: this.intervalMs, chains: [...chains.values()].sort((a, b) => a.chainId - b.chainId) };
  }
}
