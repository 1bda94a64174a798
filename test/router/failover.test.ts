import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { performance } from "node:perf_hooks";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { Agent } from "undici";
import { routeCall, startSweeper, type CallResult } from "../../router/failover.ts";
import { classifyRpcError, ConnectionGates, judgeReply, UpstreamAttempt, type AttemptOwner, type Outcome } from "../../router/upstream.ts";
import { resolveRoutingOptions, type RoutingOverrides } from "../../router/options.ts";
import { WriteAffinity } from "../../router/writeAffinity.ts";
import { ClientHeads } from "../../router/blocks.ts";
import type { FailureKind } from "../../router/health.ts";
import { ChainTable } from "../../router/routingTable.ts";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { startProviderNode, providerAddress, recordsFor, startFaultyUpstreams, type Fault, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { startRouter, type TestRouter } from "../helpers/startRouter.ts";
import { DEV_ACCOUNT, direct, hammer, waitFor } from "./support.ts";

// Four provider nodes in front of one Hardhat node; node 0 stays healthy, the others fail in every
// way a stranger's node can. While one healthy provider remains no client request may fail.

const CHAIN = 31337;
/** Hardhat's twentieth dev account, which no other test here spends from. */
const hardhatAccount19 = "0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199";
let chain: Chain;
let nodes: ProviderNode[];
let router: TestRouter;
let balance: string;
let trap: ProviderNode; // a "private" server a redirect points at: it must never be reached

const clientCalls = (node: ProviderNode) => node.stats().byMethod.eth_getBalance ?? 0;
const states = () => router.status().chains[0].providers.map((p) => p.state);
const provider = (i: number) => router.status().chains[0].providers.find((p) => p.address === providerAddress(i))!;

/**
 * Runs `body` on a chain of its own (for a test that mines, jumps or reverts: this suite's
 * providers would lag behind it) with three provider nodes and a router probing every `probeMs`.
 */
async function onOwnChain(probeMs: number, body: (own: { chain: Chain; nodes: ProviderNode[]; router: TestRouter }) => Promise<void>): Promise<void> {
  const ownChain = await startChain({ blockIntervalMs: 0 });
  const ownNodes = await startFaultyUpstreams(ownChain.rpcUrl, 3);
  const ownRouter = await startRouter({ records: recordsFor(ownNodes, CHAIN, [1_000, 1_000, 1_000]), routing: { probe: { intervalMs: probeMs } } });
  try {
    await body({ chain: ownChain, nodes: ownNodes, router: ownRouter });
  } finally {
    await ownRouter.stop();
    for (const node of ownNodes) await node.stop();
    await ownChain.stop();
  }
}

async function healAll(): Promise<void> {
  for (const node of nodes) await node.setFault({ kind: "none" });
  for (const node of nodes) node.setLatency(0);
  await waitFor(() => states().every((s) => s === "healthy"), `every provider healthy again (now ${states().join(", ")})`);
  // And known to hold the head: a client shown it sends its latest reads only to those that do (a
  // provider slowed a moment ago may not have been probed since).
  const head = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
  await waitFor(() => router.status().chains[0].providers.every((p) => (p.head ?? -1) >= head), "every provider known to hold the head");
  for (const node of nodes) node.resetStats();
}

/**
 * For each case, node 3 answers the call's method with `wrong`: every client call gets `truth` (from
 * the others) until node 3 is blamed once, as `kind`, in the words `why`.
 */
async function expectBlamed(kind: FailureKind, cases: { call: { jsonrpc: string; id: number; method: string; params: unknown[] }; wrong: unknown; truth: unknown; why: RegExp }[]): Promise<void> {
  const blamed = () => provider(3).failures[kind] ?? 0;
  for (const { call, wrong, truth, why } of cases) {
    await nodes[3].setFault({ kind: "result", method: call.method, result: wrong });
    const before = blamed();
    for (let i = 0; i < 100 && blamed() === before; i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: call.id, result: truth });
    expect(blamed()).toBe(before + 1);
    expect(provider(3).lastFailure).toMatch(why);
    await healAll(); // before its failures in a row open its circuit
  }
}

/** A signed transfer to itself from Hardhat's second dev account (the first one's balance, which tests check, stays). */
async function signTransfer(): Promise<{ account: PrivateKeyAccount; nonce: number; raw: string }> {
  const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
  const nonce = Number(await direct(chain.rpcUrl, "eth_getTransactionCount", [account.address, "pending"]));
  const raw = await account.signTransaction({ chainId: CHAIN, nonce, to: account.address, value: 1n, gas: 21_000n, maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 1n });
  return { account, nonce, raw };
}

/** Sends signTransfer's transaction through the router; `took`: the node that answered. */
async function sendTransaction(): Promise<{ account: PrivateKeyAccount; nonce: number; hash: string; took: number }> {
  const { account, nonce, raw } = await signTransfer();
  const sent = await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] });
  const hash = (sent.json() as { result: string }).result;
  const took = nodes.findIndex((_, i) => providerAddress(i) === sent.headers.get("x-din-provider"));
  expect(took).toBeGreaterThanOrEqual(0);
  return { account, nonce, hash, took };
}

beforeAll(async () => {
  chain = await startChain({ blockIntervalMs: 0 }); // a still chain: heads move only when a test says so
  nodes = await startFaultyUpstreams(chain.rpcUrl, 4);
  trap = await startProviderNode({ upstreamUrl: chain.rpcUrl, adminPort: null });
  router = await startRouter({
    records: recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]),
    routing: { limits: { maxResponseBytes: 1024 * 1024 } },
  });
  balance = (await direct(chain.rpcUrl, "eth_getBalance", [DEV_ACCOUNT, "latest"])) as string;
  await waitFor(() => states().every((s) => s === "healthy"), "all providers healthy at start");
});

afterAll(async () => {
  await router?.stop();
  for (const node of [...(nodes ?? []), trap]) await node?.stop();
  await chain?.stop();
});

