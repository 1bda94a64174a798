import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { recordsFor, startFaultyUpstreams, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { startRouter, type TestRouter } from "../helpers/startRouter.ts";
import { waitFor } from "./support.ts";

// A batch's transactions go one after another (router/README "Serving"). A review: chained by
// recursion, a batch of 1,000 sends answered at once overflowed the stack, in the request (a 500)
// or in a timer (an uncaught exception, the request never answered).

const CHAIN = 31337;
const sends = (n: number) => Array.from({ length: n }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "eth_sendRawTransaction", params: ["0x00"] }));

describe("a batch of sends answered at once (no provider)", () => {
  let router: TestRouter;
  beforeAll(async () => {
    router = await startRouter({ records: recordsFor([{ url: "http://127.0.0.1:9/" }], CHAIN, [1_000]) }); // nothing listens there
    await waitFor(() => router.status().chains[0].providers.every((p) => p.state !== "checking"), "the dead provider probed");
  });
  afterAll(async () => {
    await router?.stop();
  });

  it("answers each of 1,000 sends (the default batch limit), in order", async () => {
    const answer = await router.post(CHAIN, sends(1_000));
    expect(answer.status).toBe(200);
    const replies = answer.json() as { id: number; error?: { code: number } }[];
    expect(replies.map((r) => r.id)).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    expect(replies.every((r) => r.error !== undefined)).toBe(true);
  });
});

describe("a batch of sends whose first hangs until its provider's circuit opens", () => {
  let chain: Chain;
  let nodes: ProviderNode[];
  let router: TestRouter;
  beforeAll(async () => {
    chain = await startChain();
    nodes = await startFaultyUpstreams(chain.rpcUrl, 1);
    router = await startRouter({ records: recordsFor(nodes, CHAIN, [1_000]), routing: { probe: { timeoutMs: 300 }, failover: { attemptTimeoutMs: 2_000, deadlineMs: 4_000 } } });
    await waitFor(() => router.status().chains[0].eligibleProviders === 1, "one eligible provider");
  });
  afterAll(async () => {
    await router?.stop();
    for (const node of nodes ?? []) await node.stop();
    await chain?.stop();
  });

  it("answers the batch and releases its calls when its first send hangs (the rest then go at once)", async () => {
    await nodes[0].setFault({ kind: "hang" });
    try {
      const answer = await fetch(router.rpcUrl(CHAIN), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(sends(1_000)),
        signal: AbortSignal.timeout(15_000),
      });
      expect(answer.status).toBe(200);
      expect(((await answer.json()) as unknown[]).length).toBe(1_000);
      expect(router.metrics()).toContain("din_router_in_flight_calls 0");
    } finally {
      await nodes[0].setFault({ kind: "none" });
    }
  });
});
