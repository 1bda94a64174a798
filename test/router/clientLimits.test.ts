import { connect, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { clientKey } from "../../router/connections.ts";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { recordsFor, startFaultyUpstreams, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { startRouter, type TestRouter } from "../helpers/startRouter.ts";
import { waitFor } from "./support.ts";

// What one client can hold of the router: connections, time, memory and request slots. The
// "attackers" connect from 127.0.0.2 and up, one address per test (Linux routes all of 127/8 to
// loopback); honest calls come from 127.0.0.1, so the per-address cap tells them apart as it
// would two hosts.

const CHAIN = 31337;
const MiB = 1024 * 1024;
const free = 16 * 1024; // the first 16 KiB of each body and each answer are not charged
const limits = {
  maxConcurrentRequests: 4,
  maxBodyBytes: 6 * MiB,
  clientBufferBytes: 16 * MiB,
  maxConnectionsPerClient: 8,
  requestReadTimeoutMs: 1_500,
};
let chain: Chain;
let nodes: ProviderNode[];
let router: TestRouter;
const sockets: Socket[] = [];

type RawConnection = { socket: Socket; text: () => string; closed: Promise<void> };

/** A plain TCP connection to the router from `from`, collecting everything it receives. */
async function rawConnection(from: string): Promise<RawConnection> {
  const socket = connect({ host: "127.0.0.1", port: router.port, localAddress: from });
  sockets.push(socket);
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString("utf8")));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, text: () => received, closed };
}

/** Starts a POST of `declared` bytes and sends only `sent` of them. */
async function stalledUpload(from: string, declared: number, sent: number): Promise<RawConnection> {
  const c = await rawConnection(from);
  c.socket.write(`POST /rpc/${CHAIN} HTTP/1.1\r\nhost: router\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n\r\n`);
  c.socket.write(`[${" ".repeat(sent - 1)}`);
  return c;
}

async function honestCall(): Promise<{ status: number; body: { result?: string; error?: { code: number; message: string } } }> {
  const answer = await router.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] });
  return { status: answer.status, body: answer.json() as { result?: string } };
}

async function gauge(name: string): Promise<number> {
  const text = (await router.get("/metrics")).text;
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1]);
}

beforeAll(async () => {
  chain = await startChain({ blockIntervalMs: 0 });
  nodes = await startFaultyUpstreams(chain.rpcUrl, 2, 150); // slow enough to keep requests in flight
  router = await startRouter({ records: recordsFor(nodes, CHAIN, [1_000, 1_000]), routing: { limits, failover: { hedge: false } } });
  await waitFor(() => router.status().chains[0].eligibleProviders === 2, "both providers eligible");
});

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

afterAll(async () => {
  await router?.stop();
  for (const node of nodes ?? []) await node.stop();
  await chain?.stop();
});

