import type { HistoryResponse } from "../history.ts";
import type { Registry } from "../registryView.ts";
import type { RouterStatus } from "../status.ts";

// What the dashboard reads from its router: /status, /history and /registry, typed by the code that
// writes them (type-only imports: nothing of the router is bundled into the page).

export type { HistoryPoint } from "../history.ts";
export type { ProviderStatus as RouterProvider, RouterStatus } from "../status.ts";
export type { Proposal, Registry, RegistryProvider, SlashingCase, StakeEvent, Vote } from "../registryView.ts";

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { cache: "no-store" });
  let body: T & { errors?: { message: string }[]; error?: string };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    // A proxy's error page in front of the router, say: its status says more than a JSON parse error.
    throw new Error(`${path} answered HTTP ${response.status} without JSON`);
  }
  if (body.errors?.length) throw new Error(body.errors[0].message);
  if (!response.ok) throw new Error(body.error ?? `${path} answered HTTP ${response.status}`);
  return body;
}

export const readStatus = () => getJson<RouterStatus>("/status");
export const readHistory = (since: number) => getJson<HistoryResponse>(`/history?since=${since}`);
export const readRegistry = async () => (await getJson<{ data: Registry }>("/registry")).data;