describe("failover", () => {
  const faults: Fault[] = [
    { kind: "refuse" },
    { kind: "hang" },
    { kind: "status", status: 500 },
    { kind: "status", status: 429 },
    { kind: "status", status: 503 },
    { kind: "malformed" },
    { kind: "wrongId" },
    { kind: "oversized", bytes: 4 * 1024 * 1024 },
    { kind: "reset" },
    { kind: "rpcError", code: -32005, message: "rate limit exceeded" },
    { kind: "wrongChain", chainId: 1 },
    { kind: "staleHead" },
  ];

  it("answers every request while one healthy provider remains, whatever the other three do", async () => {
    faults.splice(faults.length, 0, { kind: "redirect", location: `${trap.url}/` });
    for (let round = 0; round * 3 < faults.length; round++) {
      const assigned = faults.slice(round * 3, round * 3 + 3);
      for (let i = 0; i < assigned.length; i++) await nodes[i + 1].setFault(assigned[i]);
      const result = await hammer(router, CHAIN, 60, 10, balance);
      expect(result.failures, `round ${round}: ${assigned.map((f) => f.kind).join(", ")}`).toEqual([]);
      expect(result.attempts.every((n) => n >= 1 && n <= 4)).toBe(true);
      await healAll();
    }
    expect(trap.stats().requests).toBe(0); // redirects are never followed
  });

  it("takes traffic from a failing provider and gives it back once it recovers", async () => {
    await nodes[1].setFault({ kind: "status", status: 503 });
    const during = await hammer(router, CHAIN, 200, 4, balance);
    expect(during.failures).toEqual([]);
    expect(provider(1).state).toMatch(/circuit_open|half_open/);
    // A few calls reach it before its circuit opens (failureThreshold = 3, plus probes' timing).
    expect(clientCalls(nodes[1])).toBeLessThan(20);
    expect(provider(1).failures.http_5xx).toBeGreaterThanOrEqual(3);

    await nodes[1].setFault({ kind: "none" });
    await waitFor(() => provider(1).state === "healthy", "the recovered provider to leave probation");
    for (const node of nodes) node.resetStats();
    const after = await hammer(router, CHAIN, 400, 4, balance);
    expect(after.failures).toEqual([]);
    // Equal stakes: 25% once fully trusted again; it restarts at half credit, so ask for 5%.
    expect(clientCalls(nodes[1])).toBeGreaterThan(20);
    expect(after.providers.get(providerAddress(1)) ?? 0).toBeGreaterThan(20);
    await healAll();
  });

  it("finds a wrong chain id, a stale head and an absurd head by probing, and routes nothing to them", async () => {
    await nodes[1].setFault({ kind: "wrongChain", chainId: 1 });
    await nodes[2].setFault({ kind: "staleHead" });
    await nodes[3].setFault({ kind: "absurdHead" });
    await direct(chain.rpcUrl, "hardhat_mine", ["0x14"]); // 20 blocks: node 2 is now 20 behind
    const head = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
    await waitFor(
      () => states().join() === ["healthy", "wrong_chain", "lagging", "lagging"].join(),
      `wrong_chain, lagging, lagging (now ${states().join(", ")})`,
    );
    expect(router.status().chains[0].medianHead).toBe(head); // the absurd height did not move it
    expect(provider(1).reportedChainId).toBe(1);
    expect(provider(2).lagBlocks).toBe(20);
    for (const node of nodes) node.resetStats();
    const result = await hammer(router, CHAIN, 100, 4, balance);
    expect(result.failures).toEqual([]);
    expect([1, 2, 3].map((i) => clientCalls(nodes[i]))).toEqual([0, 0, 0]);
    expect(clientCalls(nodes[0])).toBe(100);
    await healAll();
  });

  it("gives the other provider's height, not one nobody holds, when a liar among two is asked first between probes", async () => {
    // A helper chasing a flaky test: with fewer than three fresh heads, the height given instead
    // of a liar's was maxLeadBlocks past the median (100 blocks no provider had), though the other
    // provider had just answered the true one.
    const pairNodes = await startFaultyUpstreams(chain.rpcUrl, 2);
    const pair = await startRouter({ records: recordsFor(pairNodes, CHAIN, [1_000, 1_000]), routing: { probe: { intervalMs: 3_000 } } });
    try {
      const eligible = () => pair.status().chains[0].providers.filter((p) => ["healthy", "probation"].includes(p.state)).length;
      await waitFor(() => eligible() === 2, "both providers eligible");
      const heightsAsked = () => pairNodes[1].stats().byMethod.eth_blockNumber ?? 0;
      const before = heightsAsked(); // (no client call yet: its probes)
      await waitFor(() => heightsAsked() > before && eligible() === 2, "the liar's next probe finding it eligible");
      await pairNodes[1].setFault({ kind: "absurdHead" }); // its next probe is 3 s away
      const now = await direct(chain.rpcUrl, "eth_blockNumber");
      for (let i = 0; ; i++) {
        expect(i, "the liar was never asked first").toBeLessThan(100);
        const answer = await pair.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_blockNumber", params: [] });
        expect(answer.json()).toEqual({ jsonrpc: "2.0", id: i, result: now });
        if (answer.headers.get("x-din-attempts") === "2") break;
      }
    } finally {
      await pair.stop();
      for (const node of pairNodes) await node.stop();
    }
  });

  it("passes no absurd eth_blockNumber to clients between probes: another provider answers", async () => {
    // The soak: a provider answering 0xffffffffffff was passed to clients until its next probe
    // marked it lagging (viem then failed: "Block at number 281474976710653 could not be found").
    // A chain of its own: the jump below would leave this suite's providers lagging a while.
    await onOwnChain(3_000, async ({ chain: jumpy, nodes: own, router: slowProbes }) => {
      const liar = () => slowProbes.status().chains[0].providers.find((p) => p.address === providerAddress(2))!;
      const heightsAsked = () => own[2].stats().byMethod.eth_blockNumber ?? 0;
      const eligible = (state: string) => ["healthy", "probation"].includes(state);
      const states = () => slowProbes.status().chains[0].providers.map((p) => p.state);
      // The router listens once one provider passed its first probe: wait for all three, so that the
      // first lie (told after the liar's next probe, below) is judged against the others' heads. (With
      // fewer than three fresh heads the router bounds a height only by maxLeadBlocks past the median.)
      await waitFor(() => states().every(eligible), `every provider probed at the start (now ${states().join(", ")})`);
      /**
       * Lies with `fault` between the liar's probes: right after its own probe found it eligible
       * (the next, 3 s away, would find it lagging and keep it from the calls), until a call asked
       * it first (its answer held, another asked: two attempts; in probation its share is small),
       * every answer the real head. When its next probe finds the lie first (calls slowed by a busy
       * machine, a share of 4% in probation: the loop would then never see it asked), it lies again
       * after a probe finds it honest.
       */
      const lieBetweenProbes = async (fault: Fault) => {
        for (let round = 0; ; round++) {
          expect(round, "the liar's probe found its lie before any call asked it first, every time").toBeLessThan(5);
          await own[2].setFault({ kind: "none" });
          const before = heightsAsked(); // (no client call meanwhile: its probes)
          await waitFor(() => heightsAsked() > before && eligible(liar().state), "the liar's probe finding it eligible");
          await own[2].setFault(fault);
          const now = await direct(jumpy.rpcUrl, "eth_blockNumber");
          let askedFirst = false;
          for (let i = 0; ; i++) {
            expect(i, `the liar was never asked first (${liar().state})`).toBeLessThan(300);
            const answer = await slowProbes.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_blockNumber", params: [] });
            expect(answer.json()).toEqual({ jsonrpc: "2.0", id: i, result: now });
            if (answer.headers.get("x-din-attempts") === "2") {
              askedFirst = true;
              break;
            }
            if (!eligible(liar().state)) break; // its probe found the lie: no call asks it first now
          }
          if (!askedFirst) continue;
          for (let i = 0; i < 20; i++) expect((await slowProbes.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_blockNumber", params: [] })).json()).toEqual({ jsonrpc: "2.0", id: i, result: now });
          return;
        }
      };
      await lieBetweenProbes({ kind: "absurdHead" });
      // The same heights written with more digits than a block number needs (the fuzz: they passed).
      for (const absurd of ["0x0000000000000000ffffffff", "0x10000000000000000"]) await lieBetweenProbes({ kind: "result", method: "eth_blockNumber", result: absurd });
      await own[2].setFault({ kind: "absurdHead" });
      // The others failing the call (reviews): the head they are known to hold, not the liar's height.
      const internal = { kind: "rpcError", code: -32603, message: "internal error", method: "eth_blockNumber" } as const;
      for (const i of [0, 1]) await own[i].setFault(internal);
      const known = await direct(jumpy.rpcUrl, "eth_blockNumber");
      for (let i = 0; i < 2; i++) expect((await slowProbes.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_blockNumber", params: [] })).json()).toEqual({ jsonrpc: "2.0", id: i, result: known });
      for (const i of [0, 1]) await own[i].setFault({ kind: "none" });
      // Those failures are the test's own: the two calls' attempts on each (both, when the liar is
      // drawn last) and a probe of theirs that came meanwhile are the three in a row that open a
      // circuit, for 300 ms: the jump below may take less. The check below is of the jump: it starts
      // once a probe of each began after the faults were gone (a probe of one provider starts when
      // the one before has ended) and every circuit is closed.
      const cleared = [0, 1].map((i) => own[i].stats().byMethod.eth_blockNumber ?? 0);
      await waitFor(
        () => [0, 1].every((i) => (own[i].stats().byMethod.eth_blockNumber ?? 0) > cleared[i]) && states().every((s, i) => i === 2 || eligible(s)),
        `a probe of the others since, their circuits closed (now ${states().join(", ")})`,
      );
      // A real jump of more blocks than that since the probes: given once the probes show it (until
      // then, the head known), never the liar's, and nobody's circuit opens.
      await direct(jumpy.rpcUrl, "hardhat_mine", ["0xc8"]);
      const jumped = await direct(jumpy.rpcUrl, "eth_blockNumber");
      const heights = new Set<string>();
      const giveUpAt = performance.now() + 15_000; // a few probe rounds
      for (let i = 0; !heights.has(jumped as string); i++) {
        const answer = (await slowProbes.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_blockNumber", params: [] })).json() as { result: string };
        heights.add(answer.result);
        expect([known, jumped]).toContain(answer.result);
        if (performance.now() > giveUpAt) throw new Error(`the jump was never given: ${[...heights].join(", ")}`);
      }
      await own[2].setFault({ kind: "none" });
      for (let i = 0; i < 3; i++) expect((await slowProbes.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_blockNumber", params: [] })).json()).toEqual({ jsonrpc: "2.0", id: i, result: jumped });
      expect(slowProbes.status().chains[0].providers.map((p) => p.state).filter((s) => s === "circuit_open")).toEqual([]);
    });
  });

  it("gives no client a height no other provider is known to hold: a provider a few blocks ahead is not believed", async () => {
    // The hostile-provider fuzz: a provider answering the head plus three blocks (probes too, within
    // maxLagBlocks) had those heights reach 68 of 200 calls, and viem's watchEvent, eth_getLogs
    // pollers and the router's filters moved past blocks nobody had (34 of 40 logs lost).
    const head = (await direct(chain.rpcUrl, "eth_blockNumber")) as string;
    await nodes[3].setFault({ kind: "result", method: "eth_blockNumber", result: `0x${(Number(head) + 3).toString(16)}` });
    try {
      await waitFor(() => provider(3).head === Number(head) + 3, "node 3's probed head three blocks ahead");
      const asked = () => nodes[3].stats().byMethod.eth_blockNumber ?? 0;
      const before = asked();
      for (let i = 0; i < 40; i++) expect((await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_blockNumber", params: [] })).json()).toEqual({ jsonrpc: "2.0", id: i, result: head });
      expect(asked()).toBeGreaterThan(before); // it was asked, and not believed
    } finally {
      await healAll();
    }
  });

  it("gives no client a latest block no other provider is known to hold: a provider's block a few numbers ahead is not given", async () => {
    // A review (rev13): a provider giving eth_getBlockByNumber("latest") three numbers ahead reached
    // 17 of 40 calls; viem's watchBlocks would then skip the real blocks up to that number.
    const block = (await direct(chain.rpcUrl, "eth_getBlockByNumber", ["latest", false])) as Record<string, unknown>;
    const ahead = { ...block, number: `0x${(Number(block.number) + 3).toString(16)}`, hash: `0x${"ee".repeat(32)}`, parentHash: `0x${"dd".repeat(32)}` };
    await nodes[3].setFault({ kind: "result", method: "eth_getBlockByNumber", result: ahead });
    try {
      const asked = () => nodes[3].stats().byMethod.eth_getBlockByNumber ?? 0;
      const before = asked();
      for (let i = 0; i < 40; i++) {
        const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getBlockByNumber", params: ["latest", false] });
        expect(answer.json()).toEqual({ jsonrpc: "2.0", id: i, result: block });
      }
      expect(asked()).toBeGreaterThan(before); // it was asked, and not believed
    } finally {
      await healAll();
    }
  });

  it("gives a new latest block at once, a second provider asked once: the others' answers then show the block", async () => {
    // A review (rev16) of a first version: block reads did not tell the table a provider's head,
    // so every read after a new block asked every provider.
    await onOwnChain(3_000, async ({ chain: still, nodes: own, router: slowProbes }) => {
      const base = Number(await direct(still.rpcUrl, "eth_blockNumber"));
      await waitFor(() => slowProbes.status().chains[0].medianHead === base, "the probes at the start");
      await direct(still.rpcUrl, "evm_mine");
      const block = await direct(still.rpcUrl, "eth_getBlockByNumber", ["latest", false]);
      for (const node of own) node.resetStats();
      for (let i = 0; i < 10; i++) {
        const answer = await slowProbes.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getBlockByNumber", params: ["latest", false] });
        expect(answer.json()).toEqual({ jsonrpc: "2.0", id: i, result: block });
      }
      expect(own.reduce((sum, node) => sum + (node.stats().byMethod.eth_getBlockByNumber ?? 0), 0)).toBeLessThanOrEqual(11);
    });
  });

  it("gives a new block at once (a second provider asked), and never a height past what the provider answered, also after the chain went back", async () => {
    // The fuzz re-run: given as the block another was known to hold, 40 of 40 calls made right
    // after a block were behind it. A review: a client shown ten blocks that a revert then took
    // away was given that height again (its shown head, kept for a minute), above every provider's.
    // A chain of its own, going back.
    await onOwnChain(1_500, async ({ chain: resetting, nodes: own, router: slowProbes }) => {
      const height = async () => Number(await direct(resetting.rpcUrl, "eth_blockNumber"));
      const ask = (id: number) => slowProbes.post(CHAIN, { jsonrpc: "2.0", id, method: "eth_blockNumber", params: [] });
      const given = async (id: number) => Number(((await ask(id)).json() as { result: string }).result);
      const snapshot = await direct(resetting.rpcUrl, "evm_snapshot");
      const base = await height();
      await waitFor(() => slowProbes.status().chains[0].medianHead === base, "the probes at the start");
      await direct(resetting.rpcUrl, "evm_mine");
      const fresh = await ask(0); // before any probe could show the block
      expect(fresh.json()).toEqual({ jsonrpc: "2.0", id: 0, result: `0x${(base + 1).toString(16)}` });
      await direct(resetting.rpcUrl, "hardhat_mine", ["0x9"]);
      await waitFor(() => slowProbes.status().chains[0].medianHead === base + 10, "the probes at ten blocks more");
      expect(await given(1)).toBe(base + 10); // the client is shown them
      await direct(resetting.rpcUrl, "evm_revert", [snapshot]);
      await waitFor(() => slowProbes.status().chains[0].medianHead === base, "the probes back at the start");
      await direct(resetting.rpcUrl, "evm_mine");
      expect(await given(2)).toBe(await height()); // a block past the probes: given as the provider said it
      // Two of three saying they know no eth_blockNumber (a review: their error replaced a held
      // height, or reached the client when drawn first): every call gets a height.
      for (const node of own.slice(1)) await node.setFault({ kind: "rpcError", code: -32601, message: "the method eth_blockNumber does not exist/is not available", method: "eth_blockNumber" });
      await direct(resetting.rpcUrl, "evm_mine");
      const now = await height();
      for (let i = 0; i < 12; i++) expect([now - 1, now]).toContain(await given(10 + i));
    });
  });

  it("passes execution errors and the caller's mistakes through without retrying or blaming the provider", async () => {
    const failuresBefore = router.status().chains[0].providers.map((p) => Object.values(p.failures).reduce((a, b) => a + b, 0));
    // Init code PUSH1 0 PUSH1 0 REVERT: eth_call reverts.
    const reverted = await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_call", params: [{ data: "0x60006000fd" }, "latest"] });
    const revertBody = reverted.json() as { error: { code: number; message: string } };
    expect(revertBody.error.message).toMatch(/revert/i);
    expect(reverted.headers.get("x-din-attempts")).toBe("1");
    // Invalid params to a read: asked of each provider (one refusing valid reads so must not fail
    // them), then the caller's error.
    const invalid = await router.post(CHAIN, { jsonrpc: "2.0", id: 2, method: "eth_getBalance", params: ["not-an-address"] });
    expect((invalid.json() as { error: { code: number } }).error.code).toBe(-32602);
    expect(invalid.headers.get("x-din-attempts")).toBe("4");
    // Hardhat repeats the bad value in its message: "revert" there is still the caller's mistake
    // (the review: taken for an execution error on a read, it was retried and blamed).
    const echoed = await router.post(CHAIN, { jsonrpc: "2.0", id: 2, method: "eth_getBalance", params: ["revert", "latest"] });
    expect((echoed.json() as { error: { code: number; message: string } }).error).toMatchObject({ code: -32602, message: expect.stringMatching(/revert/) });
    expect(echoed.headers.get("x-din-attempts")).toBe("4");
    const wrongCall = await router.post(CHAIN, { jsonrpc: "2.0", id: 2, method: "eth_call", params: [{ to: "not-an-address" }, "latest"] });
    expect((wrongCall.json() as { error: { code: number } }).error.code).toBe(-32602);
    expect(wrongCall.headers.get("x-din-attempts")).toBe("1");
    // A revert in another node's words (code -32603, a reason of the contract's own): still the
    // caller's (the mutation check: reverts known only by code 3 passed every test).
    for (const node of nodes) await node.setFault({ kind: "rpcError", code: -32603, message: "execution reverted: not owner", method: "eth_call" });
    const owned = await router.post(CHAIN, { jsonrpc: "2.0", id: 3, method: "eth_call", params: [{ data: "0x" }, "latest"] });
    expect(owned.json()).toEqual({ jsonrpc: "2.0", id: 3, error: { code: -32603, message: "execution reverted: not owner" } });
    expect(owned.headers.get("x-din-attempts")).toBe("1");
    const failuresAfter = router.status().chains[0].providers.map((p) => Object.values(p.failures).reduce((a, b) => a + b, 0));
    expect(failuresAfter).toEqual(failuresBefore);
    await healAll();
  });

  it("takes an HTTP 500 as a failure the request may have caused: blamed only once another provider answers the call", async () => {
    // The mutation check: 500 taken as another status (blamed at once) passed every test, which used 503.
    const failures = () => [0, 1, 2, 3].map((i) => Object.values(provider(i).failures).reduce((a, b) => a + b, 0));
    for (const node of nodes) await node.setFault({ kind: "status", status: 500, method: "eth_getBalance" });
    const before = failures();
    const call = { jsonrpc: "2.0", id: 16, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] };
    for (let i = 0; i < 3; i++) expect((await router.post(CHAIN, call)).json()).toMatchObject({ id: 16, error: { code: -32050 } });
    expect(failures()).toEqual(before);
    for (const i of [0, 1, 2]) await nodes[i].setFault({ kind: "none" });
    const http5xx = () => provider(3).failures.http_5xx ?? 0;
    const fiveBefore = http5xx();
    for (let i = 0; i < 100 && http5xx() === fiveBefore; i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 16, result: balance });
    expect(http5xx()).toBe(fiveBefore + 1);
    await healAll();
  });

  it("tells execution errors in each node's words from errors of no known kind", () => {
    // A review: these honest errors to an eth_call or eth_estimateGas were asked of four providers
    // one after another (Hardhat's, geth's, OpenEthereum's and Nethermind's -32015, reth's, Besu's).
    const executed: [number, string][] = [
      [-32000, "maxPriorityFeePerGas (2) is bigger than maxFeePerGas (1)"],
      [-32000, "Transaction requires at least 21000 gas but got 256"],
      [-32000, "gas required exceeds allowance (0)"],
      [-32000, "max fee per gas less than block base fee: address 0x1, maxFeePerGas: 1, baseFee: 7"],
      [-32000, "insufficient balance for transfer"],
      [-32000, "invalid jump destination"],
      [-32000, "stack underflow (0 <=> 1)"],
      [-32015, "VM execution error."],
      [-32003, "EVM error: InvalidJump"],
      [-32004, "Upfront cost exceeds account balance"],
    ];
    for (const [code, message] of executed) {
      expect(classifyRpcError(code, message, "eth_call"), message).toBe("answer");
      expect(classifyRpcError(code, message, "eth_estimateGas"), message).toBe("answer");
      expect(classifyRpcError(code, message, "eth_getBalance"), message).toBe("fault"); // a read executes nothing
    }
    expect(classifyRpcError(-32000, "request failed", "eth_call")).toBe("unknown");
    expect(classifyRpcError(-32000, "request failed", "eth_sendRawTransaction")).toBe("answer");
  });

  it("finds a reply malformed that lacks \"jsonrpc\":\"2.0\", holds both result and error, or is not UTF-8", () => {
    expect(judgeReply(Buffer.from('{"id":1,"result":"0x1"}'), 1, "eth_blockNumber", 1)).toMatchObject({ type: "failure", kind: "malformed" });
    expect(judgeReply(Buffer.from('{"jsonrpc":"2.0","id":1,"result":"0x1","error":{"code":-32000,"message":"x"}}'), 1, "eth_blockNumber", 1)).toMatchObject({ type: "failure", kind: "malformed" });
    expect(judgeReply(Buffer.from('{"jsonrpc":"2.0","id":1,"result":"0x1"}'), 1, "eth_blockNumber", 1)).toMatchObject({ type: "answer", quantity: 1 });
    // The security review: these bytes reached the client (checked as U+FFFD, passed on as they came).
    const notUtf8 = Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"result":"0x'), Buffer.from([0xff, 0xfe, 0xc0, 0xa2]), Buffer.from('"}')]);
    expect(judgeReply(notUtf8, 1, "eth_call", 1)).toEqual({ type: "failure", kind: "malformed", detail: "the reply is not valid UTF-8", latencyMs: 1 });
    expect(judgeReply(Buffer.from('{"jsonrpc":"2.0","id":1,"result":"0x","note":"ünïcödé ✓"}'), 1, "eth_call", 1)).toMatchObject({ type: "answer" });
    // U+FFFD sent as such is valid UTF-8 (only a text holding it is checked byte by byte).
    expect(judgeReply(Buffer.from('{"jsonrpc":"2.0","id":1,"result":"0x","note":"\uFFFD"}'), 1, "eth_call", 1)).toMatchObject({ type: "answer" });
    expect(judgeReply(Buffer.concat([notUtf8.subarray(0, -2), Buffer.from('\uFFFD"}')]), 1, "eth_call", 1)).toMatchObject({ type: "failure", kind: "malformed" });
  });

  it("times the parse of a large reply only for methods whose answers repeat their keys: a trace's are keyed by address and slot", () => {
    // 2 MiB of objects of 32 keys never repeated (nor used by another test: V8 keeps what it
    // learnt of keys it parsed): about 160 ms to parse here (the bound: 60 ms).
    const keys = (n: number) => JSON.stringify({ jsonrpc: "2.0", id: 1, result: Array.from({ length: n }, (_, i) => Object.fromEntries(Array.from({ length: 32 }, (_, k) => [`trace${i}_${k}`, 0]))) });
    expect(judgeReply(Buffer.from(keys(4_000)), 1, "eth_getLogs", 1)).toMatchObject({ type: "failure", kind: "too_large" });
    // A reply of the same shape to a trace (unchecked, allowed by an operator) is passed on, however long it took.
    expect(judgeReply(Buffer.from(keys(4_001)), 1, "trace_replayBlockTransactions", 1)).toMatchObject({ type: "answer" });
  });

  it("asks another provider when one lacks the data, without blaming it, and passes the error on when all do", async () => {
    const lacking: Fault = { kind: "rpcError", code: -32000, message: "missing trie node 3f2a… (path )", method: "eth_getBalance" };
    for (const i of [1, 2, 3]) await nodes[i].setFault(lacking); // pruned nodes: only node 0 keeps the state
    const failuresBefore = [1, 2, 3].map((i) => Object.values(provider(i).failures).reduce((a, b) => a + b, 0));
    const result = await hammer(router, CHAIN, 40, 4, balance);
    expect(result.failures).toEqual([]);
    expect(result.attempts.some((n) => n > 1)).toBe(true); // some went to a pruned node first
    expect([1, 2, 3].map((i) => Object.values(provider(i).failures).reduce((a, b) => a + b, 0))).toEqual(failuresBefore);
    expect(states()).toEqual(["healthy", "healthy", "healthy", "healthy"]);

    await nodes[0].setFault(lacking); // now none has it: the client hears the node's own words
    const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: 7, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] });
    expect(answer.json()).toEqual({ jsonrpc: "2.0", id: 7, error: { code: -32000, message: lacking.message } });
    expect(answer.headers.get("x-din-attempts")).toBe("4");
    await healAll();
  });

  it("asks other providers when one answers a call with an error no rule knows or a false \"invalid params\", and blames nobody", async () => {
    // The hostile-provider fuzz: a provider answering every call with "-32000 request failed" (and
    // its probes truly) failed its share of clients' calls; a review: so did -32602 to valid
    // reads, and with a single second opinion two such providers of four still failed some.
    const all = () => [0, 1, 2, 3].map((i) => Object.values(provider(i).failures).reduce((a, b) => a + b, 0));
    const call = { jsonrpc: "2.0", id: 26, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] };
    for (const [code, message] of [[-32000, "request failed"], [-32602, "invalid argument 0: hex string has length 40, want 40 for common.Address"]] as const) {
      for (const i of [2, 3]) await nodes[i].setFault({ kind: "rpcError", code, message, method: "eth_getBalance" });
      const before = all();
      const asked = () => nodes[3].stats().byMethod.eth_getBalance ?? 0;
      for (let i = 0; i < 100 && asked() < 3; i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 26, result: balance });
      expect(asked()).toBeGreaterThanOrEqual(3);
      expect(all()).toEqual(before); // nodes differ: a client must not get one blamed with calls of its choosing
      await healAll();
    }
    // Every provider says so: the call's own error, passed on once each was asked, nobody blamed.
    for (const node of nodes) await node.setFault({ kind: "rpcError", code: -32000, message: "request failed", method: "eth_getBalance" });
    const everywhere = all();
    for (let id = 0; id < 4; id++) {
      const answer = await router.post(CHAIN, { ...call, id });
      expect(answer.json()).toEqual({ jsonrpc: "2.0", id, error: { code: -32000, message: "request failed" } });
      expect(answer.headers.get("x-din-attempts")).toBe("4");
    }
    expect(all()).toEqual(everywhere);
    // An eth_call too (the fuzz re-run: 17–25 of 360 batch items failed so): its reverts are told
    // by their words or code 3, passed on at once (the test above).
    await healAll();
    await nodes[3].setFault({ kind: "rpcError", code: -32000, message: "request failed", method: "eth_call" });
    const call3 = () => nodes[3].stats().byMethod.eth_call ?? 0;
    const params = [{ to: DEV_ACCOUNT, data: "0x" }, "latest"];
    const executed = await direct(chain.rpcUrl, "eth_call", params);
    for (let i = 0; i < 100 && call3() < 3; i++) expect((await router.post(CHAIN, { jsonrpc: "2.0", id: 27, method: "eth_call", params })).json()).toEqual({ jsonrpc: "2.0", id: 27, result: executed });
    expect(call3()).toBeGreaterThanOrEqual(3);
    await healAll();
  });

  it("blames no provider for a call that fails the same way on every one, and still blames one that alone fails it", async () => {
    const failures = () => [0, 1, 2, 3].map((i) => Object.values(provider(i).failures).reduce((a, b) => a + b, 0));
    const getLogs = { jsonrpc: "2.0", id: 5, method: "eth_getLogs", params: [{ fromBlock: "0x0" }] };
    // A query past every provider's result limit: each says so as geth does (-32005).
    const tooMany: Fault = { kind: "rpcError", code: -32005, message: "query returned more than 10000 results", method: "eth_getLogs" };
    for (const node of nodes) await node.setFault(tooMany);
    const before = failures();
    for (let i = 0; i < 6; i++) {
      const answer = await router.post(CHAIN, getLogs);
      expect(answer.json()).toEqual({ jsonrpc: "2.0", id: 5, error: { code: -32005, message: tooMany.message } });
    }
    // An answer past the router's 1 MiB cap from every provider.
    const huge: Fault = { kind: "oversized", bytes: 2 * 1024 * 1024, method: "eth_getLogs" };
    for (const node of nodes) await node.setFault(huge);
    for (let i = 0; i < 6; i++) expect((await router.post(CHAIN, getLogs)).json()).toMatchObject({ id: 5, error: { code: -32050 } });
    expect(failures()).toEqual(before);
    expect(states()).toEqual(["healthy", "healthy", "healthy", "healthy"]);
    expect(router.status().chains[0].eligibleProviders).toBe(4);

    // Only node 3's answer is too large: the others answer the same call, so node 3 is to blame.
    for (const i of [0, 1, 2]) await nodes[i].setFault({ kind: "none" });
    const tooLarge = () => provider(3).failures.too_large ?? 0;
    const tooLargeBefore = tooLarge();
    for (let i = 0; i < 100 && tooLarge() === tooLargeBefore; i++) expect((await router.post(CHAIN, getLogs)).json()).toHaveProperty("result");
    expect(failures()).toEqual([...before.slice(0, 3), before[3] + 1]);
    await healAll();
  });

  it("cuts off a provider's huge answer to a call or a probe whose answer is a few bytes, and blames it once another answers", async () => {
    // A client's bad parameter that nodes repeat in their error (Hardhat does): 80 KB of it. The
    // hostile-client fuzz: three such calls opened every provider's circuit (each blamed at once).
    const failures = () => [0, 1, 2, 3].map((i) => Object.values(provider(i).failures).reduce((a, b) => a + b, 0));
    const before0 = failures();
    const echoed = { jsonrpc: "2.0", id: 7, method: "eth_getBalance", params: [`0x${"zz".repeat(40_000)}`, "latest"] };
    for (let i = 0; i < 6; i++) expect((await router.post(CHAIN, echoed)).json()).toMatchObject({ id: 7, error: { code: -32050 } });
    expect(failures()).toEqual(before0);
    expect(states()).toEqual(["healthy", "healthy", "healthy", "healthy"]);
    // 512 KiB: within the router's cap (1 MiB here), and no balance or block number is that long.
    await nodes[3].setFault({ kind: "oversized", bytes: 512 * 1024, method: "eth_getBalance" });
    const tooLarge = () => provider(3).failures.too_large ?? 0;
    const before = tooLarge();
    const call = { jsonrpc: "2.0", id: 6, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] };
    for (let i = 0; i < 100 && tooLarge() === before; i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 6, result: balance });
    expect(tooLarge()).toBe(before + 1);
    expect(provider(3).lastFailure).toMatch(/answered more than 64 KiB to a call whose answer is a few bytes/);
    // Probes ask for the block number: a huge one fails them until the circuit opens.
    await nodes[3].setFault({ kind: "oversized", bytes: 512 * 1024, method: "eth_blockNumber" });
    await waitFor(() => /circuit_open|half_open/.test(provider(3).state), `node 3's circuit open (now ${provider(3).state})`);
    await healAll();
  });

  it("takes an execution error in answer to a call that executes nothing as the provider's fault, and gives the client the true answer", async () => {
    // The hostile-provider fuzz: a provider answering every eth_getBalance with "execution
    // reverted" failed 40–58 % of clients' calls, and kept its share with an error rate of 0.
    const rpcFault = () => provider(3).failures.rpc_fault ?? 0;
    const call = { jsonrpc: "2.0", id: 15, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] };
    await nodes[3].setFault({ kind: "rpcError", code: 3, message: "execution reverted", method: "eth_getBalance" });
    const before = rpcFault();
    for (let i = 0; i < 100 && rpcFault() === before; i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 15, result: balance });
    expect(rpcFault()).toBe(before + 1);
    expect(provider(3).lastFailure).toMatch(/3 execution reverted/);
    await healAll();
  });

  it("takes a provider's HTTP 413 as the call's size, not the provider's fault, until another provider takes the call", async () => {
    // The hostile-client fuzz: providers with a request size limit answered 413 to a large call and
    // were blamed at once, each (three calls opened every circuit).
    const failures = () => [0, 1, 2, 3].map((i) => Object.values(provider(i).failures).reduce((a, b) => a + b, 0));
    const call = { jsonrpc: "2.0", id: 14, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] };
    for (const node of nodes) await node.setFault({ kind: "status", status: 413, method: "eth_getBalance" }); // probes are judged as they come
    const before = failures();
    for (let i = 0; i < 6; i++) expect((await router.post(CHAIN, call)).json()).toMatchObject({ id: 14, error: { code: -32050 } });
    expect(failures()).toEqual(before);
    expect(states()).toEqual(["healthy", "healthy", "healthy", "healthy"]);
    for (const i of [0, 1, 2]) await nodes[i].setFault({ kind: "none" });
    const tooLarge = () => provider(3).failures.too_large ?? 0;
    const tooLargeBefore = tooLarge();
    for (let i = 0; i < 100 && tooLarge() === tooLargeBefore; i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 14, result: balance });
    expect(tooLarge()).toBe(tooLargeBefore + 1);
    expect(provider(3).lastFailure).toMatch(/HTTP 413/);
    await healAll();
  });

  it("holds no HTTP 413 to a call past the common 1 MiB limit against its provider, even when another provider takes the call", async () => {
    // The security review: a client sending such calls, with a provider of its own taking them,
    // opened the circuits of the providers behind nginx's default limit and took all the traffic.
    const failures = () => [0, 1, 2, 3].map((i) => Object.values(provider(i).failures).reduce((a, b) => a + b, 0));
    const data = `0x${"00".repeat(600_000)}`; // 1.2 MB of hex
    const call = { jsonrpc: "2.0", id: 17, method: "eth_call", params: [{ to: DEV_ACCOUNT, data }, "latest"] };
    for (const i of [1, 2, 3]) await nodes[i].setFault({ kind: "status", status: 413, method: "eth_call" });
    const before = failures();
    for (let i = 0; i < 8; i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 17, result: "0x" });
    expect(nodes.slice(1).reduce((sum, node) => sum + (node.stats().byMethod.eth_call ?? 0), 0)).toBeGreaterThan(0); // they were asked
    expect(failures()).toEqual(before);
    await nodes[0].setFault({ kind: "status", status: 413, method: "eth_call" });
    const refused = (await router.post(CHAIN, call)).json();
    expect(refused).toMatchObject({ id: 17, error: { code: -32050, message: expect.stringMatching(/^all 4 attempts failed \(last: 0x[0-9a-f]{40}: HTTP 413 \(the call, \d+ bytes, is larger than it takes\)\)$/) } });
    expect(failures()).toEqual(before);
    expect(states()).toEqual(["healthy", "healthy", "healthy", "healthy"]);
    await healAll();
  });

  it("gives a node's refusal of a large transaction, not another provider's 413 to it", async () => {
    // A review of the 413 change: a provider's 413 kept as the answer hid the node's reason from a send (6 of 6).
    for (const i of [1, 2, 3]) await nodes[i].setFault({ kind: "status", status: 413, method: "eth_sendRawTransaction" });
    const { account, nonce } = await signTransfer();
    const raw = await account.signTransaction({ chainId: CHAIN, nonce, to: account.address, data: `0x${"00".repeat(600_000)}`, gas: 21_000n, maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 1n });
    const truth = await fetch(chain.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 19, method: "eth_sendRawTransaction", params: [raw] }) });
    const refusal = ((await truth.json()) as { error: { message: string } }).error.message;
    for (let i = 0; i < 4; i++) {
      const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: 19, method: "eth_sendRawTransaction", params: [raw] });
      expect(answer.json()).toMatchObject({ id: 19, error: { message: refusal } });
    }
    await healAll();
  });

  it("holds a 4xx that the call may have caused (a firewall's 403) against no provider when none answers it", async () => {
    // A re-probe of the security review: providers behind a firewall answering 403 to "<script" in
    // a call's params had their circuits opened by one client's six calls (a 4xx counted at once).
    const failures = () => [0, 1, 2, 3].map((i) => Object.values(provider(i).failures).reduce((a, b) => a + b, 0));
    const call = { jsonrpc: "2.0", id: 18, method: "eth_call", params: [{ to: DEV_ACCOUNT, data: "0x" }, "<script>"] };
    for (const node of nodes) await node.setFault({ kind: "status", status: 403, method: "eth_call" });
    const before = failures();
    for (let i = 0; i < 6; i++) expect((await router.post(CHAIN, call)).json()).toMatchObject({ id: 18, error: { code: -32050, message: expect.stringMatching(/HTTP 403/) } });
    expect(failures()).toEqual(before);
    expect(states()).toEqual(["healthy", "healthy", "healthy", "healthy"]);
    await healAll();
  });

  it("takes a call a hedge answered as at least as slow as it was out: a provider answering its probes but no client call loses its share", async () => {
    // The security review: such a provider kept the latency of its probes (about a millisecond)
    // and a full share, while every client call drawn to it waited for a hedge.
    const call = { jsonrpc: "2.0", id: 16, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] };
    for (let i = 0; i < 40; i++) await router.post(CHAIN, call); // the chain's latency quantile, which hedges wait for, is known
    await nodes[3].setFault({ kind: "hang", method: "eth_getBalance" });
    // Well past the few ms its probes alone keep it at: its latency factor drops from about 1 to under 2/3.
    for (let i = 0; i < 600 && !((provider(3).latencyMs ?? 0) > 50); i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 16, result: balance });
    expect(provider(3).latencyMs).toBeGreaterThan(50);
    expect(provider(3).failures.timeout ?? 0).toBe(0); // a hedge answered each: none waited out its timeout
    await healAll();
  });

  it("blames a provider whose result is of another type than the method's, and gives the client the true one", async () => {
    const filter = { fromBlock: "0x0", toBlock: "latest" };
    const logs = await direct(chain.rpcUrl, "eth_getLogs", [filter]);
    const cases = [
      { call: { jsonrpc: "2.0", id: 8, method: "eth_getLogs", params: [filter] }, wrong: "0xdeadbeef", truth: logs, why: /answered eth_getLogs with a string \(a list is due\)/ },
      { call: { jsonrpc: "2.0", id: 9, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] }, wrong: ["0x1"], truth: balance, why: /answered eth_getBalance with a list \(a string is due\)/ },
      { call: { jsonrpc: "2.0", id: 10, method: "eth_getBlockByNumber", params: ["0x0", false] }, wrong: 7, truth: await direct(chain.rpcUrl, "eth_getBlockByNumber", ["0x0", false]), why: /answered eth_getBlockByNumber with a number \(an object or null is due\)/ },
      // A string, but not a number (the hostile-provider fuzz: both reached viem).
      { call: { jsonrpc: "2.0", id: 12, method: "eth_getTransactionCount", params: [DEV_ACCOUNT, "latest"] }, wrong: "banana", truth: await direct(chain.rpcUrl, "eth_getTransactionCount", [DEV_ACCOUNT, "latest"]), why: /answered eth_getTransactionCount with "banana" \(a hex quantity is due\)/ },
      { call: { jsonrpc: "2.0", id: 13, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] }, wrong: "-0x5", truth: balance, why: /answered eth_getBalance with "-0x5" \(a hex quantity is due\)/ },
      // Bytes that are not hex (a re-probe of the security review: they reached clients).
      { call: { jsonrpc: "2.0", id: 11, method: "eth_call", params: [{ to: DEV_ACCOUNT, data: "0x" }, "latest"] }, wrong: "hello <b>x</b>", truth: "0x", why: /answered eth_call with "hello <b>x<\/b>" \(hex data is due\)/ },
      { call: { jsonrpc: "2.0", id: 14, method: "eth_getCode", params: [DEV_ACCOUNT, "latest"] }, wrong: "0xabc", truth: "0x", why: /answered eth_getCode with "0xabc" \(hex data is due\)/ },
    ];
    await expectBlamed("wrong_type", cases);
  });

  it("blames a provider whose answer contradicts the call (another block, a log outside the filter), and gives the client the true one", async () => {
    // The hostile-provider fuzz: answers of the right form but to another question (block 5 for
    // block 0, a log of another contract) reached the client.
    const anyWrongAnswer = () => router.status().chains[0].providers.reduce((sum, p) => sum + (p.failures.wrong_answer ?? 0), 0);
    const { raw } = await signTransfer();
    const hash = (await direct(chain.rpcUrl, "eth_sendRawTransaction", [raw])) as string; // not through the router: no write affinity
    const receipt = (await direct(chain.rpcUrl, "eth_getTransactionReceipt", [hash])) as { blockNumber: string; blockHash: string };
    const { blockNumber: block, blockHash } = receipt;
    await healAll(); // every provider known to hold the new block
    const mined = await direct(chain.rpcUrl, "eth_getBlockByNumber", [block, false]);
    const genesis = await direct(chain.rpcUrl, "eth_getBlockByNumber", ["0x0", false]);
    const log = { address: `0x${"11".repeat(20)}`, topics: [`0x${"22".repeat(32)}`], data: "0x", blockNumber: block, blockHash, transactionHash: hash, transactionIndex: "0x0", logIndex: "0x0", removed: false };
    const cases = [
      { call: { jsonrpc: "2.0", id: 20, method: "eth_getBlockByNumber", params: [block, false] }, wrong: genesis, truth: mined, why: /answered eth_getBlockByNumber with a block of number 0x0, not 0x[1-9a-f][0-9a-f]* as asked/ },
      { call: { jsonrpc: "2.0", id: 21, method: "eth_getBlockByHash", params: [blockHash, false] }, wrong: genesis, truth: mined, why: /answered eth_getBlockByHash with a block of hash 0x[0-9a-f]{64}, not 0x[0-9a-f]{64} as asked/ },
      { call: { jsonrpc: "2.0", id: 22, method: "eth_getTransactionReceipt", params: [hash] }, wrong: { ...receipt, transactionHash: `0x${"33".repeat(32)}` }, truth: receipt, why: /answered eth_getTransactionReceipt with a receipt of transactionHash 0x3333/ },
      { call: { jsonrpc: "2.0", id: 23, method: "eth_getLogs", params: [{ fromBlock: "0x0", toBlock: "0x0" }] }, wrong: [log], truth: [], why: /answered eth_getLogs with a log of block \d+, outside blocks 0 to 0 asked/ },
      { call: { jsonrpc: "2.0", id: 24, method: "eth_getLogs", params: [{ blockHash, address: `0x${"44".repeat(20)}` }] }, wrong: [log], truth: [], why: /answered eth_getLogs with a log of address 0x1111.*, not one asked for/ },
      { call: { jsonrpc: "2.0", id: 25, method: "eth_getLogs", params: [{ fromBlock: block, toBlock: block, topics: [`0x${"55".repeat(32)}`] }] }, wrong: [log], truth: [], why: /answered eth_getLogs with a log whose topic 0 is 0x2222.*, not one asked for/ },
      { call: { jsonrpc: "2.0", id: 28, method: "eth_getLogs", params: [{ blockHash }] }, wrong: [log, log], truth: [], why: /answered eth_getLogs with log 0x0 of transaction 0x[0-9a-f]{64} twice/ },
    ];
    await expectBlamed("wrong_answer", cases);
    // A node's true answers to every call the router compares pass, from every provider.
    const before = anyWrongAnswer();
    const honest: [string, unknown[]][] = [
      ["eth_getTransactionByHash", [hash]],
      ["eth_getTransactionByBlockNumberAndIndex", [block, "0x0"]],
      ["eth_getTransactionByBlockHashAndIndex", [blockHash, "0x0"]],
      ["eth_getBlockByNumber", ["earliest", true]],
      ["eth_getLogs", [{ blockHash, address: [DEV_ACCOUNT], topics: [null, [`0x${"66".repeat(32)}`]] }]],
    ];
    for (const [method, params] of honest) {
      const truth = await direct(chain.rpcUrl, method, params);
      for (let i = 0; i < 8; i++) expect((await router.post(CHAIN, { jsonrpc: "2.0", id: i, method, params })).json()).toEqual({ jsonrpc: "2.0", id: i, result: truth });
    }
    expect(anyWrongAnswer()).toBe(before);
  });

  it("takes a null balance as a node without that block's state (Besu's answer): asks another provider, blames none", async () => {
    await nodes[3].setFault({ kind: "result", method: "eth_getBalance", result: null });
    const failures = () => Object.values(provider(3).failures).reduce((a, b) => a + b, 0);
    const before = failures();
    const asked = () => clientCalls(nodes[3]);
    const askedBefore = asked();
    const call = { jsonrpc: "2.0", id: 11, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] };
    for (let i = 0; i < 100 && asked() < askedBefore + 3; i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 11, result: balance });
    expect(asked()).toBeGreaterThanOrEqual(askedBefore + 3);
    expect(failures()).toBe(before);
    // Every provider without it: the client hears null, as from one node.
    for (const node of nodes) await node.setFault({ kind: "result", method: "eth_getBalance", result: null });
    expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 11, result: null });
    await healAll();
  });

  it("sends a call naming a block only to providers known to hold it: one a few blocks behind, still eligible, never answers it null", async () => {
    await nodes[3].setFault({ kind: "behind" }); // its chain ends at the head now
    await direct(chain.rpcUrl, "hardhat_mine", ["0x2"]);
    const head = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
    await waitFor(() => [0, 1, 2].every((i) => provider(i).head === head) && provider(3).head === head - 2, "the new heads probed");
    expect(states()).toEqual(["healthy", "healthy", "healthy", "healthy"]); // two behind: within maxLagBlocks
    const behindCalls = () => nodes[3].stats().byMethod.eth_getBlockByNumber ?? 0;
    const before = behindCalls();
    const byNumber = (n: number, id: number) => ({ jsonrpc: "2.0", id, method: "eth_getBlockByNumber", params: [`0x${n.toString(16)}`, false] });
    for (let i = 0; i < 40; i++) {
      const answer = (await router.post(CHAIN, byNumber(head, i))).json() as { result: { number: string } | null };
      expect(answer.result?.number).toBe(`0x${head.toString(16)}`);
    }
    expect(behindCalls()).toBe(before);
    // A block it holds is drawn among all: it keeps its share of those.
    for (let i = 0; i < 60 && behindCalls() === before; i++) await router.post(CHAIN, byNumber(head - 2, i));
    expect(behindCalls()).toBeGreaterThan(before);
    await healAll();
  });

  it("never takes a client back in time: once shown a block, its reads of the latest state go to providers known to hold it", async () => {
    await nodes[3].setFault({ kind: "behind" }); // one block behind from here: still eligible
    await direct(chain.rpcUrl, "hardhat_mine", ["0x1"]);
    const head = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
    // Probed, and in the median: a client's block rises only as far as another provider is known to hold it.
    const median = () => router.status().chains[0].medianHead;
    await waitFor(() => [0, 1, 2].every((i) => provider(i).head === head) && provider(3).head === head - 1 && median() === head, "the new heads probed");
    expect(states()).toEqual(["healthy", "healthy", "healthy", "healthy"]);
    const blockNumber = (id: number) => ({ jsonrpc: "2.0", id, method: "eth_blockNumber", params: [] });
    // The client is shown the head, by a provider that has it (node 3 would answer head - 1).
    const height = async () => Number(((await router.post(CHAIN, blockNumber(0))).json() as { result: string }).result);
    await waitFor(async () => (await height()) === head, "the client shown the head");
    const behindCalls = () => clientCalls(nodes[3]); // its eth_getBalance calls (probes ask only heights and chain ids)
    /** 30 heights and 30 balances at "latest": the heights shown, and who answered. */
    const latestReads = async () => {
      const shown: number[] = [];
      const answeredBy: string[] = [];
      for (let i = 0; i < 30; i++) {
        const heightAnswer = await router.post(CHAIN, blockNumber(i));
        shown.push(Number((heightAnswer.json() as { result: string }).result));
        answeredBy.push(heightAnswer.headers.get("x-din-provider")!);
        const balanceAnswer = await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] });
        answeredBy.push(balanceAnswer.headers.get("x-din-provider")!);
      }
      return { shown, answeredBy };
    };
    let before = behindCalls();
    const reads = await latestReads();
    expect(Math.min(...reads.shown)).toBe(head);
    expect(reads.answeredBy).not.toContain(providerAddress(3));
    expect(behindCalls()).toBe(before);

    // A receipt shows its block too. Node 3 now holds the head the client saw; a transaction makes the next block.
    await nodes[3].setFault({ kind: "behind", head });
    const { hash } = await sendTransaction();
    await waitFor(() => [0, 1, 2].every((i) => provider(i).head === head + 1) && provider(3).head === head && median() === head + 1, "the transaction's block probed");
    const receipt = (await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_getTransactionReceipt", params: [hash] })).json() as { result: { blockNumber: string } };
    expect(Number(receipt.result.blockNumber)).toBe(head + 1);
    before = behindCalls();
    for (let i = 0; i < 30; i++) {
      const balanceAnswer = await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] });
      expect(balanceAnswer.headers.get("x-din-provider")).not.toBe(providerAddress(3));
    }
    expect(behindCalls()).toBe(before);
    await healAll();
  });

  it("never gives a client a height below the block it was shown: a provider whose eth_blockNumber is stuck while its blocks go on is asked past", async () => {
    // Two providers probed once: a new block's holder is known only from answers. Node 1's heights
    // stay where each round starts (behind a load balancer, one node stalled); its blocks go on.
    const two = await startRouter({ records: recordsFor(nodes.slice(0, 2), CHAIN, [1_000, 1_000]), routing: { probe: { intervalMs: 600_000, chainIdIntervalMs: 600_000 } } });
    try {
      await waitFor(() => two.status().chains[0].eligibleProviders === 2 && two.status().chains[0].medianHead !== null, "both providers probed once");
      const given: [number, number][] = [];
      for (let round = 0; round < 16; round++) {
        const head = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
        await nodes[1].setFault({ kind: "staleHead", head });
        await direct(chain.rpcUrl, "hardhat_mine", ["0x1"]);
        // The client is shown the new block (either provider has it), then asks the height.
        const latest = (await two.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_getBlockByNumber", params: ["latest", false] })).json() as { result: { number: string } };
        expect(Number(latest.result.number)).toBe(head + 1);
        const height = (await two.post(CHAIN, { jsonrpc: "2.0", id: 2, method: "eth_blockNumber", params: [] })).json() as { id: number; result: string };
        expect(height.id).toBe(2);
        given.push([head + 1, Number(height.result)]);
      }
      // Node 1 may be drawn first in any round: no provider is known to hold the new block.
      expect(given.filter(([shown, height]) => height < shown)).toEqual([]);
    } finally {
      await two.stop();
      await healAll();
    }
  });

  it("keeps a client's block when the one provider known to hold it fails a call, and the other answers below it", async () => {
    // Review 22: a version that brought the client's block down whenever no provider asked showed
    // it took a client back a block on one HTTP 429, and its latest reads with it.
    const two = await startRouter({ records: recordsFor(nodes.slice(0, 2), CHAIN, [1_000, 1_000]) });
    try {
      await nodes[1].setFault({ kind: "behind" });
      await direct(chain.rpcUrl, "hardhat_mine", ["0x1"]);
      const head = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
      await waitFor(() => two.status().chains[0].providers.map((p) => p.head).join() === `${head},${head - 1}`, "node 0 at the head, node 1 a block behind");
      const height = async () => Number(((await two.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] })).json() as { result: string }).result);
      await waitFor(async () => (await height()) === head, "the client shown the head");
      await nodes[0].setFault({ kind: "status", status: 429, method: "eth_blockNumber" });
      expect(await height()).toBe(head);
    } finally {
      await two.stop();
      await healAll();
    }
  });

  it("makes up no height: once a provider lied a client's block ahead, the client gets the real head, not the lie", async () => {
    // Review 21: a version that gave a client its block again when every provider answered below
    // it handed out a lie's height (50 ahead, within what two providers can tell) for a minute.
    const two = await startRouter({ records: recordsFor(nodes.slice(0, 2), CHAIN, [1_000, 1_000]), routing: { probe: { intervalMs: 200 } } });
    try {
      await waitFor(() => two.status().chains[0].eligibleProviders === 2, "both providers eligible");
      const head = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
      const height = async () => Number(((await two.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] })).json() as { result: string }).result);
      await nodes[1].setFault({ kind: "result", method: "eth_blockNumber", result: `0x${(head + 50).toString(16)}` });
      let lied = false;
      for (let i = 0; i < 40 && !lied; i++) lied = (await height()) === head + 50;
      expect(lied).toBe(true);
      await nodes[1].setFault({ kind: "none" });
      const above: [number, number][] = [];
      for (let i = 0; i < 10; i++) {
        const given = await height();
        const real = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
        if (given > real) above.push([given, real]);
      }
      expect(above).toEqual([]);
    } finally {
      await two.stop();
      await healAll();
    }
  });

  it("lets no provider alone draw a client's latest reads to itself by naming a height only it claims", async () => {
    const head = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
    await nodes[3].setFault({ kind: "staleHead", head: head + 3 }); // within what the table believes of one provider
    await waitFor(() => provider(3).head === head + 3, "node 3's claim probed");
    const blockNumber = { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] };
    for (let i = 0; i < 60 && (await router.post(CHAIN, blockNumber)).headers.get("x-din-provider") !== providerAddress(3); i++);
    const answeredBy = new Set<string>();
    for (let i = 0; i < 40; i++) answeredBy.add((await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] })).headers.get("x-din-provider")!);
    expect(answeredBy.size).toBeGreaterThan(1);
    await healAll();
  });

  it("asks past a provider behind the others that answers a block newer than the probes with null, while no provider is known to hold it", async () => {
    // A dapp walkthrough: right after a receipt in block N, a provider a few blocks behind answered
    // eth_getBlockByNumber(N) with null and eth_getLogs for N with no logs.
    await nodes[3].setFault({ kind: "behind" }); // its chain ends here, two blocks behind the others once probed
    await direct(chain.rpcUrl, "hardhat_mine", ["0x2"]);
    const unprobed = await startRouter({
      records: recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]),
      routing: { probe: { intervalMs: 600_000, chainIdIntervalMs: 600_000 } },
    });
    try {
      await waitFor(() => unprobed.status().chains[0].eligibleProviders === 4 && unprobed.status().chains[0].medianHead !== null, "every provider probed once");
      const heads = unprobed.status().chains[0].providers.map((p) => p.head!);
      expect(heads[3]).toBeLessThan(Math.min(...heads.slice(0, 3))); // behind, still eligible
      // A block with one log: init code that emits LOG1(topic 0xbeef) and deploys nothing.
      const hash = await direct(chain.rpcUrl, "eth_sendTransaction", [{ from: hardhatAccount19, data: "0x61beef60006000a100" }]); // not DEV_ACCOUNT: its balance is asserted elsewhere
      await waitFor(async () => (await direct(chain.rpcUrl, "eth_getTransactionReceipt", [hash])) !== null, "the transaction mined");
      const { blockNumber: number } = (await direct(chain.rpcUrl, "eth_getTransactionReceipt", [hash])) as { blockNumber: string };
      const behindCalls = () => nodes[3].stats().byMethod.eth_getBlockByNumber ?? 0;
      const before = behindCalls();
      const missing: number[] = [];
      // 30 calls at least, and on until it was drawn: its share, cut for its lag, left it undrawn in
      // 30 calls once in a whole run of the router's suite (13:39 UTC, 2026-12-06).
      for (let i = 0; i < 30 || (behindCalls() === before && i < 300); i++) {
        const answer = (await unprobed.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getBlockByNumber", params: [number, false] })).json() as { result: { number: string } | null };
        if (answer.result?.number !== number) missing.push(i);
      }
      expect(behindCalls()).toBeGreaterThan(before); // it was drawn (no provider is known to hold the block)
      expect(missing).toEqual([]);
      const logCounts: number[] = [];
      for (let i = 0; i < 30; i++) {
        const logs = (await unprobed.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getLogs", params: [{ fromBlock: number, toBlock: number }] })).json() as { result: unknown[] };
        logCounts.push(logs.result.length);
      }
      expect(logCounts.filter((n) => n !== 1)).toEqual([]);
      // No log there at all: every provider says so, and that is given.
      const none = (await unprobed.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_getLogs", params: [{ fromBlock: number, toBlock: number, topics: ["0x" + "ab".repeat(32)] }] })).json() as { result: unknown[] };
      expect(none.result).toEqual([]);
    } finally {
      await unprobed.stop();
      await healAll();
    }
  });

  it("asks one provider a poll of logs from past the head, the providers level (no attempt for each)", async () => {
    // A poller asking from the next block on gets no logs from every provider: a version that asked
    // past any provider not known to hold the block spent four attempts on each such poll.
    const head = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
    await waitFor(() => router.status().chains[0].providers.every((p) => p.head === head && p.state === "healthy"), "every provider probed at the head");
    const attempts: string[] = [];
    for (let i = 0; i < 10; i++) {
      const poll = await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getLogs", params: [{ fromBlock: `0x${(head + 1).toString(16)}`, toBlock: "latest" }] });
      expect((poll.json() as { result: unknown[] }).result).toEqual([]);
      attempts.push(poll.headers.get("x-din-attempts")!);
    }
    expect(attempts.filter((a) => a !== "1")).toEqual([]);
  });

  it("learns from its answer to a client's eth_blockNumber that a provider holds a new block, between probes", async () => {
    await nodes[3].setFault({ kind: "behind" });
    // Probes only at start: every head the router knows then is the same, node 3's too.
    const unprobed = await startRouter({
      records: recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]),
      routing: { probe: { intervalMs: 600_000, chainIdIntervalMs: 600_000 } },
    });
    try {
      await waitFor(() => unprobed.status().chains[0].eligibleProviders === 4 && unprobed.status().chains[0].medianHead !== null, "every provider probed once");
      await direct(chain.rpcUrl, "hardhat_mine", ["0x1"]);
      const head = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
      // A client reads the head: node 3 says the old one, the others the new one.
      let seen = 0;
      for (let i = 0; i < 50 && seen !== head; i++) {
        seen = Number(((await unprobed.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] })).json() as { result: string }).result);
      }
      expect(seen).toBe(head);
      const behindCalls = () => nodes[3].stats().byMethod.eth_getBlockByNumber ?? 0;
      const before = behindCalls();
      const number = `0x${head.toString(16)}`;
      for (let i = 0; i < 30; i++) {
        const answer = (await unprobed.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getBlockByNumber", params: [number, false] })).json() as { result: { number: string } | null };
        expect(answer.result?.number).toBe(number);
      }
      expect(behindCalls()).toBe(before);
      expect(unprobed.status().chains[0].providers.every((p) => p.head === head - 1)).toBe(true); // no probe told it
      // A slow holder is hedged among holders only: node 3 would answer null at once.
      const hedges = () => Number(/din_router_hedges_total (\d+)/.exec(unprobed.metrics())![1]);
      for (const i of [0, 1, 2]) nodes[i].setLatency(400); // past the hedge delay (200 ms), within the attempt timeout
      for (let i = 0; i < 4; i++) {
        const answer = (await unprobed.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getBlockByNumber", params: [number, false] })).json() as { result: { number: string } | null };
        expect(answer.result?.number).toBe(number);
      }
      expect(behindCalls()).toBe(before);
      expect(hedges()).toBeLessThanOrEqual(4); // at most one per call (another holder, if one is known)
    } finally {
      await unprobed.stop();
      await healAll();
    }
  });

  it("asks the provider that took a client's transaction about it first: nonce, transaction and receipt, where another may not know it yet", async () => {
    const { account, nonce, hash, took } = await sendTransaction();
    // The others have not seen it yet: the old nonce, no such transaction, no receipt.
    const others = [0, 1, 2, 3].filter((i) => i !== took);
    const old = `0x${nonce.toString(16)}`;
    for (const i of others) await nodes[i].setFault({ kind: "result", method: "eth_getTransactionCount", result: old });
    for (let i = 0; i < 20; i++) {
      const answer = (await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getTransactionCount", params: [account.address, "pending"] })).json();
      expect(answer).toEqual({ jsonrpc: "2.0", id: i, result: `0x${(nonce + 1).toString(16)}` });
    }
    for (const method of ["eth_getTransactionByHash", "eth_getTransactionReceipt"]) {
      for (const i of others) await nodes[i].setFault({ kind: "result", method, result: null });
      for (let i = 0; i < 10; i++) {
        const answer = (await router.post(CHAIN, { jsonrpc: "2.0", id: i, method, params: [hash] })).json() as { result: { hash?: string; transactionHash?: string } | null };
        expect(answer.result?.hash ?? answer.result?.transactionHash, method).toBe(hash);
      }
    }
    // Gone from the set (jailed, say), it is asked nothing more.
    const tookCalls = () => nodes[took].stats().byMethod.eth_getTransactionCount ?? 0;
    const askedBefore = tookCalls();
    router.setProviders(recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]).filter((_, i) => i !== took));
    await waitFor(() => router.status().chains[0].providers.length === 3, "the provider gone from the set");
    for (let i = 0; i < 10; i++) await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getTransactionCount", params: [account.address, "pending"] });
    expect(tookCalls()).toBe(askedBefore);
    router.setProviders(recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]));
    // Other calls are drawn by weight as ever: the others still get their share, once probes have
    // shown them at the block the receipt showed the client (its latest reads go to providers
    // known to hold it: on a slow machine a probe may not have told yet).
    const head = Number(await direct(chain.rpcUrl, "eth_blockNumber", []));
    await waitFor(() => router.status().chains[0].providers.every((p) => (p.head ?? -1) >= head), "every provider known to hold the client's block");
    for (const node of nodes) node.resetStats();
    await hammer(router, CHAIN, 40, 4, balance);
    expect(others.every((i) => clientCalls(nodes[i]) > 0)).toBe(true);
    await healAll();
  });

  it("asks the provider that took a client's transaction for its nonce at latest only while it holds the newest block the client was shown", async () => {
    // A browser walkthrough: the provider that took the transaction fell a block behind and
    // answered the nonce of before it. At "latest" the client's newest block comes first.
    const { account, nonce, hash, took } = await sendTransaction();
    const block = Number(((await direct(chain.rpcUrl, "eth_getTransactionReceipt", [hash])) as { blockNumber: string }).blockNumber);
    await nodes[took].setFault({ kind: "behind", head: block - 1 });
    const heads = () => router.status().chains[0].providers.map((p) => p.head);
    await waitFor(() => heads().every((h, i) => h === (i === took ? block - 1 : block)), `node ${took} a block behind the others`);
    // The client is shown the block its transaction is in.
    let seen = 0;
    for (let i = 0; i < 50 && seen !== block; i++) seen = Number(((await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] })).json() as { result: string }).result);
    expect(seen).toBe(block);
    for (let i = 0; i < 10; i++) {
      const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getTransactionCount", params: [account.address, "latest"] });
      expect(answer.json()).toEqual({ jsonrpc: "2.0", id: i, result: `0x${(nonce + 1).toString(16)}` });
      expect(answer.headers.get("x-din-provider")).not.toBe(providerAddress(took));
    }
    await healAll();
  });

  it("asks the provider that took a client's transaction for its nonce at pending though it is a block behind: it counts the transaction, the others may not", async () => {
    // A review: the rule above, applied at "pending" too, sent the nonce to providers at the head
    // that had not seen the transaction (the old nonce: "nonce too low" next).
    const own = await startFaultyUpstreams(chain.rpcUrl, 3);
    const single = await startRouter({ records: recordsFor(own, CHAIN, [1_000, 1_000, 1_000]), routing: { failover: { writeFanout: 1 } } });
    try {
      const head0 = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
      await waitFor(() => single.status().chains[0].providers.every((p) => p.state === "healthy" && (p.head ?? -1) >= head0), "every provider healthy at the head");
      const { account, nonce, raw } = await signTransfer();
      const sent = await single.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] });
      const took = own.findIndex((_, i) => providerAddress(i) === sent.headers.get("x-din-provider"));
      const n = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
      // The one that took it is a block behind (head n); the others are at n + 1 and never saw it.
      await own[took].setFault({ kind: "result", method: "eth_blockNumber", result: `0x${n.toString(16)}` });
      for (const i of [0, 1, 2].filter((i) => i !== took)) await own[i].setFault({ kind: "result", method: "eth_getTransactionCount", result: `0x${nonce.toString(16)}` });
      await direct(chain.rpcUrl, "evm_mine");
      const heads = () => single.status().chains[0].providers.map((p) => p.head);
      await waitFor(() => heads().every((h, i) => h === (i === took ? n : n + 1)), `provider ${took} a block behind`);
      let seen = 0;
      for (let i = 0; i < 50 && seen !== n + 1; i++) seen = Number(((await single.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] })).json() as { result: string }).result);
      expect(seen).toBe(n + 1);
      for (let i = 0; i < 10; i++) {
        const answer = await single.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getTransactionCount", params: [account.address, "pending"] });
        expect(answer.json()).toEqual({ jsonrpc: "2.0", id: i, result: `0x${(nonce + 1).toString(16)}` });
      }
    } finally {
      await single.stop();
      for (const node of own) await node.stop();
    }
  });

  it("hedges a receipt that the provider which took the transaction is slow to give to the others, who know it once mined", async () => {
    // Last stop's soak: the provider that took the transactions hung, and the first receipts asked
    // of it waited for its attempt timeout (5 s) while the others had them. Providers and a router
    // of its own (one copy of each broadcast, so that one provider took it): this suite's router
    // would see one of its providers slow.
    const own = await startFaultyUpstreams(chain.rpcUrl, 3);
    const single = await startRouter({ records: recordsFor(own, CHAIN, [1_000, 1_000, 1_000]), routing: { failover: { writeFanout: 1 } } });
    try {
      await waitFor(() => single.status().chains[0].providers.every((p) => p.state === "healthy"), "every provider healthy");
      await hammer(single, CHAIN, 40, 4, balance); // the chain's latency quantile (hedges wait for 32 answers)
      const { raw } = await signTransfer();
      const sent = await single.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] });
      const hash = (sent.json() as { result: string }).result;
      const took = own.findIndex((_, i) => providerAddress(i) === sent.headers.get("x-din-provider"));
      const hedges = () => Number(/^din_router_hedges_total (\d+)$/m.exec(single.metrics())![1]);
      const before = hedges();
      own[took].setLatency(1_200); // slow, within the attempt timeout (1.5 s here)
      const answer = await single.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_getTransactionReceipt", params: [hash] });
      expect((answer.json() as { result: { transactionHash: string } | null }).result?.transactionHash).toBe(hash);
      expect(answer.headers.get("x-din-provider")).not.toBe(providerAddress(took));
      expect(hedges()).toBe(before + 1);
    } finally {
      await single.stop();
      for (const node of own) await node.stop();
    }
  });

  it("takes a null about a client's transaction from a provider that did not take it as not knowing yet: asks another", async () => {
    const { hash, took } = await sendTransaction();
    // The one that took it cannot say now (an error another provider might not give), two others
    // have not seen it, one has: the receipt comes from that one, never a null from the two.
    const [knows, ...notYet] = [0, 1, 2, 3].filter((i) => i !== took);
    await nodes[took].setFault({ kind: "rpcError", code: -32000, message: "node not synced", method: "eth_getTransactionReceipt" });
    for (const i of notYet) await nodes[i].setFault({ kind: "result", method: "eth_getTransactionReceipt", result: null });
    for (let i = 0; i < 10; i++) {
      const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getTransactionReceipt", params: [hash] });
      expect((answer.json() as { result: { transactionHash: string } | null }).result?.transactionHash).toBe(hash);
      expect(answer.headers.get("x-din-provider")).toBe(providerAddress(knows));
    }
    await healAll();
  });

  /** Node 3 answers eth_getLogs with `fault`: clients get the true logs, and node 3 is blamed (too_large) once another answers. */
  async function refusedReplyOfNode3(fault: Fault, why: RegExp) {
    await nodes[3].setFault(fault);
    const tooLarge = () => provider(3).failures.too_large ?? 0;
    const before = tooLarge();
    const filter = { fromBlock: "0x0", toBlock: "latest" };
    const logs = await direct(chain.rpcUrl, "eth_getLogs", [filter]);
    const call = { jsonrpc: "2.0", id: 4, method: "eth_getLogs", params: [filter] };
    for (let i = 0; i < 100 && tooLarge() === before; i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 4, result: logs });
    expect(tooLarge()).toBe(before + 1);
    expect(provider(3).lastFailure).toMatch(why);
    return call;
  }

  it("does not parse a reply of too many objects and arrays, and blames its provider once another answers the call", async () => {
    // 983,040 bytes of `[{},{},…]`: 327,680 empty objects, within this router's 1 MiB cap, and no real list of logs.
    const dense: Fault = { kind: "oversized", bytes: 15 * 65_535, method: "eth_getLogs", dense: true };
    await refusedReplyOfNode3(dense, /the reply holds more than 262,144 objects and arrays or 2,097,152 values \(too costly to check\)/);
    await healAll();
  });

  it("does not pass on a reply that took too long to parse, and blames its provider once another answers the call", async () => {
    // The hostile-provider fuzz: 15 MiB of keys never repeated took 1.3–2.2 s to check, the router
    // stalled meanwhile, and the reply reached the client. Here 5.8 MiB of them: 16,000 objects of
    // 32 keys (0.7–1 s to parse here; real logs take about 5 ms a MiB, and the bound is 174 ms).
    const costly = Array.from({ length: 16_000 }, (_, i) => Object.fromEntries(Array.from({ length: 32 }, (_, k) => [`k${i * 32 + k}`, 0])));
    const roomy = await startRouter({ records: recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]), routing: { limits: { maxResponseBytes: 8 * 1024 * 1024 } } });
    try {
      await waitFor(() => roomy.status().chains[0].eligibleProviders === 4, "every provider eligible");
      await nodes[3].setFault({ kind: "result", method: "eth_getLogs", result: costly });
      const node3 = () => roomy.status().chains[0].providers.find((p) => p.address === providerAddress(3))!;
      const filter = { fromBlock: "0x0", toBlock: "latest" };
      const logs = await direct(chain.rpcUrl, "eth_getLogs", [filter]);
      const call = { jsonrpc: "2.0", id: 4, method: "eth_getLogs", params: [filter] };
      for (let i = 0; i < 100 && (node3().failures.too_large ?? 0) === 0; i++) expect((await roomy.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 4, result: logs });
      expect(node3().failures.too_large).toBe(1);
      expect(node3().lastFailure).toMatch(/the reply took \d+ ms of CPU to parse \(5\.\d MiB\): too costly to check/);
    } finally {
      await roomy.stop();
    }
    await healAll();
  });

  it("does not pass on a reply nested deeper than 512 levels, and a filter's call on such replies still ends", async () => {
    // 600 levels: a list, as eth_getLogs's result is, and nothing a real answer comes near.
    const call = await refusedReplyOfNode3({ kind: "deep", levels: 600, method: "eth_getLogs" }, /the reply nests deeper than 512 levels/);

    // From every provider, and deeper than JSON.stringify goes (which a filter's answer passes through).
    for (const node of nodes) await node.setFault({ kind: "deep", levels: 20_000, method: "eth_getLogs" });
    const installed = (await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_newFilter", params: [{ fromBlock: "0x0" }] })).json() as { result: string };
    const filterLogs = await router.post(CHAIN, { jsonrpc: "2.0", id: 2, method: "eth_getFilterLogs", params: [installed.result] });
    expect(filterLogs.json()).toMatchObject({ id: 2, error: { code: -32050 } });
    expect((await router.post(CHAIN, call)).json()).toMatchObject({ id: 4, error: { code: -32050, message: expect.stringMatching(/nests deeper than 512 levels/) } });
    // Anywhere in the reply: its bytes go to the client whole.
    for (const node of nodes) await node.setFault({ kind: "deep", levels: 600, method: "eth_getLogs", beside: true });
    expect((await router.post(CHAIN, call)).json()).toMatchObject({ id: 4, error: { code: -32050, message: expect.stringMatching(/nests deeper than 512 levels/) } });
    await healAll();
  });

  it("takes a node's answer with id null (a call it could not read) as maybe the call's fault: no circuit opens, and retries are counted", async () => {
    const failures = () => [0, 1, 2, 3].map((i) => Object.values(provider(i).failures).reduce((a, b) => a + b, 0));
    const unreadable: Fault = { kind: "rpcError", code: -32600, message: "Invalid request", method: "eth_getBalance", nullId: true };
    for (const node of nodes) await node.setFault(unreadable);
    const before = failures();
    const call = { jsonrpc: "2.0", id: 3, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] };
    for (let i = 0; i < 6; i++) {
      const answer = await router.post(CHAIN, call);
      expect(answer.json()).toMatchObject({ id: 3, error: { code: -32050, message: expect.stringMatching(/^all 4 attempts failed \(last: .*could not read the call: -32600 Invalid request\)$/) } });
      expect(answer.headers.get("x-din-attempts")).toBe("4");
    }
    expect(failures()).toEqual(before);
    expect(states()).toEqual(["healthy", "healthy", "healthy", "healthy"]);
    // One node alone answers so: the others read the same call, so that node is to blame.
    for (const i of [0, 1, 2]) await nodes[i].setFault({ kind: "none" });
    const faults = () => provider(3).failures.rpc_fault ?? 0;
    const faultsBefore = faults();
    for (let i = 0; i < 100 && faults() === faultsBefore; i++) expect((await router.post(CHAIN, call)).json()).toEqual({ jsonrpc: "2.0", id: 3, result: balance });
    expect(faults()).toBe(faultsBefore + 1);
    await healAll();
  });

  it("refuses params given by name before any provider sees them (a node answers them with id null)", async () => {
    const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: 9, method: "net_listening", params: {} });
    expect(answer.json()).toEqual({ jsonrpc: "2.0", id: 9, error: { code: -32602, message: 'invalid params: Ethereum methods take their params as a list, such as ["0x…", "latest"], not by name' } });
    expect(answer.headers.get("x-din-attempts")).toBe("0");
    expect(nodes.map((node) => node.stats().byMethod.net_listening ?? 0)).toEqual([0, 0, 0, 0]);
  });

  it("takes \"params\": null as no params, as geth and Hardhat do (old geth clients sent it)", async () => {
    const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: 10, method: "eth_blockNumber", params: null });
    expect(answer.json()).toEqual({ jsonrpc: "2.0", id: 10, result: await direct(chain.rpcUrl, "eth_blockNumber") });
    const batch = await router.post(CHAIN, [{ jsonrpc: "2.0", id: 11, method: "eth_chainId", params: null }]);
    expect(batch.json()).toEqual([{ jsonrpc: "2.0", id: 11, result: "0x7a69" }]);
  });

  it("answers -32051 when no provider answers within the call's deadline", async () => {
    const brief = await startRouter({
      records: recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]),
      routing: { failover: { attemptTimeoutMs: 300, deadlineMs: 700, hedge: false }, probe: { timeoutMs: 2_000, intervalMs: 60_000 } },
    });
    try {
      await waitFor(() => brief.status().chains[0].eligibleProviders === 4, "four eligible providers");
      for (const node of nodes) await node.setFault({ kind: "hang" });
      const answer = await brief.post(CHAIN, { jsonrpc: "2.0", id: 8, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] });
      const body = answer.json() as { id: number; error: { code: number; message: string } };
      expect(body.id).toBe(8);
      expect(body.error.code).toBe(-32051);
      // The last attempt has what is left of the 700 ms; if its new connection took a moment, the
      // deadline cuts it before it had all of that, and it is not held against its provider.
      expect(body.error.message).toMatch(
        /^no provider answered within 700 ms \(\d attempts; last: 0x[0-9a-fA-F]{40}: (no complete answer within \d+ ms|waited for a connection to it \(the router's 64 were busy or connecting\))\)$/,
      );
      expect(answer.headers.get("x-din-provider")).toBe("none");
    } finally {
      await brief.stop();
      await healAll();
    }
  });

  it("cuts a provider trickling its answer by the attempt timeout, also once nobody needs the answer", async () => {
    // One provider that sends a byte every 100 ms and never the answer: undici's body timeout
    // restarts with each byte, so only the attempt timeout (1 s) can end the request.
    const brief = await startRouter({
      records: recordsFor(nodes.slice(1, 2), CHAIN, [1_000]),
      routing: { failover: { attemptTimeoutMs: 1_000, deadlineMs: 1_000, hedge: false }, probe: { intervalMs: 60_000 } },
    });
    const inFlight = () => brief.status().chains[0].providers[0].inFlight;
    const call = { jsonrpc: "2.0", id: 9, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] };
    try {
      await waitFor(() => brief.status().chains[0].eligibleProviders === 1, "the provider eligible");
      await nodes[1].setFault({ kind: "trickle", everyMs: 100 });
      // The call's deadline comes a moment before the attempt's (sent a moment after the call
      // began): the client hears -32051, and the request is cut at its own timeout.
      expect((await brief.post(CHAIN, call)).json()).toMatchObject({ id: 9, error: { code: -32051 } });
      await waitFor(() => inFlight() === 0, "the trickling request cut", 5_000);
      // The client leaves before the deadline: the request runs on unused, and is cut the same way.
      const left = await fetch(brief.rpcUrl(CHAIN), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(call), signal: AbortSignal.timeout(200) }).catch(
        (error: Error) => error.name,
      );
      expect(left).toBe("TimeoutError");
      await waitFor(() => inFlight() === 1, "the request still out once its client left", 5_000);
      await waitFor(() => inFlight() === 0, "the trickling request cut once its client left", 5_000);
    } finally {
      await brief.stop();
      await healAll();
    }
  });

  it("puts together an answer its provider sends a byte at a time", async () => {
    const brief = await startRouter({ records: recordsFor(nodes.slice(1, 2), CHAIN, [1_000]), routing: { failover: { hedge: false } } });
    try {
      await waitFor(() => brief.status().chains[0].eligibleProviders === 1, "the provider eligible");
      await nodes[1].setFault({ kind: "dribble" });
      const block = await direct(chain.rpcUrl, "eth_getBlockByNumber", ["0x0", true]);
      expect((await brief.post(CHAIN, { jsonrpc: "2.0", id: 10, method: "eth_getBlockByNumber", params: ["0x0", true] })).json()).toEqual({ jsonrpc: "2.0", id: 10, result: block });
      expect((await brief.post(CHAIN, { jsonrpc: "2.0", id: 11, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] })).json()).toEqual({ jsonrpc: "2.0", id: 11, result: balance });
    } finally {
      await brief.stop();
      await healAll();
    }
  });

  it("hedges a slow read on another provider instead of waiting for it", async () => {
    for (const i of [1, 2, 3]) nodes[i].setLatency(600); // slow, but within the attempt and probe timeouts
    const hedges = () => Number(/din_router_hedges_total (\d+)/.exec(router.metrics())![1]);
    const timeouts = () => [1, 2, 3].map((i) => provider(i).failures.timeout ?? 0);
    const before = hedges();
    const timeoutsBefore = timeouts();
    const result = await hammer(router, CHAIN, 60, 6, balance);
    expect(result.failures).toEqual([]);
    expect(hedges()).toBeGreaterThan(before);
    // A hedge that lost was cancelled, not counted as the slow provider's timeout.
    expect(timeouts()).toEqual(timeoutsBefore);
    await healAll();
  });
});

