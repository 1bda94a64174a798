import { failureKinds, type ProviderState } from "./health.ts";
import type { ProviderSetStatus } from "./providerSet.ts";
import type { ChainTable } from "./routingTable.ts";

// GET /status: per chain, every provider with its stake, score and the parts of it, state, and
// share of recent traffic, so an operator can see why traffic goes where it goes.

export type ProviderStatus = {
  address: string;
  name: string;
  url: string;
  /** Active stake, token wei (decimal string). */
  stake: string;
  slashedTotal: string;
  state: ProviderState;
  /** latency · errors · lag · slash, 0…1. */
  score: number;
  parts: { stake: number; cappedStake: number; latency: number; errors: number; lag: number; slash: number; probation: number };
  /** Routing weight after probation and the operator cap; 0 when not eligible. */
  weight: number;
  /** weight / Σ weights of the chain: the share the formula gives. */
  expectedShare: number;
  /** Share of the calls of the chain this provider answered over the last one or two windows. */
  trafficShare: number;
  latencyMs: number | null;
  errorRate: number;
  head: number | null;
  lagBlocks: number;
  reportedChainId: number | null;
  circuitReopensInMs: number | null;
  probationLeft: number;
  /** Client calls' requests on the router's connections to it now, and waiting for one. */
  inFlight: number;
  waiting: number;
  served: number;
  failures: Record<string, number>;
  lastFailure: string | null;
  /** How long ago that failure was, in whole seconds (a recovered provider keeps its last failure). */
  lastFailureSecondsAgo: number | null;
};

export type ChainStatus = {
  chainId: number;
  medianHead: number | null;
  eligibleProviders: number;
  /** Reads are hedged after this many ms (the chain's latency quantile), null until measured. */
  hedgeAfterMs: number | null;
  providers: ProviderStatus[];
};

export type RouterStatus = {
  devnet: boolean;
  uptimeSeconds: number;
  providerSet: ProviderSetStatus;
  chains: ChainStatus[];
};

export function chainStatus(table: ChainTable, now: number, hedgeMinMs: number): ChainStatus {
  const shares = table.expectedShares(now);
  let recentTotal = 0;
  for (const p of table.providers) recentTotal += p.windowServed + p.previousWindowServed;
  const quantile = table.latency.value();
  return {
    chainId: table.chainId,
    medianHead: table.medianHead >= 0 ? table.medianHead : null,
    eligibleProviders: table.eligibleCount,
    hedgeAfterMs: Number.isNaN(quantile) ? null : Math.max(hedgeMinMs, quantile),
    providers: table.providers.map((p) => {
      const failures: Record<string, number> = {};
      failureKinds.forEach((kind, i) => {
        if (p.failures[i] > 0) failures[kind] = p.failures[i];
      });
      const { stake, cappedStake, latency, errors, lag, slash, probation } = p.parts;
      return {
        address: p.address,
        name: p.name,
        url: p.url,
        stake: p.stake.toString(),
        slashedTotal: p.slashedTotal.toString(),
        state: p.state(now),
        score: p.parts.score,
        parts: { stake, cappedStake, latency, errors, lag, slash, probation },
        weight: p.parts.weight,
        expectedShare: shares.get(p) ?? 0,
        trafficShare: recentTotal > 0 ? (p.windowServed + p.previousWindowServed) / recentTotal : 0,
        latencyMs: Number.isNaN(p.latencyMs) ? null : p.latencyMs,
        errorRate: p.errorRate,
        head: p.head >= 0 ? p.head : null,
        lagBlocks: p.lag,
        reportedChainId: p.reportedChainId,
        circuitReopensInMs: p.reopensAt > 0 ? Math.max(0, Math.round(p.reopensAt - now)) : null,
        probationLeft: p.probationLeft,
        inFlight: p.inFlight,
        waiting: p.waiting,
        served: p.served,
        failures,
        lastFailure: p.lastFailure,
        lastFailureSecondsAgo: p.lastFailure === null ? null : Math.floor((now - p.lastFailureAt) / 1000),
      };
    }),
  };
}
