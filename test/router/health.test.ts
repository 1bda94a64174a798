import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import { createUpstreamClient } from "../../router/endpointPolicy.ts";
import { createLogger } from "../../router/log.ts";
import { resolveRoutingOptions } from "../../router/options.ts";
import { startProber } from "../../router/prober.ts";
import { ChainTable } from "../../router/routingTable.ts";
import { providerAddress } from "../helpers/faultyUpstream.ts";
import { waitFor } from "./support.ts";

// The circuit breaker and the probes that test it, on a real HTTP upstream.

const CHAIN = 31337;
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  // Last opened, first closed: probers stop before their HTTP clients close, clients before the nodes they reach.
  for (const close of closers.splice(0).reverse()) await close();
});

/** A JSON-RPC node on 127.0.0.1 that answers eth_chainId with `chainId` (after `delayMs`); counts the calls it gets. */
async function nodeOnChain(chainId: number, delayMs = 0): Promise<{ url: string; calls: () => number }> {
  let calls = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      calls++;
      const call = JSON.parse(Buffer.concat(chunks).toString()) as { id: number; method: string };
      const result = call.method === "eth_chainId" ? `0x${chainId.toString(16)}` : "0x10";
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ jsonrpc: "2.0", id: call.id, result }));
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls: () => calls };
}

function tableWith(url: string, overrides: Parameters<typeof resolveRoutingOptions>[0] = {}): ChainTable {
  const table = new ChainTable(CHAIN, resolveRoutingOptions(overrides));
  table.setProviders([{ address: providerAddress(0), chainId: CHAIN, url, stake: 10n ** 21n, slashedTotal: 0n, name: "node" }]);
  return table;
}

