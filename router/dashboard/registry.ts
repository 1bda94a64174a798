import type { HistoryResponse } from "../history.ts";
import type { RouterStatus } from "../status.ts";

// What the dashboard reads: the router's /status and /history, typed by the code that writes them
// (type-only imports: nothing of the router is bundled into the page), and the registry from the
// indexer's GraphQL (through the router's POST /graphql). Amounts are token wei as decimal
// strings, registry times unix seconds.

export type { HistoryPoint } from "../history.ts";
export type { ProviderStatus as RouterProvider, RouterStatus } from "../status.ts";

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

const registryQuery = `{
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
      id caseId state action voteStart voteEnd eta forVotes againstVotes abstainVotes
      votes { items { voter support weight reason } }
    }
  }
  stakeEvents(orderBy: "timestamp", orderDirection: "desc", limit: 25) {
    items { id provider kind amount activeStake unbondingStake releaseAt timestamp }
  }
  parameters { items { name value } }
  _meta { status }
}`;

async function getJson<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(path, { cache: "no-store", ...init });
  const body = (await response.json()) as T & { errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(body.errors[0].message);
  if (!response.ok) throw new Error(`${path} answered HTTP ${response.status}`);
  return body;
}

export const readStatus = () => getJson<RouterStatus>("/status");
export const readHistory = (since: number) => getJson<HistoryResponse>(`/history?since=${since}`);
export async function readRegistry(): Promise<Registry> {
  const body = await getJson<{ data: Registry }>("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: registryQuery }),
  });
  return body.data;
}
