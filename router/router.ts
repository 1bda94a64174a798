import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { ClientHeads } from "./blocks.ts";
import { createUpstreamClient, type Resolver } from "./endpointPolicy.ts";
import { RouterOptionError } from "./errors.ts";
import { ClientLedger, guardConnections, serverOptions, TrustedProxies } from "./connections.ts";
import { loadDashboardAssets } from "./dashboardAssets.ts";
import { createLogger, type Logger, type LogLevel } from "./log.ts";
import { startSweeper, type RouteContext } from "./failover.ts";
import { WriteAffinity } from "./writeAffinity.ts";
import { FilterRegistry } from "./filters.ts";
import { compileMethodPolicy, dangerousMethods } from "./methodPolicy.ts";
import { RouterMetrics } from "./metrics.ts";
import { resolveRoutingOptions, type RoutingOptions, type RoutingOverrides } from "./options.ts";
import { TrafficHistory } from "./history.ts";
import { probesPerOrigin, startProber } from "./prober.ts";
import { indexerProviderSet, type ProviderRecord, type ProviderSetSource } from "./providerSet.ts";
import { registryReader } from "./registryView.ts";
import { ChainTable, type Random } from "./routingTable.ts";
import { createRequestHandler } from "./server.ts";
import { chainStatus, type RouterStatus } from "./status.ts";
import { ConnectionGates } from "./upstream.ts";

export type StartRouterOptions = {
  /** Port to listen on; 0 or omitted: one the OS picks. */
  port?: number;
  /** Address to listen on (default 127.0.0.1; 0.0.0.0 to serve other machines). */
  host?: string;
  /** The indexer's base URL; the provider set comes from its live query. */
  indexerUrl?: string;
  /** Where the last provider set is kept, and read from when the indexer is away at start-up. */
  snapshotPath?: string;
  /** A provider-set source other than the indexer (tests of routing alone; takes precedence). */
  providers?: ProviderSetSource;
  /** Devnet mode: loopback and private provider endpoints are allowed. Never in production. */
  devnet?: boolean;
  /**
   * Proxies in front of the router (addresses or CIDR blocks) whose X-Forwarded-For names the
   * client that per-client limits count against; none by default.
   */
  trustProxy?: readonly string[];
  /** Routing, failover and limit parameters (router/README.md); defaults otherwise. */
  routing?: RoutingOverrides;
  /** Random source for provider draws (seeded in tests). */
  random?: Random;
  logLevel?: LogLevel;
  log?: Logger;
  /** How long start-up waits for the indexer before using the snapshot (ms). */
  startupWaitMs?: number;
  /** How long start-up waits for the first health probes to make providers eligible (ms). */
  readyWaitMs?: number;
  /** Name resolution for provider endpoints (tests play DNS rebinding with it). */
  resolver?: Resolver;
};

export type Router = {
  /** http://host:port */
  url: string;
  port: number;
  rpcUrl: (chainId: number) => string;
  options: RoutingOptions;
  tables: ReadonlyMap<number, ChainTable>;
  status: () => RouterStatus;
  metrics: () => string;
  /**
   * Stops gracefully: no new connections, requests in flight answered (with `connection: close`)
   * for up to `drainMs` (default: a call's deadline), then the rest closed.
   */
  stop: (options?: { drainMs?: number }) => Promise<void>;
};

/** Groups a provider set by chain and applies it to the chain tables (creating and dropping tables). */
function applySet(tables: Map<number, ChainTable>, options: RoutingOptions, records: readonly ProviderRecord[], log: Logger) {
  const byChain = new Map<number, ProviderRecord[]>();
  for (const r of records) {
    let list = byChain.get(r.chainId);
    if (list === undefined) byChain.set(r.chainId, (list = []));
    list.push(r);
  }
  let joined = 0;
  for (const [chainId, list] of byChain) {
    let table = tables.get(chainId);
    if (table === undefined) tables.set(chainId, (table = new ChainTable(chainId, options, log)));
    joined += table.setProviders(list).length;
  }
  for (const chainId of [...tables.keys()]) if (!byChain.has(chainId)) tables.delete(chainId);
  return { chains: byChain.size, providers: records.length, joined };
}

