import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { recordsFor, startFaultyUpstreams, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { seededRandom, startRouter, type TestRouter } from "../helpers/startRouter.ts";
import { direct, waitFor } from "./support.ts";

// A filter's first scan votes on the block before it; with nobody else known to hold that block
// the other providers are asked all the same (filters.test.ts: a fork must not be believed alone).
// On a chain of two providers whose second is stuck behind, the stuck one is the lower median head:
// its lag is 0 and it stays eligible. None of the others has the block then: the reporter must be
// believed, as with nobody to ask, or the filter gives nothing for ever (a review of the first
// version of that rule: "[]" on every poll).

const CHAIN = 31337;
type RpcReply = { id: unknown; result?: unknown; error?: { code: number; message: string } };

let chain: Chain;
let nodes: ProviderNode[];
let router: TestRouter;

beforeAll(async () => {
  chain = await startChain({ blockIntervalMs: 0 });
  nodes = await startFaultyUpstreams(chain.rpcUrl, 2);
  for (let k = 0; k < 3; k++) await direct(chain.rpcUrl, "evm_mine");
  const stuckAt = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
  await nodes[1].setFault({ kind: "behind", head: stuckAt }); // node-1 never gets past this block
  // Default scoring (maxLagBlocks 5); node-0 carries nearly all the weight, so the filter's head is its.
  // (maxOperatorShare 1: otherwise the default 0.5 evens the two out, and the filter's head is node-1's
  // half the time: then node-1 holds the voted block and the filter works; the other half it stalls.)
  router = await startRouter({ records: recordsFor(nodes, CHAIN, [1_000_000, 1]), random: seededRandom(3), routing: { scoring: { maxOperatorShare: 1 } } });
  await waitFor(() => router.status().chains[0].eligibleProviders === 2, "two eligible providers");
  for (let k = 0; k < 3; k++) await direct(chain.rpcUrl, "evm_mine"); // node-0 three blocks past node-1
});

afterAll(async () => {
  await router?.stop();
  for (const node of nodes ?? []) await node.stop();
  await chain?.stop();
});

describe("a filter's first vote when the only other provider is behind the block", () => {
  it("still gives the new blocks (the stuck provider stays eligible: it is the lower median)", async () => {
    const rpc = async (method: string, params: unknown[] = []) =>
      ((await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method, params })).json() as RpcReply);
    const created = await rpc("eth_newBlockFilter");
    expect(created.error).toBeUndefined();
    const filter = created.result as string;
    const perPoll: unknown[] = [];
    const hashes: string[] = [];
    const errors: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      await direct(chain.rpcUrl, "evm_mine");
      await new Promise((resolve) => setTimeout(resolve, 300)); // a few probes: node-1 is still eligible, still behind
      const reply = await rpc("eth_getFilterChanges", [filter]);
      perPoll.push(reply.error ?? (reply.result as string[]).length);
      if (reply.error !== undefined) errors.push(reply.error);
      else hashes.push(...(reply.result as string[]));
    }
    const status = router.status().chains[0];
    expect(status.eligibleProviders).toBe(2); // node-1 was never ruled out
    expect(errors).toEqual([]);
    expect(hashes.length, JSON.stringify(perPoll)).toBeGreaterThanOrEqual(6); // the first version of the rule: 0, every poll "[]"
  });
});
