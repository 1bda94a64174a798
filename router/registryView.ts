import { performance } from "node:perf_hooks";
import type { Logger } from "./log.ts";

// GET /registry: the registry as the dashboard shows it, read from the indexer's GraphQL with one
// fixed query. The router does not relay arbitrary GraphQL: a query from the internet could be as
// costly as its author likes, and the indexer is the gateway's own. One read at a time, and its
// answer is shared for `maxAgeMs`, so a thousand open dashboards cost the indexer one query a
// second or two. Amounts are token wei as decimal strings, registry times unix seconds.

export type RegistryProvider = {
  address: string;
  name: string;
  activeStake: string;
  unbondingStake: string;
  status: string;
  slashedTotal: string;
  openCases: number;
  endpoints: { items: { chainId: string; url: string }[] };
};

export type Vote = { voter: string; support: number; weight: string; reason: string };

export type Proposal = {
  id: string;
  /** The slashing case it resolves; null for other proposals. */
  caseId: string | null;
  state: string;
  action: string;
  /** The provider it jails, also beside a case's uphold; null when none. */
  jails: string | null;
  voteStart: string;
  voteEnd: string;
  eta: string | null;
  forVotes: string;
  againstVotes: string;
  abstainVotes: string;
  votes: { items: Vote[] };
};

export type SlashingCase = {
  id: string;
  provider: string;
  watcher: string;
  amount: string;
  bond: string;
  status: string;
  expiresAt: string;
  slashed: string | null;
  openedAt: string;
  resolvedAt: string | null;
};

export type StakeEvent = { id: string; provider: string; kind: string; amount: string; activeStake: string; unbondingStake: string; releaseAt: string | null; timestamp: string };

export type Registry = {
  providers: { items: RegistryProvider[] };
  slashingCases: { items: SlashingCase[] };
  proposals: { items: Proposal[] };
  stakeEvents: { items: StakeEvent[] };
  parameters: { items: { name: string; value: string }[] };
  /** Per indexed chain, the last block the indexer has processed: the registry's clock. */
  _meta: { status: Record<string, { id: number; block: { number: number; timestamp: number } }> };
};

export const registryQuery = `{
  providers(orderBy: "activeStake", orderDirection: "desc", limit: 1000) {
    items { address name activeStake unbondingStake status slashedTotal openCases endpoints { items { chainId url } } }
  }
  slashingCases(orderBy: "openedAt", orderDirection: "desc", limit: 50) {
    items {
      id provider watcher amount bond status expiresAt slashed openedAt resolvedAt
    }
  }
  proposals(orderBy: "createdAt", orderDirection: "desc", limit: 200) {
    items {
      id caseId state action jails voteStart voteEnd eta forVotes againstVotes abstainVotes
      votes { items { voter support weight reason } }
    }
  }
  stakeEvents(orderBy: "timestamp", orderDirection: "desc", limit: 25) {
    items { id provider kind amount activeStake unbondingStake releaseAt timestamp }
  }
  parameters { items { name value } }
  _meta { status }
}`;

export type RegistryAnswer = { status: number; body: Buffer };

const maxAnswerBytes = 8 * 1024 * 1024;
const timeoutMs = 10_000;

/** Reads the registry from the indexer at `indexerUrl`, cached for `maxAgeMs`, one read at a time. */
export function registryReader(indexerUrl: string, log: Logger, maxAgeMs = 2_000): () => Promise<RegistryAnswer> {
  const url = `${indexerUrl.replace(/\/+$/, "")}/graphql`;
  const body = JSON.stringify({ query: registryQuery });
  let cached: { answer: RegistryAnswer; at: number } | null = null;
  let reading: Promise<RegistryAnswer> | null = null;
  return () => {
    if (cached !== null && performance.now() - cached.at < maxAgeMs) return Promise.resolve(cached.answer);
    reading ??= query(url, body, log)
      .then((answer) => {
        cached = { answer, at: performance.now() };
        return answer;
      })
      .finally(() => {
        reading = null;
      });
    return reading;
  };
}

/** A GraphQL-shaped error, so GraphQL clients (and the dashboard) show the message. */
export function graphqlError(message: string): Buffer {
  return Buffer.from(JSON.stringify({ errors: [{ message }] }));
}

/** One query; never rejects. The client learns that the indexer failed, the log learns how. */
async function query(url: string, body: string, log: Logger): Promise<RegistryAnswer> {
  const failed = (status: number, message: string, detail: unknown) => {
    log.warn("registry read failed", { indexer: url, error: detail instanceof Error ? detail.message : String(detail) });
    return { status, body: graphqlError(message) };
  };
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body,
      redirect: "error",
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.status !== 200 || response.body === null) {
      await response.body?.cancel();
      return failed(502, `the indexer answered HTTP ${response.status}`, `HTTP ${response.status}`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxAnswerBytes) {
        await reader.cancel();
        return failed(502, "the indexer's answer is too large", `more than ${maxAnswerBytes} bytes`);
      }
      chunks.push(value);
    }
    return { status: 200, body: Buffer.concat(chunks, size) };
  } catch (error) {
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    return failed(timedOut ? 504 : 502, timedOut ? "the indexer did not answer in time" : "the indexer is unreachable", error);
  }
}
