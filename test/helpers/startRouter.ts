import { startRouter as start, type Router, type StartRouterOptions } from "../../scripts/router.ts";
import { staticProviderSet, type ProviderRecord } from "../../router/providerSet.ts";
import type { RoutingOverrides } from "../../router/options.ts";
import type { Random } from "../../router/routingTable.ts";

// The router for tests: in process, devnet mode (the provider nodes listen on 127.0.0.1), quiet,
// with quick probes and short open periods so a test sees providers fall and recover in seconds.

export type TestRouter = Router & {
  /** Replaces the provider set (only when started with `records`). */
  setProviders: (records: readonly ProviderRecord[]) => void;
  /** POSTs a raw body to /rpc/:chainId and returns status, headers and text. */
  post: (chainId: number, body: string | object, headers?: Record<string, string>) => Promise<HttpAnswer>;
  get: (path: string) => Promise<HttpAnswer>;
};

export type HttpAnswer = { status: number; headers: Headers; text: string; json: () => unknown };

export const testRouting: RoutingOverrides = {
  probe: { intervalMs: 100, timeoutMs: 2_000, chainIdIntervalMs: 500, concurrency: 32 },
  circuit: { failureThreshold: 3, baseOpenMs: 300, maxOpenMs: 2_000 },
  failover: { attemptTimeoutMs: 1_500, deadlineMs: 8_000, maxAttempts: 4, hedgeMinMs: 200 },
  scoring: { probationSuccesses: 5 },
};

/** mulberry32: a small seeded generator, so traffic draws repeat run after run. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function merge(base: RoutingOverrides, extra: RoutingOverrides = {}): RoutingOverrides {
  return {
    ...base,
    ...extra,
    probe: { ...base.probe, ...extra.probe },
    circuit: { ...base.circuit, ...extra.circuit },
    failover: { ...base.failover, ...extra.failover },
    scoring: { ...base.scoring, ...extra.scoring },
    limits: { ...base.limits, ...extra.limits },
  };
}

export async function startRouter(
  options: Omit<StartRouterOptions, "providers"> & { records?: readonly ProviderRecord[] } = {},
): Promise<TestRouter> {
  const { records, ...rest } = options;
  const source = records !== undefined ? staticProviderSet(records) : undefined;
  const router = await start({
    devnet: true,
    logLevel: process.env.ROUTER_LOG === "1" ? "debug" : "silent",
    ...rest,
    ...(source !== undefined ? { providers: source } : {}),
    routing: merge(testRouting, rest.routing),
  });
  const answer = async (response: Response): Promise<HttpAnswer> => {
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
  };
  return {
    ...router,
    // Tests stop at once unless they ask to drain (a hung call would hold a hook for its deadline).
    stop: (stopping) => router.stop({ drainMs: 0, ...stopping }),
    setProviders: (next) => {
      if (source === undefined) throw new Error("this router takes its providers from the indexer");
      source.set(next);
    },
    post: async (chainId, body, headers = {}) =>
      answer(
        await fetch(router.rpcUrl(chainId), {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body: typeof body === "string" ? body : JSON.stringify(body),
        }),
      ),
    get: async (path) => answer(await fetch(`${router.url}${path}`)),
  };
}
