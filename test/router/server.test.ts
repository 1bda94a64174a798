import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { HistoryResponse } from "../../router/history.ts";
import { reusedPage } from "../../router/server.ts";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { eventually } from "../helpers/chainActions.ts";
import { recordsFor, startFaultyUpstreams, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { startRouter, type TestRouter } from "../helpers/startRouter.ts";
import { DEV_ACCOUNT, direct, waitFor } from "./support.ts";

// The router's HTTP face: JSON-RPC 2.0 single and batch calls, local answers, the method policy,
// and whatever a hostile client sends. After each blow the router must still serve.

const CHAIN = 31337;
let chain: Chain;
let nodes: ProviderNode[];
let router: TestRouter;

type RpcReply = { jsonrpc: string; id: unknown; result?: unknown; error?: { code: number; message: string } };

async function stillServes(): Promise<void> {
  const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: "alive", method: "eth_blockNumber", params: [] });
  expect(answer.status).toBe(200);
  expect((answer.json() as RpcReply).result).toMatch(/^0x[0-9a-f]+$/);
}

async function raw(body: string | Uint8Array<ArrayBuffer>, contentType = "application/json"): Promise<{ status: number; body: RpcReply }> {
  const response = await fetch(router.rpcUrl(CHAIN), { method: "POST", headers: { "content-type": contentType }, body });
  return { status: response.status, body: (await response.json()) as RpcReply };
}

beforeAll(async () => {
  chain = await startChain({ blockIntervalMs: 0 }); // a still chain: heads move only when a test says so
  nodes = await startFaultyUpstreams(chain.rpcUrl, 2);
  router = await startRouter({ records: recordsFor(nodes, CHAIN, [1_000, 4_000]) });
  await waitFor(() => router.status().chains[0].eligibleProviders === 2, "both providers eligible");
});

afterAll(async () => {
  await router?.stop();
  for (const node of nodes ?? []) await node.stop();
  await chain?.stop();
});