describe("a burst larger than the router's connections to its providers", () => {
  // Two connections per provider and providers that take 150 ms: most of a burst waits in the
  // router's own queue. That wait is the router's: it must neither time out there nor count
  // against healthy providers (it once did, and a burst opened the circuits of every provider).
  /** Runs `story` with a router over nodes 0 and 1 (with `stakes`), each node taking `latencyMs` a call. */
  async function withBusyRouter(
    stakes: number[],
    latencyMs: number,
    failover: RoutingOverrides["failover"],
    story: (busy: TestRouter) => Promise<void>,
  ): Promise<void> {
    const busy = await startRouter({
      records: recordsFor(nodes.slice(0, 2), CHAIN, stakes),
      routing: {
        limits: { connectionsPerProvider: 2 },
        failover: { attemptTimeoutMs: 500, deadlineMs: 8_000, hedge: false, ...failover },
        scoring: { maxOperatorShare: 1 }, // two operators: the default cap would make their shares even
        probe: { timeoutMs: 5_000 }, // probes of the slow providers never time out, even on a busy machine
      },
    });
    try {
      await waitFor(() => busy.status().chains[0].providers.every((p) => p.state === "healthy"), "both providers healthy");
      for (const node of nodes.slice(0, 2)) node.setLatency(latencyMs);
      await story(busy);
    } finally {
      await busy.stop({ drainMs: 0 });
      await healAll();
    }
  }

  /** POSTs `call` to `busy` on a connection of its own, and returns the socket (to leave by). */
  function postAndStay(busy: TestRouter, call: object): Socket {
    const body = JSON.stringify(call);
    const socket = connect({ host: "127.0.0.1", port: busy.port });
    socket.on("error", () => {});
    socket.write(`POST /rpc/${CHAIN} HTTP/1.1\r\nhost: router\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    return socket;
  }

  const served = (method: string) => nodes.slice(0, 2).reduce((sum, n) => sum + (n.stats().byMethod[method] ?? 0), 0);
  const inFlightCalls = (busy: TestRouter) => Number(/^din_router_in_flight_calls (\d+)$/m.exec(busy.metrics())?.[1]);

  function expectNoneBlamed(busy: TestRouter): void {
    const providers = busy.status().chains[0].providers;
    expect(providers.map((p) => [p.state, p.failures]), JSON.stringify(providers)).toEqual([
      ["healthy", {}],
      ["healthy", {}],
    ]);
  }

  it("waits for a free connection instead of timing out, and blames no provider", async () => {
    await withBusyRouter([1_000, 1_000], 150, {}, async (busy) => {
      // 60 at once: a call waits up to 2.25 s for a connection, longer than a call's timeout and a
      // probe's (probes have their own connection: in the queue they would time out).
      const result = await hammer(busy, CHAIN, 100, 60, balance);
      expect(result.failures).toEqual([]);
      expectNoneBlamed(busy);
    });
  });

  it("gives each client waiting for the providers' connections its turn: one client's many slow calls do not hold another's behind them all", async () => {
    // The hostile-client fuzz: one client's 250 slow calls took every connection to the providers,
    // and another client's 3 ms call waited behind all of them (3.96 s).
    await withBusyRouter([1_000, 1_000], 200, {}, async (busy) => {
      const post = (from: string, id: number) =>
        new Promise<{ result?: string }>((resolve, reject) => {
          const body = JSON.stringify({ jsonrpc: "2.0", id, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] });
          const req = request({ host: "127.0.0.1", port: busy.port, localAddress: from, method: "POST", path: `/rpc/${CHAIN}`, agent: false, headers: { "content-type": "application/json" } }, (res) => {
            let text = "";
            res.on("data", (chunk: Buffer) => (text += chunk.toString()));
            res.on("end", () => resolve(JSON.parse(text) as { result?: string }));
          });
          req.on("error", reject);
          req.end(body);
        });
      let hogAnswered = 0;
      const hog = Array.from({ length: 40 }, (_, id) => post("127.0.0.50", id).then((answer) => (expect(answer.result).toBe(balance), hogAnswered++)));
      const waiting = () => busy.status().chains[0].providers.reduce((sum, p) => sum + p.waiting, 0);
      await waitFor(() => waiting() >= 30, "the first client's calls waiting for connections (four in all)");
      const answer = await post("127.0.0.51", 99);
      expect(answer.result).toBe(balance);
      // Its call took the next free connection: the first client's were still mostly waiting.
      expect(hogAnswered).toBeLessThan(20);
      await Promise.all(hog);
    });
  });

  it("answers -32051 to calls still waiting at their deadline, and blames no provider for them", async () => {
    // Four connections, 150 ms a call: in 600 ms about 16 of 40 calls are served.
    await withBusyRouter([1_000, 1_000], 150, { deadlineMs: 600 }, async (busy) => {
      const connectionsBefore = nodes.slice(0, 2).map((n) => n.stats().connections);
      const servedBefore = served("eth_getBalance");
      const result = await hammer(busy, CHAIN, 40, 40, balance);
      expect(result.failures.length).toBeGreaterThan(0);
      for (const failure of result.failures) {
        expect(failure).toMatch(/"code":-32051,"message":"no provider answered within 600 ms \(1 attempts; last: 0x[0-9a-f]{40}: waited for a connection to it \(the router's 2 were busy or connecting\)\)"/);
      }
      expectNoneBlamed(busy);
      // The calls that waited past their deadline leave the queue as connections free, without a
      // byte sent and without costing a connection; those in flight at their deadline run to their
      // end: four at a time, and the calls' deadlines lie as far apart as their starts (on a busy
      // machine up to about a call's time: one failed CI run sent five), so at most eight, far
      // from the 20-odd that waited. Calls after them are served as usual, on the same connections.
      const after = await hammer(busy, CHAIN, 8, 4, balance);
      expect(after.failures).toEqual([]);
      const sent = served("eth_getBalance") - servedBefore;
      const answered = 40 - result.failures.length + 8;
      expect(sent).toBeGreaterThanOrEqual(answered);
      expect(sent).toBeLessThanOrEqual(answered + 8);
      const opened = nodes.slice(0, 2).map((n, i) => n.stats().connections - connectionsBefore[i]);
      expect(opened.every((c) => c <= 2), `connections opened per provider (two for calls): ${opened.join(", ")}`).toBe(true);
    });
  });

  it("moves a call waiting behind a hanging provider's busy connections to a provider with a free one", async () => {
    // Node 0 draws nine calls in ten and hangs; its two connections are held until each attempt
    // times out (1.5 s). Calls queued behind them waited there until their deadline (3 s), while
    // node 1 was free (a soak: 47 of 466,232 calls failed so).
    await withBusyRouter([10_000, 100], 0, { attemptTimeoutMs: 1_500, deadlineMs: 3_000 }, async (busy) => {
      await nodes[0].setFault({ kind: "hang" });
      const result = await hammer(busy, CHAIN, 12, 12, balance);
      expect(result.failures).toEqual([]);
      // Leaving the queue sends nothing: a call that moved counts one attempt (plus a retry of a timed-out one).
      expect(Math.max(...result.attempts)).toBeLessThanOrEqual(2);
    });
  });

  it("moves a client's receipt calls queued behind the hanging provider that took its transaction", async () => {
    // Calls about a client's transaction go first to the provider that took it: when that one
    // hangs, its busy connections must not hold them either (a soak: three receipts failed so).
    await withBusyRouter([1_000, 1_000], 0, { attemptTimeoutMs: 1_500, deadlineMs: 3_000, writeFanout: 1 }, async (busy) => {
      const { raw } = await signTransfer();
      const sent = await busy.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] });
      const hash = (sent.json() as { result: string }).result;
      const took = nodes.findIndex((_, i) => providerAddress(i) === sent.headers.get("x-din-provider"));
      expect([0, 1]).toContain(took);
      await nodes[took].setFault({ kind: "hang" });
      const answers = await Promise.all(
        Array.from({ length: 12 }, async (_, id) => (await busy.post(CHAIN, { jsonrpc: "2.0", id, method: "eth_getTransactionReceipt", params: [hash] })).json()),
      );
      expect(answers.map((a) => (a as { result?: { transactionHash?: string } }).result?.transactionHash ?? JSON.stringify(a))).toEqual(answers.map(() => hash));
    });
  });

  it("moves receipt calls queued behind the two hanging providers that took the transaction to the third", async () => {
    // A review: the escape looked only at the providers that took it (both hung, both busy) and
    // no further: the eight waiting stayed behind them (with a 3 s deadline, 8 of 12 failed).
    const three = nodes.slice(0, 3);
    const busy = await startRouter({
      records: recordsFor(three, CHAIN, [1_000, 1_000, 1_000]),
      routing: { limits: { connectionsPerProvider: 2 }, failover: { attemptTimeoutMs: 1_500, deadlineMs: 5_000, hedge: false, writeFanout: 2 }, probe: { timeoutMs: 5_000 } },
    });
    try {
      await waitFor(() => busy.status().chains[0].providers.every((p) => p.state === "healthy"), "providers healthy");
      for (const node of three) node.resetStats();
      const { raw } = await signTransfer();
      // All of them front one node, which would answer the second copy "already known": each answers the hash.
      const hash = (await direct(chain.rpcUrl, "eth_sendRawTransaction", [raw])) as string;
      for (const node of three) await node.setFault({ kind: "result", method: "eth_sendRawTransaction", result: hash });
      expect((await busy.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] })).json()).toMatchObject({ result: hash });
      const took = [0, 1, 2].filter((i) => (three[i].stats().byMethod.eth_sendRawTransaction ?? 0) > 0);
      expect(took).toHaveLength(2);
      await new Promise((resolve) => setTimeout(resolve, 500)); // the second copy answered too (a local node answers in milliseconds): both took it
      for (const i of took) await three[i].setFault({ kind: "hang" });
      const answers = await Promise.all(
        Array.from({ length: 12 }, async (_, id) => {
          const answer = await busy.post(CHAIN, { jsonrpc: "2.0", id, method: "eth_getTransactionReceipt", params: [hash] });
          return { hash: (answer.json() as { result?: { transactionHash: string } }).result?.transactionHash, by: answer.headers.get("x-din-provider"), attempts: answer.headers.get("x-din-attempts") };
        }),
      );
      expect(answers.map((a) => a.hash)).toEqual(answers.map(() => hash));
      // Four went out on the hung providers' four connections (and come through after their
      // timeouts); the eight that waited behind them moved to the third at once, no attempt more.
      const third = providerAddress([0, 1, 2].find((i) => !took.includes(i))!);
      expect(answers.filter((a) => a.by === third && a.attempts === "1")).toHaveLength(8);
    } finally {
      await busy.stop({ drainMs: 0 });
      await healAll();
    }
  });

  it("keeps a call for a block waiting for the one provider known to hold it rather than move it to one without the block", async () => {
    // The queue escape moved it to any provider with a free connection: node 1, a block behind,
    // answered null or "header not found", and the busy holder was not asked again.
    await withBusyRouter([1_000, 1_000], 0, { hedgeMinMs: 50, attemptTimeoutMs: 3_000, deadlineMs: 8_000 }, async (busy) => {
      const h0 = Number(await direct(chain.rpcUrl, "eth_blockNumber"));
      await nodes[1].setFault({ kind: "behind", head: h0 });
      await direct(chain.rpcUrl, "evm_mine");
      const h = h0 + 1;
      const providers = () => busy.status().chains[0].providers;
      await waitFor(() => (providers()[0].head ?? -1) >= h && providers()[1].head === h0 && providers().every((p) => p.state === "healthy"), "node 0 at the new block, node 1 a block behind");
      nodes[0].setLatency(400); // its two connections stay busy: four of the six calls wait
      const tag = `0x${h.toString(16)}`;
      const replies = await Promise.all(
        Array.from({ length: 6 }, async (_, id) => {
          const call = id % 2 === 0 ? { method: "eth_getBlockByNumber", params: [tag, false] } : { method: "eth_getBalance", params: [DEV_ACCOUNT, tag] };
          return (await busy.post(CHAIN, { jsonrpc: "2.0", id, ...call })).json() as { result?: unknown; error?: unknown };
        }),
      );
      expect(replies.filter((r) => r.result === null || r.error !== undefined)).toEqual([]);
      expect(replies.filter((_, id) => id % 2 === 0).map((r) => (r.result as { number: string }).number)).toEqual([tag, tag, tag]);
    });
  });

  it("hedges no call that waits in its queue: the providers are not slow, the router is busy", async () => {
    // Hedges after 1 s; calls wait up to 1.5 s for a connection and take 100 ms once sent.
    await withBusyRouter([1_000, 1_000], 100, { hedge: true, hedgeMinMs: 1_000, attemptTimeoutMs: 3_000 }, async (busy) => {
      const result = await hammer(busy, CHAIN, 100, 60, balance);
      expect(result.failures).toEqual([]);
      expect(busy.metrics()).toMatch(/^din_router_hedges_total 0$/m);
      expect(result.attempts.every((n) => n === 1)).toBe(true);
    });
  });

  it("abandons the calls of a client that went away: those still waiting for a connection are never sent", async () => {
    await withBusyRouter([1_000, 1_000], 1_500, { attemptTimeoutMs: 5_000 }, async (busy) => {
      const before = served("eth_getBalance");
      const clients = Array.from({ length: 8 }, () => postAndStay(busy, { jsonrpc: "2.0", id: 1, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] }));
      // Four go out on the four connections, four wait; then every client leaves.
      await waitFor(() => inFlightCalls(busy) === 8 && served("eth_getBalance") - before === 4, "eight calls in flight, four of them at the providers");
      const saturated = busy.status().chains[0].providers;
      expect(saturated.map((p) => p.inFlight)).toEqual([2, 2]);
      expect(saturated.reduce((sum, p) => sum + p.waiting, 0)).toBe(4);
      const waitingGauge = [...busy.metrics().matchAll(/^din_router_provider_waiting\{chain="31337",provider="0x[0-9a-f]{40}"\} (\d+)$/gm)];
      expect(waitingGauge.reduce((sum, m) => sum + Number(m[1]), 0)).toBe(4);
      for (const socket of clients) socket.destroy();
      await waitFor(() => inFlightCalls(busy) === 0, "the calls abandoned");
      expect(busy.metrics()).toMatch(/^din_router_calls_total\{chain="31337",outcome="abandoned"\} 8$/m);
      // The four that waited left the router's wait list at once (nothing of theirs is held); the
      // four already out hold their connections until the providers answer (1.5 s: time to look on a busy machine).
      const providers = () => busy.status().chains[0].providers;
      expect(providers().map((p) => p.waiting)).toEqual([0, 0]);
      expect(providers().map((p) => p.inFlight)).toEqual([2, 2]);
      await waitFor(() => providers().every((p) => p.inFlight === 0), "the four answered, unused");
      // A call after them waits behind whatever the router still had queued: once it is answered,
      // the four that waited were dropped without reaching a provider.
      const after = await hammer(busy, CHAIN, 1, 1, balance);
      expect(after.failures).toEqual([]);
      expect(served("eth_getBalance") - before).toBe(4 + 1);
      expectNoneBlamed(busy);
    });
  });

  it("still broadcasts a transaction whose client left while it waited for a connection", async () => {
    await withBusyRouter([1_000, 1_000], 300, {}, async (busy) => {
      const reads = hammer(busy, CHAIN, 4, 4, balance); // the four connections, for 300 ms
      await waitFor(() => inFlightCalls(busy) === 4, "four reads in flight");
      const { raw } = await signTransfer();
      const client = postAndStay(busy, { jsonrpc: "2.0", id: 1, method: "eth_sendRawTransaction", params: [raw] });
      await waitFor(() => inFlightCalls(busy) === 5, "the broadcast waiting for a connection");
      client.destroy();
      expect((await reads).failures).toEqual([]);
      // Its two copies go out once connections are free, though nobody waits for the answer.
      await waitFor(() => served("eth_sendRawTransaction") === 2, "both copies of the broadcast sent", 10_000);
    });
  });

  it("sends what a saturated provider cannot take at once to one with a free connection", async () => {
    // By weight the small provider gets about a tenth (√10000 : √100); saturated, the large one
    // cannot take more than its two connections, and the overflow goes to the small one.
    await withBusyRouter([10_000, 100], 100, {}, async (busy) => {
      const result = await hammer(busy, CHAIN, 48, 8, balance);
      expect(result.failures).toEqual([]);
      const small = result.providers.get(providerAddress(1)) ?? 0;
      expect(small, `calls the small provider answered of 48 (${[...result.providers].join("; ")})`).toBeGreaterThanOrEqual(16);
    });
  });

  it("probes providers on one host side by side, at most four at once: none waits for a connection and times out", async () => {
    // Six operators on one host; a probe takes 500 ms of its 1.5 s timeout. One after another on a
    // single connection, the later ones would time out while they waited; one connection each
    // would open six to a host that may be a stranger's.
    const host = await startProviderNode({ upstreamUrl: chain.rpcUrl, adminPort: null });
    const hosted = ["u", "v", "w", "x", "y", "z"].map((path) => ({ url: `${host.url}/${path}` }));
    const busy = await startRouter({ records: recordsFor(hosted, CHAIN, hosted.map(() => 1_000)), routing: { probe: { intervalMs: 300, timeoutMs: 1_500 } } });
    try {
      const providers = () => busy.status().chains[0].providers;
      await waitFor(() => providers().every((p) => p.state === "healthy"), "six providers healthy");
      host.setLatency(500);
      const probes = () => host.stats().byMethod.eth_blockNumber ?? 0;
      const before = probes();
      await waitFor(() => probes() - before >= 18, "three rounds of probes at the slow host");
      await new Promise((resolve) => setTimeout(resolve, 600)); // the probes still out are judged
      expect(providers().map((p) => [p.state, p.failures])).toEqual(hosted.map(() => ["healthy", {}]));
      expect(host.stats().connections, "connections the probes opened to the host").toBeLessThanOrEqual(4);
    } finally {
      await busy.stop({ drainMs: 0 });
      await host.stop();
    }
  });

  it("counts the connections of providers on one host together, as undici pools them, and overflows past them", async () => {
    // Four operators on node 0 (four paths of one origin: its two connections are theirs together)
    // and a small one on node 1. Six slow calls at once.
    const hosted = ["a", "b", "c", "d"].map((path) => ({ url: `${nodes[0].url}/${path}` }));
    const busy = await startRouter({
      records: recordsFor([...hosted, nodes[1]], CHAIN, [1_000, 1_000, 1_000, 1_000, 10]),
      routing: {
        limits: { connectionsPerProvider: 2 },
        failover: { attemptTimeoutMs: 5_000, hedge: false },
        scoring: { maxOperatorShare: 1 },
        probe: { timeoutMs: 5_000 }, // probes of the slow providers never time out, even on a busy machine
      },
    });
    const clients: Socket[] = [];
    try {
      const providers = () => busy.status().chains[0].providers;
      await waitFor(() => providers().every((p) => p.state === "healthy"), "five providers healthy");
      for (const node of nodes.slice(0, 2)) node.setLatency(1_500);
      const before = nodes.map((n) => n.stats().byMethod.eth_getBalance ?? 0);
      for (let i = 0; i < 6; i++) clients.push(postAndStay(busy, { jsonrpc: "2.0", id: i, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] }));
      await waitFor(() => inFlightCalls(busy) === 6 && providers()[4].inFlight === 2, "six calls in flight, two of them on node 1");
      // Node 0's origin carries two (not two per operator); the small provider, a fortieth of the
      // weight, takes the overflow (the draws past node 0's busy paths find it); two calls wait.
      const all = providers();
      const sum = (list: typeof all, field: "inFlight" | "waiting") => list.reduce((n, p) => n + p[field], 0);
      expect({ host: sum(all.slice(0, 4), "inFlight"), small: all[4].inFlight, waiting: sum(all, "waiting") }).toEqual({ host: 2, small: 2, waiting: 2 });
      await waitFor(() => (nodes[0].stats().byMethod.eth_getBalance ?? 0) - before[0] === 2, "two calls at node 0");
      for (const socket of clients) socket.destroy();
      await waitFor(() => inFlightCalls(busy) === 0, "the calls abandoned");
      expect(sum(providers(), "waiting")).toBe(0);
      await waitFor(() => providers().every((p) => p.inFlight === 0), "the four sent answered, unused");
      // The two that waited never reached a provider; nobody was blamed for any of it.
      expect(nodes.slice(0, 2).map((n, i) => (n.stats().byMethod.eth_getBalance ?? 0) - before[i])).toEqual([2, 2]);
      expect(providers().map((p) => p.failures)).toEqual([{}, {}, {}, {}, {}]);
    } finally {
      for (const socket of clients) socket.destroy();
      await busy.stop({ drainMs: 0 });
      await healAll();
    }
  });
});

describe("routing one call", () => {
  /** A chain table of `records`, each provider probed (right chain, a head) and past probation. */
  function checkedTable(options: ReturnType<typeof resolveRoutingOptions>, records: ReturnType<typeof recordsFor>): ChainTable {
    const table = new ChainTable(CHAIN, options);
    table.setProviders(records);
    for (const p of table.providers) {
      p.setChainCheck(CHAIN, CHAIN, 0);
      p.setHead(100, 0);
      p.probationLeft = 0;
    }
    table.rebuild(performance.now());
    return table;
  }

  it("sets no wakeup once its last call ended: an idle router's event loop sleeps", async () => {
    // At one connection nearly every call ends before its check is due: a wakeup left set for it
    // cost an idle event loop a turn a call (`node scripts/bench/compare.ts --connections 1`).
    const options = resolveRoutingOptions();
    const table = checkedTable(options, recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]));
    const agent = new Agent();
    const sweeper = startSweeper();
    const context = { client: agent, failover: options.failover, random: Math.random, counters: { retries: 0, hedges: 0 }, sweeper, gates: new ConnectionGates(64), affinity: new WriteAffinity(0), heads: new ClientHeads(0) };
    try {
      for (const id of [1, 2, 3]) {
        const answered = new Promise<CallResult>((resolve) => routeCall(context, table, { id, method: "eth_blockNumber", params: [], notification: false }, id, resolve));
        expect(sweeper.armed).toBe(true); // its attempt's deadline and its hedge are due
        expect((await answered).outcome).toBe("answer");
        expect(sweeper.armed).toBe(false);
      }
    } finally {
      sweeper.stop();
      await agent.destroy();
    }
  });

  it("answers exactly once when every attempt fails inside dispatch (a closed agent)", async () => {
    const options = resolveRoutingOptions();
    const table = checkedTable(options, recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]));
    expect(table.eligibleCount).toBe(4);
    const agent = new Agent();
    await agent.destroy(); // undici now fails each dispatch before it returns
    const sweeper = startSweeper();
    const results: CallResult[] = [];
    routeCall(
      { client: agent, failover: options.failover, random: Math.random, counters: { retries: 0, hedges: 0 }, sweeper, gates: new ConnectionGates(64), affinity: new WriteAffinity(0), heads: new ClientHeads(0) },
      table,
      { id: 7, method: "eth_blockNumber", params: [], notification: false },
      7,
      (result) => results.push(result),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    sweeper.stop();
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ outcome: "upstream_failed", attempts: options.failover.maxAttempts, provider: null });
  });

  type Route = (table: ChainTable, id: number) => Promise<CallResult>;

  /**
   * Runs `body` with a fifth provider node (beside nodes 0–3) and calls routed with `options`, one
   * `route` per call (an eth_getBalance); stops the fifth node and heals every node after.
   */
  async function withFifthNode(
    options: ReturnType<typeof resolveRoutingOptions>,
    body: (fifth: ProviderNode, route: Route, counters: { retries: number; hedges: number }) => Promise<void>,
  ): Promise<void> {
    const fifth = await startProviderNode({ upstreamUrl: chain.rpcUrl, adminPort: null });
    const agent = new Agent();
    const sweeper = startSweeper();
    const context = { client: agent, failover: options.failover, random: Math.random, counters: { retries: 0, hedges: 0 }, sweeper, gates: new ConnectionGates(64), affinity: new WriteAffinity(0), heads: new ClientHeads(0) };
    const route: Route = (table, id) =>
      new Promise((resolve) => routeCall(context, table, { id, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"], notification: false }, id, resolve));
    try {
      await body(fifth, route, context.counters);
    } finally {
      sweeper.stop();
      await agent.destroy();
      await fifth.stop();
      await healAll();
    }
  }

  it("gives a real latest block rather than a made-up one ahead, and credits a provider with it only when another bears it out", async () => {
    // Reviews: a made-up block ahead, held, was given when the second answer was a block behind (or
    // null); and the liar, itself behind, was credited with the second's block, drawing calls naming
    // that block (its null given) and the client's latest reads (its old state) to it.
    // (The liar's probed head is a block below the chain's: the chain needs one. Run alone, this test finds block 0.)
    if (Number(await direct(chain.rpcUrl, "eth_blockNumber")) === 0) await direct(chain.rpcUrl, "evm_mine");
    const latest = (await direct(chain.rpcUrl, "eth_getBlockByNumber", ["latest", false])) as Record<string, unknown>;
    const head = Number(latest.number);
    await nodes[3].setFault({ kind: "result", method: "eth_getBlockByNumber", result: { ...latest, number: `0x${(head + 4).toString(16)}`, hash: `0x${"ee".repeat(32)}` } });
    const options = resolveRoutingOptions({ failover: { hedge: false } });
    /** A table whose probes saw node i at head + ahead[i] (the nodes answer the chain's head). */
    const tableWithHeads = (ahead: number[]) => {
      const table = new ChainTable(CHAIN, options);
      table.setProviders(recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]));
      const now = performance.now();
      table.providers.forEach((p, i) => {
        p.setChainCheck(CHAIN, CHAIN, 0);
        table.recordHead(p, head + ahead[i], now);
        p.probationLeft = 0;
      });
      table.updateMedianHead(now, 60_000);
      table.rebuild(now);
      return table;
    };
    const agent = new Agent();
    const sweeper = startSweeper();
    // Each draw the last of those left: the liar (node 3) first, then node 2, then node 1.
    const context = { client: agent, failover: options.failover, random: () => 0.999, counters: { retries: 0, hedges: 0 }, sweeper, gates: new ConnectionGates(64), affinity: new WriteAffinity(0), heads: new ClientHeads(0) };
    const latestFrom = (table: ChainTable, draws?: number[]) => {
      // The draws in turn (0: the first provider left, 0.999: the last), then the last one again.
      const random = draws === undefined ? context.random : () => draws.length > 1 ? draws.shift()! : draws[0];
      return new Promise<CallResult>((resolve) =>
        routeCall({ ...context, random }, table, { id: 1, method: "eth_getBlockByNumber", params: ["latest", false], notification: false }, 1, resolve),
      );
    };
    try {
      // The others probed a block further than node 2 answers, the liar a block behind it: node 2's
      // real block, not the made-up one four ahead.
      const table = tableWithHeads([1, 1, 0, -1]);
      const liar = table.providers.find((p) => p.address === providerAddress(3))!;
      const given = await latestFrom(table);
      expect(given.attempts).toBe(2);
      expect(JSON.parse(given.bytes!.toString())).toEqual({ jsonrpc: "2.0", id: 1, result: latest });
      expect(liar.holdsBlock(head)).toBe(false); // not credited with the block node 2 gave
      // The second with no block: a third is asked.
      await nodes[2].setFault({ kind: "result", method: "eth_getBlockByNumber", result: null });
      const third = await latestFrom(tableWithHeads([0, 0, 0, 0]));
      expect(third.attempts).toBe(3);
      expect(JSON.parse(third.bytes!.toString())).toEqual({ jsonrpc: "2.0", id: 1, result: latest });
      // An honest provider first with a block the others were not probed at, the liar second with
      // a made-up block of that number: the honest one is borne out, the liar not credited (rev18).
      await nodes[3].setFault({ kind: "result", method: "eth_getBlockByNumber", result: { ...latest, hash: `0x${"ee".repeat(32)}` } });
      const ahead = tableWithHeads([-1, -1, -1, -1]);
      const borneOut = await latestFrom(ahead, [0, 0.999]);
      expect(borneOut.attempts).toBe(2);
      expect(JSON.parse(borneOut.bytes!.toString())).toEqual({ jsonrpc: "2.0", id: 1, result: latest });
      expect(ahead.providers.map((p) => p.holdsBlock(head))).toEqual([true, false, false, false]);
      // The second answer too large for the client's budget: no third asked, another's would be as large (rev18: four asked).
      await nodes[3].setFault({ kind: "result", method: "eth_getBlockByNumber", result: { ...latest, number: `0x${(head + 4).toString(16)}`, hash: `0x${"ee".repeat(32)}` } });
      let collected = 0;
      const budget = { turn: "test", freeBytes: 0, collect: () => collected++ === 0, release: () => {} }; // the first answer fits, no other
      const overBudget = await new Promise<CallResult>((resolve) =>
        routeCall(context, tableWithHeads([0, 0, 0, 0]), { id: 1, method: "eth_getBlockByNumber", params: ["latest", false], notification: false }, 1, resolve, { budget }),
      );
      expect(overBudget.attempts).toBe(2);
    } finally {
      sweeper.stop();
      await agent.destroy();
      await healAll();
    }
  });

  it("reaches the one healthy provider even when a hedge was spent on the way", async () => {
    // A hanging provider (hedged), three that fail at once, and a healthy one with so little stake
    // that it is nearly always drawn last: the hedge must not use up the call's retries.
    const options = resolveRoutingOptions({ failover: { hedgeMinMs: 20, attemptTimeoutMs: 1_500 } });
    const healthy = nodes[0];
    await withFifthNode(options, async (fifth, route, counters) => {
      const table = checkedTable(options, recordsFor([nodes[1], nodes[2], nodes[3], fifth, healthy], CHAIN, [10_000, 10_000, 10_000, 10_000, 1]));
      for (let i = 0; i < 40; i++) table.latency.add(5); // a fast chain: hedge after hedgeMinMs
      await nodes[1].setFault({ kind: "hang" });
      await nodes[2].setFault({ kind: "status", status: 503 });
      await nodes[3].setFault({ kind: "status", status: 500 });
      await fifth.setFault({ kind: "status", status: 502 });
      const results: CallResult[] = [];
      for (let i = 0; i < 5; i++) results.push(await route(table, i));
      expect(results.map((r) => r.outcome)).toEqual(["answer", "answer", "answer", "answer", "answer"]);
      expect(results.map((r) => r.provider?.url)).toEqual(results.map(() => healthy.url));
      expect(counters.hedges).toBeGreaterThan(0);
    });
  });

  it("does not count failures no request can cause against the call's retries, and counts those a request can", async () => {
    // Four providers that fail whatever is asked (refused, wrong id, not JSON, rate limited) and a
    // healthy one nearly always drawn last: with two attempts allowed it must still be reached.
    const options = resolveRoutingOptions({ failover: { maxAttempts: 2, hedge: false } });
    const healthy = nodes[0];
    await withFifthNode(options, async (fifth, route) => {
      const faulty = [nodes[1], nodes[2], nodes[3], fifth];
      await nodes[1].setFault({ kind: "refuse" });
      await nodes[2].setFault({ kind: "wrongId" });
      await nodes[3].setFault({ kind: "malformed" });
      await fifth.setFault({ kind: "status", status: 429 });
      const table = checkedTable(options, recordsFor([...faulty, healthy], CHAIN, [1_000_000, 1_000_000, 1_000_000, 1_000_000, 1]));
      const results: CallResult[] = [];
      for (let i = 0; i < 5; i++) results.push(await route(table, i));
      expect(results.map((r) => [r.outcome, r.provider?.url])).toEqual(results.map(() => ["answer", healthy.url]));

      // A connection reset once the request was out may be the request's doing (one that kills a
      // node): two attempts, then the call ends.
      for (const node of faulty) await node.setFault({ kind: "reset" });
      const failing = await route(checkedTable(options, recordsFor(faulty, CHAIN, [1_000, 1_000, 1_000, 1_000])), 9);
      expect(failing).toMatchObject({ outcome: "upstream_failed", attempts: 2, provider: null });
    });
  });

  it("sends nothing for a call abandoned while it waited for a provider's first probe", async () => {
    const options = resolveRoutingOptions();
    const table = new ChainTable(CHAIN, options);
    table.setProviders(recordsFor(nodes, CHAIN, [1_000]).slice(0, 1)); // node 0, just joined: not probed yet
    const agent = new Agent();
    const sweeper = startSweeper();
    const before = nodes[0].stats().byMethod.eth_getBalance ?? 0;
    const results: CallResult[] = [];
    const context = { client: agent, failover: options.failover, random: Math.random, counters: { retries: 0, hedges: 0 }, sweeper, gates: new ConnectionGates(64), affinity: new WriteAffinity(0), heads: new ClientHeads(0) };
    const call = routeCall(context, table, { id: 7, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"], notification: false }, 7, (result) => results.push(result));
    expect(results).toEqual([]); // waiting for the probe
    call.abandon();
    expect(results).toMatchObject([{ outcome: "abandoned", provider: null }]);
    // The probe's verdict comes while the abandoned call still waits for a change of the table.
    const provider = table.providers[0];
    provider.setChainCheck(CHAIN, CHAIN, 0);
    provider.setHead(100, 0);
    table.rebuild(performance.now());
    expect(table.eligibleCount).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    sweeper.stop();
    await agent.close();
    expect(nodes[0].stats().byMethod.eth_getBalance ?? 0).toBe(before);
    expect(results).toHaveLength(1);
  });

  describe("a provider's wait list", () => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] });

    it("hands a free connection to the requests waiting in order, never past the limit, also when one ends as it is handed over", async () => {
      nodes[0].setLatency(200);
      const provider = checkedTable(resolveRoutingOptions(), recordsFor(nodes, CHAIN, [1_000]).slice(0, 1)).providers[0];
      const agent = new Agent();
      const gates = new ConnectionGates(1);
      const events: string[] = [];
      let most = 0;
      const owner = (name: string, then?: () => void): AttemptOwner => ({
        settle: (_attempt, outcome: Outcome) => {
          events.push(`${name} ${outcome.type}`);
          then?.();
          most = Math.max(most, provider.inFlight);
        },
        sent: () => {
          events.push(`${name} sent`);
          most = Math.max(most, provider.inFlight);
        },
      });
      try {
        const d = new UpstreamAttempt(provider, 1, 5_000, owner("d"));
        // b's call ends while it waits; at that moment its owner routes another call (as a filter does).
        const b = new UpstreamAttempt(provider, 1, 5_000, owner("b", () => d.start(agent, body, gates)), null, performance.now() + 50);
        for (const [name, attempt] of [["a", new UpstreamAttempt(provider, 1, 5_000, owner("a"))], ["b", b], ["c", new UpstreamAttempt(provider, 1, 5_000, owner("c"))]] as const) {
          attempt.start(agent, body, gates);
          if (name === "a") await waitFor(() => events.includes("a sent"), "a on the connection");
        }
        await waitFor(() => events.includes("d answer"), "every request answered");
        expect(events.filter((e) => e.endsWith(" sent"))).toEqual(["a sent", "c sent", "d sent"]);
        expect(events).toContain("b queued");
        expect(most).toBe(1);
        expect([provider.inFlight, provider.waiting]).toEqual([0, 0]);
      } finally {
        await agent.close();
        nodes[0].setLatency(0);
      }
    });

    it("ends every request waiting when the router's connections go away, however many", async () => {
      const provider = checkedTable(resolveRoutingOptions(), recordsFor(nodes, CHAIN, [1_000]).slice(0, 1)).providers[0];
      nodes[0].setLatency(2_000);
      const agent = new Agent();
      const gates = new ConnectionGates(1);
      let settled = 0;
      const owner: AttemptOwner = { settle: () => settled++ };
      try {
        for (let i = 0; i < 5_000; i++) new UpstreamAttempt(provider, 1, 20_000, owner).start(agent, body, gates);
        await waitFor(() => provider.inFlight === 1, "one request out");
        expect(provider.waiting).toBe(4_999);
        await agent.destroy(); // each release hands the connection to the next, which fails at once
        expect([settled, provider.inFlight, provider.waiting]).toEqual([5_000, 0, 0]);
      } finally {
        nodes[0].setLatency(0);
      }
    });
  });

  it("tells the client to retry when an answer it could not hold came and the other attempt failed", async () => {
    // Node 1: a 4 MiB answer after 150 ms (more than this client may hold); node 2: HTTP 500 after 400 ms.
    await nodes[1].setFault({ kind: "oversized", bytes: 4 * 1024 * 1024 });
    nodes[1].setLatency(150);
    await nodes[2].setFault({ kind: "status", status: 500 });
    nodes[2].setLatency(400);
    const options = resolveRoutingOptions({ failover: { maxAttempts: 2, hedgeMinMs: 20 } });
    const table = checkedTable(options, recordsFor(nodes, CHAIN, [1_000, 1_000, 1_000, 1_000]).slice(1, 3));
    for (let i = 0; i < 50; i++) table.latency.add(10); // a fast chain: the slow first attempt is hedged at 20 ms
    const agent = new Agent();
    const sweeper = startSweeper();
    let held = 0;
    const budget = { turn: "test", freeBytes: 16 * 1024, collect: (bytes: number) => held + bytes <= 1024 * 1024 && (held += bytes) > 0, release: (bytes: number) => void (held -= bytes) };
    const results: CallResult[] = [];
    try {
      const context = { client: agent, failover: options.failover, random: Math.random, counters: { retries: 0, hedges: 0 }, sweeper, gates: new ConnectionGates(64), affinity: new WriteAffinity(0), heads: new ClientHeads(0) };
      routeCall(context, table, { id: 7, method: "eth_getLogs", params: [{}], notification: false }, 7, (r) => results.push(r), { budget });
      await waitFor(() => results.length > 0, "the call's answer");
      await new Promise((resolve) => setTimeout(resolve, 100)); // and only one
    } finally {
      sweeper.stop();
      await agent.close();
      await healAll();
    }
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ outcome: "over_budget", attempts: 2, provider: null });
    expect(results[0].bytes.toString()).toMatch(/"code":-32005,"message":"the router is at capacity and cannot hold this answer now; retry this call"/);
    expect(held).toBe(0); // what both attempts collected was given back
  });
});
