import { failureKinds } from "./health.ts";
import type { ProviderSetStatus } from "./providerSet.ts";
import type { ChainTable } from "./routingTable.ts";

// Prometheus text exposition (version 0.0.4). Counters live in plain arrays and are only turned
// into text when /metrics is read.

/** How a client call ended, as counted per chain. */
export const callOutcomes = ["answer", "local", "rejected", "no_provider", "upstream_failed", "deadline_exceeded", "over_budget", "abandoned"] as const;
export type CallOutcome = (typeof callOutcomes)[number];
const outcomeIndex = new Map<CallOutcome, number>(callOutcomes.map((o, i) => [o, i]));

const bucketsMs = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

type ChainCounters = { calls: Float64Array; buckets: Float64Array; durationSum: number; durationCount: number };

export type RequestCounters = {
  /** HTTP requests refused before routing (bad JSON, too large, wrong content type, unknown chain, over capacity), by reason. */
  refused: Map<string, number>;
  retries: number;
  hedges: number;
};

export class RouterMetrics {
  private readonly chains = new Map<number, ChainCounters>();
  readonly counters: RequestCounters = { refused: new Map(), retries: 0, hedges: 0 };
  /** Requests whose body has arrived and that are not answered yet. */
  inFlight = 0;
  /** The calls of those requests (a batch counts each). */
  callsInFlight = 0;
  /** Bytes of request bodies and unsent answers charged to the client buffer budget (router/server.ts). */
  bufferBytes = 0;
  /** Open client connections. */
  connections = 0;
  /** Filters the router keeps for clients (router/filters.ts). */
  openFilters = 0;

  private chain(chainId: number): ChainCounters {
    let c = this.chains.get(chainId);
    if (c === undefined) {
      c = { calls: new Float64Array(callOutcomes.length), buckets: new Float64Array(bucketsMs.length), durationSum: 0, durationCount: 0 };
      this.chains.set(chainId, c);
    }
    return c;
  }

  call(chainId: number, outcome: CallOutcome): void {
    this.chain(chainId).calls[outcomeIndex.get(outcome)!]++;
  }

  /** One HTTP request on a chain took `ms`. */
  duration(chainId: number, ms: number): void {
    const c = this.chain(chainId);
    c.durationSum += ms;
    c.durationCount++;
    for (let i = 0; i < bucketsMs.length; i++) if (ms <= bucketsMs[i]) c.buckets[i]++;
  }

  refused(reason: string): void {
    this.counters.refused.set(reason, (this.counters.refused.get(reason) ?? 0) + 1);
  }

