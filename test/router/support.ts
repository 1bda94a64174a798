import type { TestRouter } from "../helpers/startRouter.ts";

// Small shared pieces of the router's test stories.

export const DEV_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"; // Hardhat's first dev account
/** That account's key, public in every Hardhat install: for signing raw transactions in tests. */
export const DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/** Polls `check` until it returns true; fails with `what` after `timeoutMs` (generous: no timing assertions). */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Calls the chain directly (not through the router). */
export async function direct(rpcUrl: string, method: string, params: unknown[] = []): Promise<unknown> {
  const response = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = (await response.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(body.error.message);
  return body.result;
}

export type Hammered = { failures: string[]; providers: Map<string, number>; attempts: number[] };

/**
 * Sends `count` eth_getBalance calls, `concurrency` at a time, and checks each answer against
 * `expected`; returns every failure (as text) and who answered.
 */
export async function hammer(router: TestRouter, chainId: number, count: number, concurrency: number, expected: string): Promise<Hammered> {
  const failures: string[] = [];
  const providers = new Map<string, number>();
  const attempts: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const id = next++;
      try {
        const answer = await router.post(chainId, { jsonrpc: "2.0", id, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] });
        const body = answer.json() as { id?: unknown; result?: unknown; error?: unknown };
        if (answer.status !== 200 || body.id !== id || body.result !== expected) failures.push(`#${id}: HTTP ${answer.status} ${answer.text}`);
        const who = answer.headers.get("x-din-provider") ?? "missing";
        providers.set(who, (providers.get(who) ?? 0) + 1);
        attempts.push(Number(answer.headers.get("x-din-attempts")));
      } catch (error) {
        failures.push(`#${id}: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { failures, providers, attempts };
}