describe("JSON-RPC over POST /rpc/:chainId", () => {
  it("answers a single call with the provider's result and says who answered", async () => {
    const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: 7, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] });
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({ jsonrpc: "2.0", id: 7, result: await direct(chain.rpcUrl, "eth_getBalance", [DEV_ACCOUNT, "latest"]) });
    expect(answer.headers.get("x-din-provider")).toMatch(/^0x[0-9a-f]{40}$/);
    expect(answer.headers.get("x-din-attempts")).toBe("1");
  });

  it("answers eth_chainId and net_version itself", async () => {
    const chainId = await router.post(CHAIN, { jsonrpc: "2.0", id: "c", method: "eth_chainId" });
    expect(chainId.json()).toEqual({ jsonrpc: "2.0", id: "c", result: "0x7a69" });
    expect(chainId.headers.get("x-din-provider")).toBe("router");
    expect(chainId.headers.get("x-din-attempts")).toBe("0");
    expect((await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "net_version" })).json()).toEqual({ jsonrpc: "2.0", id: 1, result: "31337" });
  });

  it("routes each call of a batch on its own and answers in order with the same ids, notifications left out", async () => {
    const calls: unknown[] = [];
    for (let i = 0; i < 60; i++) {
      const id = i % 3 === 0 ? `s-${i}` : i % 3 === 1 ? i : i * 1000;
      if (i % 10 === 5) calls.push({ jsonrpc: "2.0", method: "eth_blockNumber", params: [] }); // notification
      else if (i % 4 === 0) calls.push({ jsonrpc: "2.0", id, method: "eth_chainId" });
      else calls.push({ jsonrpc: "2.0", id, method: i % 2 ? "eth_blockNumber" : "eth_getBalance", params: i % 2 ? [] : [DEV_ACCOUNT, "latest"] });
    }
    calls.push({ jsonrpc: "2.0", id: "bad", method: "debug_traceTransaction", params: ["0x00"] });
    calls.push(42);
    const answer = await router.post(CHAIN, calls);
    expect(answer.status).toBe(200);
    const replies = answer.json() as RpcReply[];
    const expectedIds = calls
      .filter((c) => typeof c !== "object" || c === null || "id" in c)
      .map((c) => (typeof c === "object" && c !== null ? (c as { id: unknown }).id : null));
    expect(replies.map((r) => r.id)).toEqual(expectedIds);
    expect(replies.slice(0, -2).every((r) => typeof r.result === "string")).toBe(true);
    expect(replies.at(-2)!.error!.code).toBe(-32601);
    expect(replies.at(-1)!.error!.code).toBe(-32600);
    // Each answerer once, in the order of the calls: the first call is the router's own (eth_chainId).
    expect(answer.headers.get("x-din-provider")).toMatch(/^router,0x[0-9a-f]{40}(,0x[0-9a-f]{40})?$/);
    expect(Number(answer.headers.get("x-din-attempts"))).toBeGreaterThanOrEqual(30);
  });

  it("answers a notification, and a batch of only notifications, with nothing", async () => {
    const single = await router.post(CHAIN, { jsonrpc: "2.0", method: "eth_blockNumber" });
    expect(single.status).toBe(204);
    expect(single.text).toBe("");
    const batch = await router.post(CHAIN, [
      { jsonrpc: "2.0", method: "eth_blockNumber" },
      { jsonrpc: "2.0", method: "eth_chainId" },
    ]);
    expect(batch.status).toBe(204);
    expect(batch.text).toBe("");
  });

  it("refuses admin, debug, personal, miner, engine, dev-node and signing methods before any provider sees them", async () => {
    for (const node of nodes) node.resetStats();
    const refused = [
      "admin_addPeer",
      "debug_setHead",
      "personal_unlockAccount",
      "miner_start",
      "engine_forkchoiceUpdatedV3",
      "hardhat_setBalance",
      "evm_mine",
      "txpool_content",
      "eth_sendTransaction",
      "eth_sendUnsignedTransaction", // Anvil: sends from any address, unsigned
      "eth_requestAccounts",
      "eth_resend",
      "eth_sign",
      "eth_newPendingTransactionFilter",
      "eth_subscribe",
      "eth_someNodeExtension",
    ];
    const answer = await router.post(
      CHAIN,
      refused.map((method, id) => ({ jsonrpc: "2.0", id, method, params: [] })),
    );
    const replies = answer.json() as RpcReply[];
    expect(replies.map((r) => r.error?.code)).toEqual(refused.map(() => -32601));
    expect(replies[0].error!.message).toMatch(/admin_addPeer is not allowed: the admin_ namespace is not served/);
    expect(replies[9].error!.message).toMatch(/eth_sendUnsignedTransaction is not allowed: signing needs the node's keys/);
    expect(replies.at(-1)!.error!.message).toMatch(/eth_someNodeExtension is not allowed: not among the methods this gateway serves/);
    const seen = nodes.flatMap((n) => Object.keys(n.stats().byMethod));
    for (const method of refused) expect(seen).not.toContain(method);
  });

  it("forwards the reads viem and ethers may call beyond the common ones", async () => {
    for (const node of nodes) node.resetStats();
    const reads = [
      "eth_fillTransaction", // viem's prepareTransactionRequest tries it first
      "eth_getRawTransactionByHash",
      "eth_getTransactionBySenderAndNonce",
      "eth_getStorageValues",
    ];
    const answer = await router.post(
      CHAIN,
      reads.map((method, id) => ({ jsonrpc: "2.0", id, method, params: [] })),
    );
    const replies = answer.json() as RpcReply[];
    expect(replies).toHaveLength(reads.length);
    for (const reply of replies) expect(reply.error?.message ?? "").not.toMatch(/is not allowed/);
    const seen = nodes.flatMap((n) => Object.keys(n.stats().byMethod));
    for (const method of reads) expect(seen).toContain(method);
  });

  it("lets a dapp in a browser call it from any origin and read the x-din headers", async () => {
    const preflight = await fetch(router.rpcUrl(CHAIN), {
      method: "OPTIONS",
      headers: { origin: "https://dapp.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("x-din-provider")).toBe("router"); // every answer carries them
    expect(preflight.headers.get("x-din-attempts")).toBe("0");
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    // Any header an SDK adds is let through (none of them reaches a provider); authorization is named, as `*` leaves it out.
    expect(preflight.headers.get("access-control-allow-headers")).toBe("*, authorization");
    const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber" }, { origin: "https://dapp.example" });
    expect(answer.headers.get("access-control-allow-origin")).toBe("*");
    expect(answer.headers.get("access-control-expose-headers")).toMatch(/x-din-provider/);
    // A wrong path too (a chain id in hex), so that the page can read the 404 saying why; and a
    // preflight for /status with a key (the browser walkthrough: both were 404, an opaque failure).
    for (const path of ["/rpc/0x7a69", "/rpc", "/status"]) {
      const wrong = await fetch(`${router.url}${path}`, {
        method: "OPTIONS",
        headers: { origin: "https://dapp.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type, authorization" },
      });
      expect(wrong.status, path).toBe(204);
      expect(wrong.headers.get("access-control-allow-origin"), path).toBe("*");
    }
    const hex = await fetch(`${router.url}/rpc/0x7a69`, { method: "POST", headers: { origin: "https://dapp.example", "content-type": "application/json" }, body: "{}" });
    expect(hex.status).toBe(404);
    expect(hex.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("says clearly that an unknown chain is not served", async () => {
    const answer = await router.post(5, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber" });
    expect(answer.status).toBe(404);
    const body = answer.json() as RpcReply;
    expect(body.error!.code).toBe(-32001);
    expect(body.error!.message).toMatch(/chain 5 is not served.*31337/);
    expect(answer.headers.get("x-din-provider")).toBe("none");
    // A chain id is written one way only: 031337 or 0x7a69 is no path of the router's.
    for (const path of ["/rpc/031337", "/rpc/0x7a69", "/rpc/+31337"]) {
      const odd = await fetch(`${router.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}' });
      expect(odd.status, path).toBe(404);
      expect(((await odd.json()) as RpcReply).error!.message).toMatch(/^not found: POST JSON-RPC to \/rpc\/<chainId> \(in decimal, such as \/rpc\/1\)/);
    }
  });
});

describe("hostile clients", () => {
  it("answers bad JSON with a parse error", async () => {
    const answer = await raw('{"jsonrpc":"2.0","id":1,"method":');
    expect(answer.status).toBe(400);
    expect(answer.body.error!.code).toBe(-32700);
    await stillServes();
  });

  it("refuses a body over the size limit without reading it all", async () => {
    const huge = new Uint8Array(3 * 1024 * 1024).fill(0x20);
    const answer = await raw(huge);
    expect(answer.status).toBe(413);
    expect(answer.body.error!.code).toBe(-32005);
    // Sent in chunks, with no content-length to refuse it by (the mutation check: its cap untested).
    const url = new URL(router.rpcUrl(CHAIN));
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: { "content-type": "application/json", "transfer-encoding": "chunked" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 3 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        req.end("{}");
      };
      pump();
    });
    expect(chunked).toBe(413);
    await stillServes();
  });

  it("passes a raw transaction as large as six blobs with their cell proofs to a provider", async () => {
    // 6 × (131,072 bytes of blob + 128 cell proofs of 48 bytes + a commitment) ≈ 824 KB, 1.65 MB in
    // hex: the largest blob transaction a rollup sends (six per transaction since Fusaka). Not a
    // valid one (no KZG library here): the node's own refusal must come back, not the router's 413.
    const rawTransaction = `0x03${"ab".repeat(6 * (131_072 + 128 * 48 + 48))}`;
    const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: "blob", method: "eth_sendRawTransaction", params: [rawTransaction] });
    expect(answer.headers.get("x-din-provider")).toMatch(/^0x[0-9a-f]{40}$/);
    expect((answer.json() as RpcReply).error!.code).not.toBe(-32005);
    await stillServes();
  });

  it("refuses a body that is not UTF-8, rather than answer with an id it changed", async () => {
    const answer = await raw(new Uint8Array(Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","method":"eth_blockNumber"}')])));
    expect(answer.status).toBe(400);
    expect(answer.body.error).toEqual({ code: -32700, message: "parse error: the body is not valid UTF-8" });
    // An id holding U+FFFD sent as such is valid, and comes back as sent.
    const sent = await raw('{"jsonrpc":"2.0","id":"a\uFFFDb","method":"eth_chainId"}');
    expect(sent.body).toMatchObject({ id: "a\uFFFDb", result: "0x7a69" });
    await stillServes();
  });

  it("refuses a 10,000-call batch", async () => {
    const batch = Array.from({ length: 10_000 }, (_, id) => ({ jsonrpc: "2.0", id, method: "eth_blockNumber" }));
    const answer = await raw(JSON.stringify(batch));
    expect(answer.status).toBe(413);
    expect(answer.body.error!.code).toBe(-32005);
    expect(answer.body.error!.message).toMatch(/at most 1000 calls \(got 10000\)/);
    await stillServes();
  });

  it("refuses deep nesting before parsing it", async () => {
    const depth = 200_000;
    const deep = `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":${"[".repeat(depth)}${"]".repeat(depth)}}`;
    const answer = await raw(deep);
    expect(answer.status).toBe(400);
    expect(answer.body.error!.code).toBe(-32600);
    expect(answer.body.error!.message).toMatch(/nested deeper/);
    // Just past the limit (32 levels) too.
    const past = await raw(`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":${"[".repeat(40)}${"]".repeat(40)}}`);
    expect(past.status).toBe(400);
    expect(past.body.error!.message).toMatch(/nested deeper/);
    await stillServes();
  });

  it("refuses a body that is not sent as application/json", async () => {
    const answer = await raw(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber" }), "text/plain");
    expect(answer.status).toBe(415);
    expect(answer.body.error!.code).toBe(-32600);
    await stillServes();
  });

  it("answers malformed calls with invalid-request errors carrying their id when it has one", async () => {
    const cases: [string, number, unknown][] = [
      ["null", -32600, null],
      ['"eth_blockNumber"', -32600, null],
      ["[]", -32600, null],
      ['{"jsonrpc":"1.0","id":3,"method":"eth_blockNumber"}', -32600, 3],
      ['{"jsonrpc":"2.0","id":4,"method":42}', -32600, 4],
      ['{"jsonrpc":"2.0","id":5,"method":"eth_getBalance","params":"0x00"}', -32600, 5],
      ['{"jsonrpc":"2.0","id":{"a":1},"method":"eth_blockNumber"}', -32600, null],
      ['{"jsonrpc":"2.0","id":6,"method":"eth_block number"}', -32600, 6],
      // Past 2^53 JSON.parse rounds: the answer would carry another id than the one sent.
      ['{"jsonrpc":"2.0","id":9007199254740993,"method":"eth_blockNumber"}', -32600, null],
      ['{"jsonrpc":"2.0","id":1.5,"method":"eth_blockNumber"}', -32600, null],
    ];
    for (const [body, code, id] of cases) {
      const answer = await raw(body);
      expect(answer.body.error?.code, body).toBe(code);
      expect(answer.body.id, body).toEqual(id);
    }
    await stillServes();
  });

  it("never lets duplicate members smuggle a refused method past the policy", async () => {
    for (const node of nodes) node.resetStats();
    const answer = await raw('{"jsonrpc":"2.0","id":1,"method":"hardhat_setBalance","method":"eth_blockNumber","params":[]}');
    // JSON.parse keeps the last member; the provider receives only what the router re-serialised.
    expect(answer.body.result).toMatch(/^0x/);
    expect(nodes.flatMap((n) => Object.keys(n.stats().byMethod))).not.toContain("hardhat_setBalance");
  });

  it("forwards none of the client's headers (keys, cookies) to a provider", async () => {
    for (const node of nodes) node.resetStats();
    await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber" }, {
      authorization: "Bearer secret",
      cookie: "session=secret",
      "x-api-key": "secret",
      "x-forwarded-for": "10.0.0.1",
    });
    const names = nodes.flatMap((n) => n.stats().headerNames);
    for (const name of ["authorization", "cookie", "x-api-key", "x-forwarded-for"]) expect(names).not.toContain(name);
    // What a provider sees is the router's own request, whatever the client sent.
    expect(new Set(names)).toEqual(new Set(["host", "connection", "content-length", "content-type", "accept", "user-agent"]));
  });

  it("takes no call another router forwards, so a router registered as a provider's endpoint never serves", async () => {
    // The security review: a provider whose endpoint was the router itself passed the probes (the
    // router answers eth_chainId and forwards eth_blockNumber) and looped calls through the set;
    // another operator's router would let a provider serve with no node of its own.
    const second = await startRouter({ records: recordsFor([nodes[0], { url: router.rpcUrl(CHAIN) }], CHAIN, [1_000, 1_000]) });
    try {
      const loop = await fetch(router.rpcUrl(CHAIN), { method: "POST", headers: { "content-type": "application/json", "user-agent": "opendin-router" }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}' });
      expect(loop.status).toBe(508);
      expect(await loop.json()).toEqual({ jsonrpc: "2.0", id: null, error: { code: -32600, message: expect.stringMatching(/^loop detected: this is an OpenDIN router/) } });
      const routerEntry = () => second.status().chains[0].providers.find((p) => p.name === "node-1")!;
      await waitFor(() => /HTTP 508 \(loop detected/.test(routerEntry().lastFailure ?? ""), "the router's entry refused as a router");
      expect(routerEntry().state).not.toMatch(/^(healthy|probation)$/);
      const before = nodes[1].stats().byMethod.eth_getBalance ?? 0; // the first router's other node: reached only through a loop
      for (let i = 0; i < 20; i++) {
        const answer = await second.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_getBalance", params: [DEV_ACCOUNT, "latest"] });
        expect(answer.headers.get("x-din-provider")).toBe(recordsFor(nodes, CHAIN, [])[0].address);
      }
      expect(nodes[1].stats().byMethod.eth_getBalance ?? 0).toBe(before);
    } finally {
      await second.stop();
    }
    await stillServes();
  });

  it("keeps serving under 300 concurrent requests", async () => {
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, id) => router.post(CHAIN, { jsonrpc: "2.0", id, method: "eth_blockNumber" })),
    );
    expect(answers.filter((a) => a.status !== 200 || (a.json() as RpcReply).result === undefined)).toEqual([]);
  });
});

describe("status, metrics and health", () => {
  it("explains each provider's stake, score and its parts, state and traffic share", async () => {
    const status = router.status();
    expect(status.devnet).toBe(true);
    expect(status.providerSet).toMatchObject({ source: "static", servingFrom: "static" });
    const [c] = status.chains;
    expect(c.chainId).toBe(CHAIN);
    expect(c.providers).toHaveLength(2);
    for (const p of c.providers) {
      expect(p.state).toBe("healthy");
      expect(p.parts.stake).toBeCloseTo(Math.sqrt(Number(BigInt(p.stake) / 10n ** 18n)), 6);
      expect(p.score).toBeCloseTo(p.parts.latency * p.parts.errors * p.parts.lag * p.parts.slash, 9);
      // The weight routed by: the √stake term after the operator cap, times the score and probation.
      expect(p.weight).toBeCloseTo(p.parts.cappedStake * p.score * p.parts.probation, 9);
      expect(p.trafficShare).toBeGreaterThan(0);
    }
    // Two providers, neither above maxOperatorShare (0.5) of the stake term: 1,000 and 4,000 tokens count equally.
    // The larger is cut to the smaller's √stake; the smaller is untouched.
    for (const p of c.providers) expect(p.parts.cappedStake).toBeCloseTo(Math.sqrt(1_000), 6);
    expect(c.providers[0].expectedShare + c.providers[1].expectedShare).toBeCloseTo(1, 9);
    const over = await router.get("/status");
    expect(over.status).toBe(200);
    expect((over.json() as typeof status).chains[0].providers[1].address).toBe(c.providers[1].address);
  });

  it("exposes Prometheus metrics and a health check", async () => {
    const metrics = await router.get("/metrics");
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(metrics.text).toMatch(/^din_router_calls_total\{chain="31337",outcome="answer"\} [1-9]/m);
    expect(metrics.text).toMatch(/^din_router_refused_total\{reason="parse_error"\} [1-9][0-9]*$/m);
    expect(metrics.text).toMatch(/^din_router_provider_state\{chain="31337",provider="0x0+1",state="healthy"\} 1$/m);
    // Providers by name too, on a series of their own (a gateway walkthrough: metrics named them by address only).
    const first = (await router.get("/status")).json() as { chains: { providers: { address: string; name: string }[] }[] };
    const named = first.chains[0].providers[0];
    expect(named.name).not.toBe("");
    expect(metrics.text).toContain(`\ndin_router_provider_info{chain="31337",provider="${named.address}",name="${named.name}"} 1\n`);
    const health = await router.get("/health");
    expect(health.status).toBe(200);
    expect(health.json()).toEqual({ ok: true, chains: 1, eligibleProviders: 2 });
    // A router with no provider it may use tells its load balancer so (outside devnet mode a
    // loopback endpoint is refused).
    // Its name is a stranger's text: escaped as a Prometheus label value.
    const records = recordsFor(nodes.slice(0, 1), CHAIN, [1_000]).map((r) => ({ ...r, name: 'node "one" \\ 2\n}' }));
    const refusing = await startRouter({ devnet: false, records, readyWaitMs: 500 });
    try {
      expect((await refusing.get("/metrics")).text).toContain(`,name="node \\"one\\" \\\\ 2\\n}"} 1\n`);
      await waitFor(() => refusing.status().chains[0].providers[0].state === "refused", "the provider refused");
      const none = await refusing.get("/health");
      expect(none.status).toBe(503);
      // With a reason a load balancer's health log shows (a gateway walkthrough saw none).
      expect(none.json()).toMatchObject({ ok: false, eligibleProviders: 0, reason: expect.stringMatching(/^every provider's endpoint is at an address this router refuses \(loopback/) });
    } finally {
      await refusing.stop();
    }
  });

  it("answers HEAD on its pages (a load balancer's health check), a trailing slash, and a wrong method with 405 and Allow", async () => {
    for (const path of ["/health", "/status", "/metrics", "/history"]) {
      const head = await fetch(`${router.url}${path}`, { method: "HEAD" });
      expect(head.status, path).toBe(200);
      expect(Number(head.headers.get("content-length")), path).toBeGreaterThan(0);
      expect(await head.text(), path).toBe("");
      expect((await fetch(`${router.url}${path}/`)).status, `${path}/`).toBe(200);
    }
    // A wallet pointed at the router's root rather than /rpc/<chainId> is told where to send.
    const root = await fetch(`${router.url}/`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}' });
    expect(root.status).toBe(405);
    expect(root.headers.get("allow")).toBe("GET, HEAD, OPTIONS");
    expect(((await root.json()) as RpcReply).error!.message).toBe("invalid request: / answers GET and HEAD, not POST; POST JSON-RPC to /rpc/<chainId> (in decimal, such as /rpc/1)");
    const registry = await fetch(`${router.url}/registry`, { method: "POST", body: '{"query":"{ providers { items { id } } }"}' });
    expect(((await registry.json()) as RpcReply).error!.message).toBe("invalid request: /registry answers GET and HEAD, not POST; a GraphQL query of your own goes to the indexer's /graphql");
    const getRpc = await fetch(router.rpcUrl(CHAIN));
    expect(getRpc.status).toBe(405);
    expect(getRpc.headers.get("allow")).toBe("POST, OPTIONS");
    const since = await fetch(`${router.url}/history?since=yesterday`);
    expect(since.status).toBe(400);
    expect(((await since.json()) as { error: string }).error).toMatch(/^since must be a time in unix milliseconds \(such as \d+\), not "yesterday"$/);
    await stillServes();
  });

  it("builds /status and /metrics anew only once the last build is older than ten times what it took", () => {
    let now = 0;
    let builds = 0;
    const page = reusedPage(() => {
      now += 5; // each build takes 5 ms
      return `page ${++builds}`;
    }, () => now);
    expect(page().toString()).toBe("page 1");
    now += 49; // 49 ms after the 5 ms build: within ten times it
    expect(page().toString()).toBe("page 1");
    now += 2; // 51 ms after
    expect(page().toString()).toBe("page 2");
    expect(builds).toBe(2);
  });
});

describe("the dashboard and its data", () => {
  it("serves the dashboard page, script and stylesheet with a strict content security policy", async () => {
    const page = await router.get("/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(page.headers.get("x-din-provider")).toBe("router");
    expect(page.text).toContain('<script type="module" src="/dashboard/app.js"></script>');
    const script = await router.get("/dashboard/app.js");
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.text).toContain("/history?since=");
    expect((await router.get("/dashboard/style.css")).headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect((await router.get("/dashboard/other.js")).status).toBe(404);
  });

  it("keeps each provider's requests per second and latency for GET /history", async () => {
    const [first] = router.status().chains[0].providers;
    const before = Date.now();
    const served = await eventually("traffic in the history", async () => {
      for (let i = 0; i < 20; i++) await router.post(CHAIN, { jsonrpc: "2.0", id: i, method: "eth_blockNumber" });
      const history = (await router.get(`/history?since=${before}`)).json() as HistoryResponse;
      const points = history.chains.find((c) => c.chainId === CHAIN)?.providers.flatMap((p) => p.points) ?? [];
      return points.some(([, perSecond]) => perSecond > 0) ? { history, points } : undefined;
    });
    expect(served.history.intervalMs).toBe(1000);
    expect(served.points.every(([at]) => at > before)).toBe(true);
    expect(served.history.chains[0].providers.map((p) => p.address)).toContain(first.address);
    // The latency of a second is the mean of the attempts in it: plausible for a local node.
    const latencies = served.points.map(([, , ms]) => ms).filter((ms): ms is number => ms !== null);
    expect(latencies.length).toBeGreaterThan(0);
    expect(Math.min(...latencies)).toBeGreaterThan(0);
  });

  it("goes on giving new /history points after the wall clock is set back", async () => {
    const newest = async (since: number) => {
      const history = (await router.get(`/history?since=${since}`)).json() as HistoryResponse;
      return Math.max(since, ...history.chains.flatMap((c) => c.providers.flatMap((p) => p.points.map(([at]) => at))));
    };
    const last = await eventually("a first sample", async () => ((await newest(0)) > 0 ? newest(0) : undefined));
    const wallClock = Date.now;
    const setBack = vi.spyOn(Date, "now").mockImplementation(() => wallClock() - 60_000); // as NTP stepping the clock back a minute
    try {
      const next = await eventually("a point after the dashboard's last", async () => ((await newest(last)) > last ? newest(last) : undefined), 10_000);
      expect(next - last).toBeLessThan(10_000); // the next samples, not a minute back or ahead
    } finally {
      setBack.mockRestore();
    }
  });

  it("answers GET /registry with a clear error when the router has no indexer", async () => {
    const response = await fetch(`${router.url}/registry`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { errors: { message: string }[] }).errors[0].message).toMatch(/no indexer/);
  });
});