describe("circuit breaker", () => {
  it("opens after failed client calls even when probes succeed between them", () => {
    const [p] = tableWith("http://node.example:8545").providers;
    p.setChainCheck(CHAIN, CHAIN, 0);
    p.setHead(100, 0);
    for (let i = 0; i < 3; i++) {
      p.recordFailure("http_5xx", "HTTP 500", 0);
      p.recordProbeSuccess(5, 0); // eth_blockNumber still answers
    }
    expect(p.state(0)).toBe("circuit_open");
    p.recordSuccess(5); // a client call that succeeds does end the run
    expect(p.consecutiveFailures).toBe(0);
  });

  it("opens for twice as long after each failed half-open probe, up to maxOpenMs, and starts over once proven", () => {
    const table = tableWith("http://node.example:8545", { circuit: { failureThreshold: 3, baseOpenMs: 300, maxOpenMs: 1_000 }, scoring: { probationSuccesses: 2 } });
    const [p] = table.providers;
    p.setChainCheck(CHAIN, CHAIN, 0);
    p.setHead(100, 0);
    for (let i = 0; i < 3; i++) p.recordFailure("http_5xx", "HTTP 500", 0);
    expect(p.reopensAt).toBe(300);
    const reopenings: number[] = [];
    for (let now = 300; reopenings.length < 3; now = p.reopensAt) {
      expect(p.state(now - 1)).toBe("circuit_open");
      expect(p.state(now)).toBe("half_open");
      p.recordProbeFailure("timeout", "probe timed out", now);
      reopenings.push(p.reopensAt - now);
    }
    expect(reopenings).toEqual([600, 1_000, 1_000]); // 300 · 2, 300 · 4 capped, capped

    const closedAt = p.reopensAt;
    p.errorRate = 0.9;
    p.recordProbeSuccess(5, closedAt); // half-open probe answers: probation, error rate restarts from recoveringErrorRate
    expect(p.state(closedAt)).toBe("probation");
    expect(p.errorRate).toBeLessThanOrEqual(0.5);
    p.recordSuccess(5);
    p.recordSuccess(5); // probation over: proven again
    expect(p.state(closedAt)).toBe("healthy");
    for (let i = 0; i < 3; i++) p.recordFailure("http_5xx", "HTTP 500", closedAt);
    expect(p.reopensAt - closedAt).toBe(300); // the next opening starts from the base period
  });

  it("keeps a provider that just joined in probation until it answered probationSuccesses calls in a row", () => {
    // The mutation check: new providers skipping probation, or a failure not restarting its count, passed every test.
    const [p] = tableWith("http://node.example:8545", { scoring: { probationSuccesses: 5 } }).providers;
    p.setChainCheck(CHAIN, CHAIN, 0);
    p.setHead(100, 0);
    expect(p.state(0)).toBe("probation");
    for (let i = 0; i < 3; i++) p.recordSuccess(10);
    expect(p.probationLeft).toBe(2);
    p.recordFailure("http_5xx", "HTTP 500", 0);
    expect(p.probationLeft).toBe(5);
    for (let i = 0; i < 5; i++) p.recordSuccess(10);
    expect(p.state(0)).toBe("healthy");
  });

  it("takes an attempt cut off unanswered as a bound on the score's latency, not on the answered latency a hedge waits for", () => {
    // A re-probe of the security review's fix: with the bounds in the average a hedge waits a
    // multiple of, each call drawn to a provider answering none waited longer, up to seconds.
    const [p] = tableWith("http://node.example:8545").providers;
    p.recordSuccess(10);
    p.recordLatencyAtLeast(5); // below the average: says nothing
    expect([p.latencyMs, p.answeredLatencyMs]).toEqual([10, 10]);
    p.recordLatencyAtLeast(510);
    expect([p.latencyMs, p.answeredLatencyMs]).toEqual([110, 10]); // latencyAlpha 0.2
    expect(p.consecutiveFailures + p.errorRate).toBe(0); // neither a failure nor a success
    p.recordSuccess(10);
    expect([p.latencyMs, p.answeredLatencyMs]).toEqual([90, 10]);
  });

  it("warns when a provider's circuit opens, and says only at info that a half-open probe failed again", () => {
    // A dead endpoint is retried for ever: a warning each time (once a minute each) flooded the log.
    const lines: { level: string; to: string }[] = [];
    const log = createLogger({ level: "info", write: (line) => void lines.push(JSON.parse(line) as { level: string; to: string }) });
    const table = new ChainTable(CHAIN, resolveRoutingOptions({ circuit: { failureThreshold: 3, baseOpenMs: 300, maxOpenMs: 1_000 } }), log);
    table.setProviders([{ address: providerAddress(0), chainId: CHAIN, url: "http://node.example:8545", stake: 10n ** 21n, slashedTotal: 0n, name: "node" }]);
    const [p] = table.providers;
    p.setChainCheck(CHAIN, CHAIN, 0);
    p.setHead(100, 0);
    table.rebuild(0);
    for (let i = 0; i < 3; i++) p.recordFailure("connect", "refused", 0);
    table.rebuild(0);
    for (let i = 0, now = p.reopensAt; i < 3; i++, now = p.reopensAt) {
      table.rebuild(now); // half-open: the next probe decides
      p.recordProbeFailure("connect", "refused", now);
      table.rebuild(now);
    }
    const opened = lines.filter((line) => line.to === "circuit_open").map((line) => line.level);
    expect(opened).toEqual(["warn", "info", "info", "info"]);
    // Named as /status names it (a gateway walkthrough had only addresses to go by).
    expect(lines.find((line) => line.to === "circuit_open")).toMatchObject({ provider: providerAddress(0), name: "node" });
  });

  it("logs every failed half-open probe the prober makes, not only those a reweighing happens to see", async () => {
    // An endpoint that reads each request and cuts the connection: every probe fails, and is counted.
    let probes = 0;
    const server = createServer((req) => {
      probes++;
      req.socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const lines: { from: string; to: string }[] = [];
    const log = createLogger({ level: "info", write: (line) => void lines.push(JSON.parse(line) as { from: string; to: string }) });
    const options = resolveRoutingOptions({ circuit: { failureThreshold: 3, baseOpenMs: 30, maxOpenMs: 60 }, probe: { intervalMs: 40 } });
    const table = new ChainTable(CHAIN, options, log);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    table.setProviders([{ address: providerAddress(0), chainId: CHAIN, url, stake: 10n ** 21n, slashedTotal: 0n, name: "node" }]);
    const [p] = table.providers;
    for (let i = 0; i < 3; i++) p.recordFailure("connect", "refused", performance.now()); // open from the start: every probe is a half-open one
    const client = createUpstreamClient({ devnet: true, maxResponseBytes: 1 << 20, connectionsPerOrigin: 2, connectTimeoutMs: 1_000 });
    closers.push(() => client.close());
    const prober = startProber({ tables: () => [table], client, probe: options.probe });
    await waitFor(() => probes >= 8, "eight half-open probes");
    prober.stop();
    await waitFor(() => !p.eligible(performance.now()) && p.state(performance.now()) === "circuit_open", "the last probe's failure");
    table.refresh(performance.now());
    const failedAgain = lines.filter((line) => line.from === "half_open" && line.to === "circuit_open").length;
    expect(failedAgain).toBe(probes);
  });

  it("probes a half-open provider on the wrong chain at the probe interval, not on every tick", async () => {
    const node = await nodeOnChain(1);
    const table = tableWith(node.url, { circuit: { baseOpenMs: 20 } });
    const [p] = table.providers;
    for (let i = 0; i < 3; i++) p.recordFailure("connect", "refused", performance.now());
    const client = createUpstreamClient({ devnet: true, maxResponseBytes: 1 << 20, connectionsPerOrigin: 2, connectTimeoutMs: 1_000 });
    closers.push(() => client.close());
    const prober = startProber({ tables: () => [table], client, probe: { intervalMs: 60_000, timeoutMs: 1_000, chainIdIntervalMs: 60_000, concurrency: 4 } });
    closers.push(async () => prober.stop());
    await waitFor(() => p.reportedChainId === 1, "the half-open probe");
    expect(p.state(performance.now())).toBe("wrong_chain");
    const after = node.calls();
    for (let i = 0; i < 20; i++) {
      prober.tick();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(node.calls()).toBe(after); // the next probe is a minute away
  });
});

describe("probing", () => {
  const clientFor = () => {
    const client = createUpstreamClient({ devnet: true, maxResponseBytes: 1 << 20, connectionsPerOrigin: 2, connectTimeoutMs: 10_000 });
    closers.push(() => client.close());
    return client;
  };
  const chainOf = (chainId: number, nodes: { url: string }[], first = 0) => {
    const table = new ChainTable(chainId, resolveRoutingOptions());
    table.setProviders(nodes.map((node, i) => ({ address: providerAddress(first + i), chainId, url: node.url, stake: 10n ** 21n, slashedTotal: 0n, name: `node-${first + i}` })));
    return table;
  };
  const probed = (table: ChainTable) => table.providers.every((p) => p.chainCheck === "ok" && p.head === 16);

  it("probes every provider of a large set at its interval, the last as the first", async () => {
    // 500 providers on 500 origins, every 400 ms: 1,250 probes a second, more than 32 slots could
    // start (one each a 100 ms tick), and the first providers, due again, would take every turn.
    const nodes = await Promise.all(Array.from({ length: 500 }, () => nodeOnChain(CHAIN)));
    const table = chainOf(CHAIN, nodes);
    // A timeout long enough that a machine busy with other tests fails no probe (a failed probe puts
    // its provider off for a while: that is not what this test is about).
    const { probe } = resolveRoutingOptions({ probe: { intervalMs: 400, timeoutMs: 10_000 } }); // default concurrency
    const prober = startProber({ tables: () => [table], client: clientFor(), probe });
    closers.push(async () => prober.stop());
    await waitFor(() => probed(table), "every provider's chain id and head probed", 60_000);
    // And again and again, each of them: three more head probes apiece.
    const before = nodes.map((node) => node.calls());
    await waitFor(() => nodes.every((node, i) => node.calls() >= before[i] + 3), "three more probes of every provider", 60_000);
  });

  it("gives every chain its turn when one chain's slow providers would fill the probe slots", async () => {
    const slow = await Promise.all(Array.from({ length: 20 }, () => nodeOnChain(CHAIN, 200)));
    const fast = await Promise.all(Array.from({ length: 5 }, () => nodeOnChain(10)));
    const [busy, other] = [chainOf(CHAIN, slow), chainOf(10, fast, 20)];
    // At most four probes at once, and the first chain's twenty, due every 300 ms, could take them all.
    const prober = startProber({ tables: () => [busy, other], client: clientFor(), probe: { intervalMs: 300, timeoutMs: 1_000, chainIdIntervalMs: 60_000, concurrency: 4 } });
    closers.push(async () => prober.stop());
    await waitFor(() => probed(other), "the other chain's providers probed");
    await waitFor(() => probed(busy), "the busy chain's providers probed");
  });
});