describe("one client's share of the router", () => {
  it("does not let stalled uploads take the request slots or more memory than the budget", async () => {
    // Six uploads, more than the four request slots; 5 MiB of a 6 MiB body each, so three fit the
    // 16 MiB budget (each charged 5 MiB less the free 16 KiB) and the rest are turned away.
    const stalled = await Promise.all(Array.from({ length: 6 }, () => stalledUpload("127.0.0.2", 6 * MiB, 5 * MiB)));
    await waitFor(() => stalled.filter((c) => c.text().startsWith("HTTP/1.1 503")).length >= 3, "uploads past the budget refused");
    const refused = stalled.filter((c) => c.text().startsWith("HTTP/1.1 503"));
    expect(refused).toHaveLength(3);
    expect(refused[0].text()).toMatch(/"code":-32005.*at capacity/);
    expect((await router.get("/metrics")).text).toMatch(/^din_router_refused_total\{reason="over_budget"\} 3$/m);
    await waitFor(async () => (await gauge("din_router_client_buffer_bytes")) === 3 * (5 * MiB - free), "three uploads held in the budget");

    const honest = await honestCall();
    expect(honest.status).toBe(200);
    expect(honest.body.result).toMatch(/^0x[0-9a-f]+$/);

    for (const c of stalled) c.socket.destroy();
    await waitFor(async () => (await gauge("din_router_client_buffer_bytes")) === 0, "the budget given back");
  });

  it("holds an answer a client does not read against the budget, and refuses one that would overdraw it", async () => {
    for (const node of nodes) await node.setFault({ kind: "oversized", bytes: 12 * MiB, method: "eth_getLogs" });
    try {
      const getLogs = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_getLogs", params: [{}] });
      const request = `POST /rpc/${CHAIN} HTTP/1.1\r\nhost: router\r\ncontent-type: application/json\r\ncontent-length: ${getLogs.length}\r\n\r\n${getLogs}`;
      const sleeper = await rawConnection("127.0.0.5");
      sleeper.socket.pause(); // reads nothing: the kernel's buffers fill, the rest stays in the router
      sleeper.socket.write(request);
      await waitFor(async () => (await gauge("din_router_client_buffer_bytes")) > 12 * MiB - free, "the unread answer charged");

      const second = await rawConnection("127.0.0.6");
      second.socket.write(request);
      await waitFor(() => second.text().includes("}"), "the second answer");
      expect(second.text()).toMatch(/^HTTP\/1\.1 503/);
      expect(second.text()).toMatch(/"code":-32005.*at capacity/);
      expect((await router.get("/metrics")).text).toMatch(/^din_router_refused_total\{reason="answer_over_budget"\} 1$/m);
      expect((await honestCall()).status).toBe(200); // small answers are never refused for the budget

      sleeper.socket.resume();
      await waitFor(async () => (await gauge("din_router_client_buffer_bytes")) === 0, "the budget given back once read");
      expect(sleeper.text()).toMatch(/^HTTP\/1\.1 200/);
      expect(sleeper.text().length).toBeGreaterThan(12 * MiB);
    } finally {
      for (const node of nodes) await node.setFault({ kind: "none" });
    }
  });

  it("turns away a client's connections past its cap with a reason, and serves other clients", async () => {
    const mine = await Promise.all(Array.from({ length: limits.maxConnectionsPerClient }, () => rawConnection("127.0.0.3")));
    const extra = await rawConnection("127.0.0.3");
    await extra.closed;
    expect(extra.text()).toMatch(/^HTTP\/1\.1 503/);
    expect(extra.text()).toMatch(/too many connections from your address \(at most 8\)/);
    expect(mine.map((c) => c.text())).toEqual(mine.map(() => "")); // the first eight are untouched
    expect((await honestCall()).status).toBe(200);
  });

  it("answers a request that does not arrive in time with 408 and a JSON-RPC error", async () => {
    const slow = await stalledUpload("127.0.0.4", 100, 10);
    await slow.closed;
    expect(slow.text()).toMatch(/^HTTP\/1\.1 408/);
    expect(slow.text()).toMatch(/"code":-32005,"message":"request timeout: the whole request must arrive within 1\.5 s"/);
    expect((await router.get("/metrics")).text).toMatch(/^din_router_refused_total\{reason="request_timeout"\} [1-9]/m);
  });

  it("refuses calls past the request slots once their bodies are in, and keeps the connection", async () => {
    // Six at once on one address (under its cap of eight connections), four slots, slow providers.
    const answers = await Promise.all(Array.from({ length: 6 }, () => honestCall()));
    const busy = answers.filter((a) => a.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    expect(busy[0].body.error).toMatchObject({ code: -32005, message: "the router is at capacity; retry shortly" });
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(limits.maxConcurrentRequests);
    expect((await honestCall()).status).toBe(200);
  });
});

describe("client addresses", () => {
  it("counts an IPv4 client by its address, also written IPv4-mapped, and an IPv6 one by its /64", () => {
    expect(clientKey("203.0.113.7")).toBe("203.0.113.7");
    expect(clientKey("::ffff:203.0.113.7")).toBe("203.0.113.7");
    expect(clientKey("2001:db8:1:2:aaaa::1")).toBe(clientKey("2001:db8:1:2:ffff:1:2:3"));
    expect(clientKey("2001:db8:1:2::1")).not.toBe(clientKey("2001:db8:1:3::1"));
  });
});