  render(tables: Iterable<ChainTable>, providerSet: ProviderSetStatus, now: number): string {
    const out: string[] = [];
    const help = (name: string, type: string, text: string) => out.push(`# HELP ${name} ${text}`, `# TYPE ${name} ${type}`);
    const label = (value: string | number) => String(value).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

    help("din_router_calls_total", "counter", "JSON-RPC calls by chain and how they ended.");
    for (const [chainId, c] of this.chains) {
      callOutcomes.forEach((o, i) => out.push(`din_router_calls_total{chain="${chainId}",outcome="${o}"} ${c.calls[i]}`));
    }
    help("din_router_request_duration_seconds", "histogram", "HTTP request duration on /rpc, by chain.");
    for (const [chainId, c] of this.chains) {
      bucketsMs.forEach((b, i) => out.push(`din_router_request_duration_seconds_bucket{chain="${chainId}",le="${b / 1000}"} ${c.buckets[i]}`));
      out.push(`din_router_request_duration_seconds_bucket{chain="${chainId}",le="+Inf"} ${c.durationCount}`);
      out.push(`din_router_request_duration_seconds_sum{chain="${chainId}"} ${c.durationSum / 1000}`);
      out.push(`din_router_request_duration_seconds_count{chain="${chainId}"} ${c.durationCount}`);
    }
    help("din_router_refused_total", "counter", "HTTP requests and answers refused, by reason.");
    for (const [reason, n] of this.counters.refused) out.push(`din_router_refused_total{reason="${label(reason)}"} ${n}`);
    help("din_router_retries_total", "counter", "Attempts started after a failed attempt.");
    out.push(`din_router_retries_total ${this.counters.retries}`);
    help("din_router_hedges_total", "counter", "Second attempts started because the first was slow.");
    out.push(`din_router_hedges_total ${this.counters.hedges}`);
    help("din_router_in_flight_requests", "gauge", "HTTP requests being handled (body received, not answered).");
    out.push(`din_router_in_flight_requests ${this.inFlight}`);
    help("din_router_in_flight_calls", "gauge", "JSON-RPC calls of those requests (a batch counts each call).");
    out.push(`din_router_in_flight_calls ${this.callsInFlight}`);
    help("din_router_client_buffer_bytes", "gauge", "Bytes held for clients past the first 16 KiB of each request body, each answer being collected from a provider and each unsent answer.");
    out.push(`din_router_client_buffer_bytes ${this.bufferBytes}`);
    help("din_router_client_connections", "gauge", "Open client connections.");
    out.push(`din_router_client_connections ${this.connections}`);
    help("din_router_filters", "gauge", "Filters (eth_newFilter, eth_newBlockFilter) the router keeps for clients.");
    out.push(`din_router_filters ${this.openFilters}`);
    help("din_router_provider_set_live", "gauge", "1 while the provider set is current: the indexer's live query connected, or a fixed set.");
    out.push(`din_router_provider_set_live{source="${providerSet.source}",serving_from="${providerSet.servingFrom}"} ${providerSet.state === "live" || providerSet.state === "static" ? 1 : 0}`);
    help("din_router_provider_set_updates_total", "counter", "Provider sets applied.");
    out.push(`din_router_provider_set_updates_total ${providerSet.updates}`);

    const perProvider: [string, string, string][] = [
      // Its name as a label of its own series, not of every series: an operator renaming it would
      // otherwise start every series of it anew (join on provider to show names).
      ["din_router_provider_info", "gauge", "1 for each provider, with the name its operator registered."],
      ["din_router_provider_served_total", "counter", "Calls a provider answered."],
      ["din_router_provider_failures_total", "counter", "Failed attempts on a provider, by kind."],
      ["din_router_provider_state", "gauge", "1 for the provider's current state."],
      ["din_router_provider_score", "gauge", "The provider's score (latency · errors · lag · slash)."],
      ["din_router_provider_weight", "gauge", "The provider's routing weight after probation and the operator cap."],
      ["din_router_provider_latency_ms", "gauge", "EWMA of the provider's successful attempt latency."],
      ["din_router_provider_error_rate", "gauge", "EWMA of the provider's failure rate."],
      ["din_router_provider_lag_blocks", "gauge", "Blocks behind the chain's lower median head as it stood when the provider's head was read (negative: ahead of it)."],
      ["din_router_provider_in_flight", "gauge", "Client calls' requests on the router's connections to the provider (answers nobody waits for any more included)."],
      ["din_router_provider_waiting", "gauge", "Client calls' requests waiting for one of the router's connections to the provider's host (shared by the providers on it; saturated)."],
    ];
    const lines = new Map<string, string[]>(perProvider.map(([name]) => [name, []]));
    for (const table of tables) {
      for (const p of table.providers) {
        const l = `chain="${table.chainId}",provider="${p.address}"`;
        lines.get("din_router_provider_info")!.push(`din_router_provider_info{${l},name="${label(p.name)}"} 1`);
        lines.get("din_router_provider_served_total")!.push(`din_router_provider_served_total{${l}} ${p.served}`);
        failureKinds.forEach((kind, i) =>
          lines.get("din_router_provider_failures_total")!.push(`din_router_provider_failures_total{${l},kind="${kind}"} ${p.failures[i]}`),
        );
        lines.get("din_router_provider_state")!.push(`din_router_provider_state{${l},state="${p.state(now)}"} 1`);
        lines.get("din_router_provider_score")!.push(`din_router_provider_score{${l}} ${p.parts.score}`);
        lines.get("din_router_provider_weight")!.push(`din_router_provider_weight{${l}} ${p.parts.weight}`);
        if (!Number.isNaN(p.latencyMs)) lines.get("din_router_provider_latency_ms")!.push(`din_router_provider_latency_ms{${l}} ${p.latencyMs}`);
        lines.get("din_router_provider_error_rate")!.push(`din_router_provider_error_rate{${l}} ${p.errorRate}`);
        lines.get("din_router_provider_lag_blocks")!.push(`din_router_provider_lag_blocks{${l}} ${p.lag}`);
        lines.get("din_router_provider_in_flight")!.push(`din_router_provider_in_flight{${l}} ${p.inFlight}`);
        lines.get("din_router_provider_waiting")!.push(`din_router_provider_waiting{${l}} ${p.waiting}`);
      }
    }
    for (const [name, type, text] of perProvider) {
      help(name, type, text);
      out.push(...lines.get(name)!);
    }
    return `${out.join("\n")}\n`;
  }
}
