import { performance } from "node:perf_hooks";
import type { ProviderHealth } from "./health.ts";
import type { UpstreamDispatcher } from "./httpClient.ts";
import type { ProbeParameters } from "./options.ts";
import type { ChainTable } from "./routingTable.ts";
import { attemptOnce } from "./upstream.ts";

// Background health probes, off the request path: eth_chainId when a provider joins and every
// chainIdIntervalMs, eth_blockNumber every intervalMs. A probe is also the half-open test of an
// open circuit: the first probe after the open period decides whether the provider comes back.
// State changes are logged by the chain table, which the prober refreshes on every tick.

export type Prober = { stop: () => void; /** Runs one scheduling pass now (tests). */ tick: () => void };

type ProbeState = { nextAt: number; running: boolean; startedAt: number };

/**
 * Probes running at once on one origin (`scheme://host:port`): anyone may register many paths on
 * one stranger's host, and the probes of providers sharing a host must not open a connection each
 * to it. The probes' HTTP client keeps this many connections per origin, so a probe never waits for one.
 */
export const probesPerOrigin = 4;

export function startProber(deps: {
  tables: () => Iterable<ChainTable>;
  client: UpstreamDispatcher;
  probe: ProbeParameters;
}): Prober {
  const { client, probe } = deps;
  const states = new WeakMap<ProviderHealth, ProbeState>();
  const headsChanged = new Set<ChainTable>();
  let running = 0;
  const runningOn = new Map<string, number>();
  let stopped = false;

  const call = async (p: ProviderHealth, method: string) => {
    const outcome = await attemptOnce(client, p, method, probe.timeoutMs);
    if (outcome.type === "failure") return { ok: false as const, kind: outcome.kind, detail: outcome.detail };
    // Probes hold no client's budget: "over_budget" cannot happen here. On connections of their own
    // (probesPerOrigin, router.ts) probes wait for nobody: "queued" means connecting (and answering)
    // took the whole timeout.
    if (outcome.type === "cancelled" || outcome.type === "over_budget" || outcome.type === "queued") {
      return { ok: false as const, kind: "timeout" as const, detail: outcome.type === "queued" ? `no answer within ${probe.timeoutMs} ms` : outcome.type };
    }
    const value = outcome.type === "answer" ? outcome.quantity : null;
    if (value === null) return { ok: false as const, kind: "malformed" as const, detail: `${method} did not answer a quantity` };
    return { ok: true as const, value, latencyMs: outcome.latencyMs };
  };

  const run = async (table: ChainTable, p: ProviderHealth) => {
    const needsChainId = p.chainCheck !== "ok" || performance.now() - p.lastChainCheckAt >= probe.chainIdIntervalMs;
    if (needsChainId) {
      const answer = await call(p, "eth_chainId");
      if (!answer.ok) {
        p.recordProbeFailure(answer.kind, answer.detail, performance.now());
        return;
      }
      p.setChainCheck(answer.value, table.chainId, performance.now());
      if (p.chainCheck === "wrong") return;
    }
    const head = await call(p, "eth_blockNumber");
    const now = performance.now();
    if (!head.ok) {
      p.recordProbeFailure(head.kind, head.detail, now);
      return;
    }
    table.recordHead(p, head.value, now);
    p.recordProbeSuccess(head.latencyMs, now);
    headsChanged.add(table);
  };

  // How many probes run at once: enough for every provider to be probed once an interval (a slot
  // holds a probe for its duration, then waits for the next tick), twice that for slack, at least
  // 32, at most probe.concurrency. (A fixed 32 left 1,322 of 2,000 providers never probed after 20 s.)
  const tickMs = Math.max(10, Math.min(100, probe.intervalMs / 4));
  /** A probe's mean duration (chain id and head; a timeout counts whole), for sizing the slots. */
  let probeMs = 100;
  /** Where each chain's next pass starts: at the first provider a pass found due and could not start. */
  const cursors = new WeakMap<ChainTable, number>();
  let firstTable = 0;

  const tick = () => {
    if (stopped) return;
    const now = performance.now();
    const tables = [...deps.tables()];
    let providers = 0;
    for (const table of tables) providers += table.providers.length;
    const slots = Math.min(probe.concurrency, Math.max(32, Math.ceil((2 * providers * (probeMs + tickMs)) / probe.intervalMs)));
    // Chains take turns going first, so one whose probes fill the slots cannot starve the others.
    firstTable = tables.length > 0 ? (firstTable + 1) % tables.length : 0;
    for (let t = 0; t < tables.length; t++) {
      const table = tables[(firstTable + t) % tables.length];
      const list = table.providers;
      const from = cursors.get(table) ?? 0;
      let skipped = -1;
      for (let k = 0; k < list.length; k++) {
        const i = (from + k) % list.length;
        const p = list[i];
        let state = states.get(p);
        if (state === undefined) {
          state = { nextAt: 0, running: false, startedAt: -Infinity };
          states.set(p, state);
        }
        if (state.running) continue;
        const circuit = p.circuitState(now);
        // Half-open: probed as soon as the open period ends, then at the usual interval (a probe may
        // decide nothing, e.g. on the wrong chain).
        const due = circuit === "closed" ? state.nextAt <= now : circuit === "half_open" && (state.startedAt < p.reopensAt || state.nextAt <= now);
        if (!due) continue;
        const onOrigin = runningOn.get(p.origin) ?? 0;
        // No slot, or its host's turn comes when one of its probes ends (probesPerOrigin).
        if (running >= slots || onOrigin >= probesPerOrigin) {
          if (skipped < 0) skipped = i;
          if (running >= slots) break;
          continue;
        }
        runningOn.set(p.origin, onOrigin + 1);
        state.running = true;
        state.startedAt = now;
        running++;
        const s = state;
        void run(table, p).finally(() => {
          running--;
          const left = runningOn.get(p.origin)! - 1;
          if (left === 0) runningOn.delete(p.origin);
          else runningOn.set(p.origin, left);
          s.running = false;
          const end = performance.now();
          probeMs += (end - s.startedAt - probeMs) / 64;
          // Jitter spreads probes of many providers over the interval.
          s.nextAt = end + probe.intervalMs * (0.9 + 0.2 * Math.random());
        });
      }
      if (skipped >= 0) cursors.set(table, skipped);
      if (headsChanged.has(table)) {
        headsChanged.delete(table);
        table.updateMedianHead(now, probe.intervalMs * 3 + probe.timeoutMs);
      }
      table.refresh(now); // state changes are seen (and logged) even without traffic
    }
  };

  const timer = setInterval(tick, tickMs);
  timer.unref();
  setImmediate(tick);
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
    tick,
  };
}
