import type { ScoringParameters } from "./options.ts";

// The routing formula (router/README.md states it with every parameter):
//
//   weight_i = cap(√stake)_i · latency_i · errors_i · lag_i · slash_i · probation_i
//   share_i  = weight_i / Σ_j weight_j          over the chain's eligible providers
//
//   latency_i   = L0 / (L0 + ewmaLatencyMs_i)                      (1 before the first sample)
//   errors_i    = 1 − ewmaErrorRate_i
//   lag_i       = 1 − max(0, lagBlocks_i) / (maxLagBlocks + 1)
//   slash_i     = activeStake_i / (activeStake_i + slashedTotal_i)
//   probation_i = probationWeight while in probation, else 1
//   cap(·)      = water-filling over the √stake terms so that no provider's share by stake exceeds
//                 maxOperatorShare (when fewer than 1/maxOperatorShare providers have stake, they
//                 share equally); the reputation factors apply after it

/** What the formula reads from a provider. */
export type ScoreInputs = {
  stakeTokens: number;
  slashedTokens: number;
  latencyMs: number;
  errorRate: number;
  lag: number;
  inProbation: boolean;
};

/** The factors of a provider's score, kept for /status. */
export type Factors = {
  /** √(stake in tokens). */
  stake: number;
  latency: number;
  errors: number;
  lag: number;
  slash: number;
  /** probationWeight while in probation, else 1. */
  probation: number;
  /** latency · errors · lag · slash. */
  score: number;
  /** stake · score · probation, before the operator cap (the routing table sets the weight it routes by). */
  weight: number;
};

export function scoreFactors(p: ScoreInputs, s: ScoringParameters): Factors {
  const stake = Math.sqrt(Math.max(0, p.stakeTokens));
  const latency = Number.isNaN(p.latencyMs) ? 1 : s.latencyReferenceMs / (s.latencyReferenceMs + Math.max(0, p.latencyMs));
  const errors = Math.min(1, Math.max(0, 1 - p.errorRate));
  const lag = Math.max(0, 1 - Math.max(0, p.lag) / (s.maxLagBlocks + 1));
  const total = p.stakeTokens + p.slashedTokens;
  const slash = total > 0 ? Math.max(0, p.stakeTokens) / total : 1;
  const probation = p.inProbation ? s.probationWeight : 1;
  const score = latency * errors * lag * slash;
  return { stake, latency, errors, lag, slash, probation, score, weight: stake * score * probation };
}

/**
 * Caps every weight at `cap` of the total, in place, by water-filling: the largest weights are cut
 * to a common level and the total shrinks with them until no share exceeds the cap. When fewer than
 * 1/cap weights are positive no such level exists, and the positive weights become equal (the smallest of them).
 */
export function capShares(weights: Float64Array, count: number, cap: number): void {
  if (cap >= 1 || count === 0) return;
  let total = 0;
  let max = 0;
  let positive = 0;
  for (let i = 0; i < count; i++) {
    const w = weights[i];
    total += w;
    if (w > max) max = w;
    if (w > 0) positive++;
  }
  if (total <= 0 || max <= cap * total) return; // the common case: nothing to cut
  if (positive * cap <= 1) {
    // Each cut to the smallest: equal, and none raised (the capped term /status shows stays in √stake).
    let least = max;
    for (let i = 0; i < count; i++) if (weights[i] > 0 && weights[i] < least) least = weights[i];
    for (let i = 0; i < count; i++) if (weights[i] > 0) weights[i] = least;
    return;
  }
  const sorted = weights.slice(0, count).sort().reverse();
  // With the k largest capped at level v: T = k·v + R (R = rest) and v = cap·T, so T = R / (1 − k·cap).
  let rest = total;
  let k = 0;
  let level = 0;
  while (k < count) {
    const t = rest / (1 - k * cap);
    if (sorted[k] <= cap * t) {
      level = cap * t;
      break;
    }
    rest -= sorted[k];
    k++;
    if (k * cap >= 1) {
      level = sorted[k - 1];
      break;
    }
  }
  if (level <= 0) return;
  for (let i = 0; i < count; i++) if (weights[i] > level) weights[i] = level;
}