/**
 * Starts the router: takes the provider set (indexer live query, or `providers`), probes every
 * provider, and serves JSON-RPC on POST /rpc/:chainId with /status, /metrics and /health.
 */
export async function startRouter(options: StartRouterOptions = {}): Promise<Router> {
  const routing = resolveRoutingOptions(options.routing);
  const log = options.log ?? createLogger({ level: options.logLevel ?? "info", base: { service: "router" } });
  const devnet = options.devnet ?? false;
  const proxies = options.trustProxy !== undefined && options.trustProxy.length > 0 ? new TrustedProxies(options.trustProxy) : null;
  if (proxies !== null && proxies.wide.length > 0) {
    log.warn("trusting X-Forwarded-For from very wide address ranges: any client in them can name another address and escape the per-client limits; trust only your proxies' addresses", {
      ranges: proxies.wide,
    });
  }
  const dangerous = dangerousMethods(routing.methods.allowedMethods);
  if (dangerous.length > 0) {
    log.warn("methods.allowedMethods lets clients call methods the default policy refuses: they act with a provider's keys or on its node, and providers are strangers' nodes", {
      methods: dangerous,
    });
  }
  let source: ProviderSetSource;
  if (options.providers !== undefined) source = options.providers;
  else if (options.indexerUrl !== undefined) {
    source = indexerProviderSet({
      indexerUrl: options.indexerUrl,
      snapshotPath: options.snapshotPath,
      startupWaitMs: options.startupWaitMs,
      log,
    });
  } else throw new RouterOptionError("the router needs an indexer URL (--indexer) or a provider set");

  const client = createUpstreamClient({
    devnet,
    maxResponseBytes: routing.limits.maxResponseBytes,
    connectionsPerOrigin: routing.limits.connectionsPerProvider,
    connectTimeoutMs: Math.min(routing.failover.attemptTimeoutMs, 5_000),
    resolver: options.resolver,
  });
  // Probes have connections of their own, so a burst of client calls waiting for the others never
  // delays them: they see the provider itself. As many per origin as the prober runs probes at once
  // on one (probesPerOrigin), so a probe never waits for a connection behind a neighbour's either.
  const probeClient = createUpstreamClient({
    devnet,
    maxResponseBytes: 64 * 1024,
    connectionsPerOrigin: probesPerOrigin,
    connectTimeoutMs: Math.min(routing.probe.timeoutMs, 5_000),
    resolver: options.resolver,
  });
  const tables = new Map<number, ChainTable>();
  const metrics = new RouterMetrics();
  const clients = new ClientLedger(proxies);
  const startedAt = Date.now();
  const status = (): RouterStatus => {
    const now = performance.now();
    return {
      devnet,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      providerSet: source.status(),
      chains: [...tables.values()].sort((a, b) => a.chainId - b.chainId).map((t) => chainStatus(t, now, routing.failover.hedgeMinMs)),
    };
  };
  const history = new TrafficHistory();
  // Sample times run on a clock that is never set back (the wall clock at start, plus monotonic time
  // since): a dashboard asks for the points after the last it holds, and points stamped by a wall
  // clock set back would stay hidden from it until the clock caught up.
  const historyTimer = setInterval(() => history.sample(tables.values(), Math.round(performance.timeOrigin + performance.now())), history.intervalMs);
  historyTimer.unref();

  const sweeper = startSweeper();
  // As many as the client keeps to each origin: past them, client calls wait in the router's own queue.
  const gates = new ConnectionGates(routing.limits.connectionsPerProvider);
  const affinity = new WriteAffinity(routing.failover.writeAffinityMs);
  // A minute: by then the chain has moved past what a client was shown, on any provider in sync.
  const heads = new ClientHeads(60_000);
  const route: RouteContext = { client, failover: routing.failover, random: options.random ?? Math.random, counters: metrics.counters, sweeper, gates, affinity, heads };
  const filters = new FilterRegistry(route, routing.limits, clients);
  const renderMetrics = () => {
    metrics.openFilters = filters.size;
    return metrics.render(tables.values(), source.status(), performance.now());
  };
  const lifecycle = { draining: false };
  const handler = createRequestHandler({
    lifecycle,
    tables,
    route,
    filters,
    methodAllowed: compileMethodPolicy(routing.methods),
    limits: { ...routing.limits },
    metrics,
    clients,
    log,
    status,
    providerSet: () => source.status(),
    snapshotKept: options.snapshotPath !== undefined,
    history: (since) => history.page(since),
    renderMetrics,
    assets: loadDashboardAssets(),
    registry: options.providers === undefined && options.indexerUrl !== undefined ? registryReader(options.indexerUrl, log) : null,
  });
  const server: Server = createServer(serverOptions(routing.limits), handler);
  guardConnections(server, routing.limits, metrics, clients);

  const prober = startProber({ tables: () => tables.values(), client: probeClient, probe: routing.probe });
  const shareTimer = setInterval(() => {
    for (const t of tables.values()) for (const p of t.providers) p.rotateWindow();
  }, routing.shareWindowMs);
  shareTimer.unref();

  const stopAll = async () => {
    prober.stop();
    sweeper.stop();
    filters.stop();
    clearInterval(shareTimer);
    clearInterval(historyTimer);
    await source.stop();
    await Promise.all([client.destroy(), probeClient.destroy()]);
  };

  const [host, port] = [options.host ?? "127.0.0.1", options.port ?? 0];
  try {
    // A taken port or an address not this machine's fails the start at once, not after the indexer and the first probes.
    await listenOn(createServer(), host, port).then((probe) => new Promise((resolve) => probe.close(resolve)));
    await source.start((records) => {
      const summary = applySet(tables, routing, records, log);
      gates.prune(new Set([...tables.values()].flatMap((t) => t.providers.map((p) => p.origin))));
      log.info("provider set applied", { ...summary, from: source.status().servingFrom });
      prober.tick();
    });
    // Providers get traffic only once a probe has checked their chain id and head.
    const readyBy = performance.now() + (options.readyWaitMs ?? routing.probe.timeoutMs * 2 + 500);
    while (performance.now() < readyBy) {
      const now = performance.now();
      let waiting = false;
      for (const t of tables.values()) {
        t.refresh(now);
        if (t.eligibleCount === 0 && t.providers.some((p) => p.state(now) === "checking")) waiting = true;
      }
      if (!waiting) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await listenOn(server, host, port);
  } catch (error) {
    await stopAll();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${shownHost === "0.0.0.0" ? "127.0.0.1" : shownHost}:${address.port}`;
  log.info("router listening", { url, address: `${shownHost}:${address.port}`, devnet, trustProxy: options.trustProxy ?? [], providerSet: source.status() });
  const set = source.status();
  if (set.servingFrom === "none") {
    // Said at warn (a log read at warnings only saw "cannot connect", then nothing): up, but serving no call.
    const hint = options.snapshotPath === undefined ? { hint: "a --snapshot file keeps the indexer's last set for a start while it is away" } : {};
    log.warn("serving no call until the indexer gives a provider set (each is answered -32002, retry shortly)", { indexer: set.state, lastError: set.lastError, ...hint });
  }

  return {
    url,
    port: address.port,
    rpcUrl: (chainId) => `${url}/rpc/${chainId}`,
    options: routing,
    tables,
    status,
    metrics: renderMetrics,
    stop: async ({ drainMs = routing.failover.deadlineMs } = {}) => {
      lifecycle.draining = true;
      const inFlight = metrics.inFlight;
      log.info("router stopping", { requestsInFlight: inFlight, drainMs: inFlight > 0 ? drainMs : 0 });
      await new Promise<void>((resolve) => {
        // Keep-alive connections are closed as soon as they have no request; what is still busy at
        // the end of the drain is cut.
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        const cut = setTimeout(() => server.closeAllConnections(), drainMs);
        server.close(() => {
          clearInterval(idle);
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      });
      await stopAll();
    },
  };
}

/** Listens on `host:port`, with words for a port already taken or an address that is not this machine's. */
function listenOn(server: Server, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      const where = `cannot listen on ${host}:${port}`;
      if (error.code === "EADDRINUSE") reject(new Error(`${where}: the port is in use (by another router? a chain node?); choose another with --port`));
      else if (error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND" || error.code === "EAI_AGAIN") {
        reject(new Error(`${where}: ${host} is not an address of this machine (${error.code}); --host takes one of its own, 0.0.0.0 for all`));
      } else reject(new Error(`${where}: ${error.message}`));
    });
    server.listen(port, host, () => resolve(server));
  });
}
