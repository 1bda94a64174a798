import { fork, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Pool, type Dispatcher } from "undici";
import { createUpstreamClient } from "../../router/endpointPolicy.ts";
import { resolveRoutingOptions } from "../../router/options.ts";
import { ChainTable } from "../../router/routingTable.ts";
import { staticProviderSet, type ProviderRecord } from "../../router/providerSet.ts";
import { startRouter } from "../../router/router.ts";
import { countFlag } from "./table.ts";

// The router's benchmark (`npm run bench`; alone: `node scripts/bench/router.ts`). Every piece runs
// in its own process so none shares an event loop with another: three static JSON-RPC upstreams,
// the system under test, and the load generator (undici, N connections, closed loop). Side by side:
// the upstream hit directly, a plain Node proxy (node:http + undici, round robin, no routing logic;
// once with undici's `request`, once with its leaner `dispatch`) and the
// router, at 32 connections and at 1; then one upstream of three is killed mid-run behind
// the proxy and behind the router, counting the errors clients see; and the cost of drawing a
// provider from a set of 10,000.

/** One line of the benchmark table. */
export type Row = { name: string; value: number; unit: string; note: string };

const self = fileURLToPath(import.meta.url);
const CHAIN = 31337;
const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_getBalance", params: ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"] });

/** What the load generator measured on one target in one slice (latencies in ms). */
export type LoadSlice = { requests: number; errors: number; seconds: number; firstError: string | null; latencies: Float64Array };
/** A slice with the user and system CPU time (µs) the system under test spent in it (NaN for an upstream hit directly). */
export type Slice = LoadSlice & { userUs: number; systemUs: number };
export type Message = { ready?: true; urls?: string[]; url?: string; measuring?: true; slice?: LoadSlice; cpu?: NodeJS.CpuUsage };

/** Systems under test answer `{cpu: true}` with their CPU time so far. */
function answerCpuQueries(): void {
  process.on("message", (m: { cpu?: boolean }) => {
    if (m.cpu) process.send!({ cpu: process.cpuUsage() });
  });
}

// ---------------------------------------------------------------------------------------------
// Roles run in child processes.

/** Three static JSON-RPC responders; `{kill: i}` closes one (sockets reset), `{revive: i}` reopens it. */
async function upstreams(): Promise<void> {
  const servers: Server[] = [];
  const sockets: Set<Socket>[] = [];
  const ports: number[] = [];
  const answer = (id: unknown, result: string) => `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":"${result}"}`;
  for (let i = 0; i < 3; i++) {
    const open = new Set<Socket>();
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const call = JSON.parse(Buffer.concat(chunks).toString()) as { id: unknown; method: string };
        const result = call.method === "eth_chainId" ? "0x7a69" : call.method === "eth_blockNumber" ? "0x100" : "0x21e19e0c9bab2400000";
        const text = answer(call.id, result);
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        res.end(text);
      });
    });
    server.keepAliveTimeout = 60_000;
    server.on("connection", (s) => {
      open.add(s);
      s.on("close", () => open.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    servers.push(server);
    sockets.push(open);
    ports.push((server.address() as AddressInfo).port);
  }
  process.on("message", (m: { kill?: number; revive?: number }) => {
    if (m.kill !== undefined) {
      servers[m.kill].close();
      for (const s of sockets[m.kill]) s.destroy();
    }
    if (m.revive !== undefined) servers[m.revive].listen(ports[m.revive], "127.0.0.1");
  });
  process.send!({ ready: true, urls: ports.map((p) => `http://127.0.0.1:${p}`) });
}

/** The plain proxy as one writes it first: node:http in front, undici's `request` behind, round robin. */
async function proxyRequest(urls: string[]): Promise<void> {
  const pools = urls.map((u) => new Pool(u, { connections: 64, keepAliveTimeout: 60_000 }));
  let next = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const pool = pools[next];
      next = (next + 1) % pools.length;
      pool.request({ path: "/", method: "POST", headers: { "content-type": "application/json" }, body: Buffer.concat(chunks) }).then(
        async (upstream) => {
          const bytes = await upstream.body.bytes();
          res.writeHead(upstream.statusCode, { "content-type": "application/json", "content-length": bytes.byteLength });
          res.end(bytes);
        },
        (error: Error) => {
          res.writeHead(502, { "content-type": "text/plain" });
          res.end(error.message);
        },
      );
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  answerCpuQueries();
  process.send!({ ready: true, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

/**
 * The plain proxy: node:http in front, undici pools behind, round robin, bytes passed through,
 * with undici's leaner dispatch API (its `request` with a body stream costs a few µs more per
 * request). With `client` "router", the router's own HTTP client behind (router/httpClient.ts;
 * compare.ts's `proxy-lean`): beside the router, that isolates what the routing logic costs.
 */
async function proxy(urls: string[], client: "undici" | "router" = "undici"): Promise<void> {
  type Send = (i: number, options: { path: string; method: "POST"; headers: Record<string, string>; body: Buffer }, handler: Dispatcher.DispatchHandler) => void;
  let dispatchTo: Send;
  if (client === "undici") {
    const pools = urls.map((u) => new Pool(u, { connections: 64, keepAliveTimeout: 60_000 }));
    dispatchTo = (i, options, handler) => pools[i].dispatch(options, handler);
  } else {
    const lean = createUpstreamClient({ devnet: true, maxResponseBytes: 1 << 20, connectionsPerOrigin: 64, connectTimeoutMs: 5_000 });
    dispatchTo = (i, options, handler) => lean.dispatch({ origin: urls[i], ...options, body: options.body.toString() }, handler);
  }
  let next = 0;
  const headers = { "content-type": "application/json" };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const upstream = next;
      next = (next + 1) % urls.length;
      const reply: Buffer[] = [];
      let status = 502;
      dispatchTo(
        upstream,
        { path: "/", method: "POST", headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) },
        {
          onRequestStart: () => {},
          onResponseStart: (_controller, statusCode) => {
            status = statusCode;
          },
          onResponseData: (_controller, chunk) => {
            reply.push(chunk);
          },
          onResponseEnd: () => {
            const bytes = reply.length === 1 ? reply[0] : Buffer.concat(reply);
            res.writeHead(status, ["content-type", "application/json", "content-length", String(bytes.length)]);
            res.end(bytes);
          },
          onResponseError: (_controller, error) => {
            res.writeHead(502, ["content-type", "text/plain"]);
            res.end(error.message);
          },
        },
      );
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  answerCpuQueries();
  process.send!({ ready: true, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

/** The router, fed a static set of the three upstreams (devnet mode: they listen on loopback). */
async function router(urls: string[]): Promise<void> {
  const records: ProviderRecord[] = urls.map((url, i) => ({
    address: `0x${(i + 1).toString(16).padStart(40, "0")}`,
    chainId: CHAIN,
    url,
    stake: 1_000n * 10n ** 18n,
    slashedTotal: 0n,
    name: `upstream-${i}`,
  }));
  const r = await startRouter({
    providers: staticProviderSet(records),
    devnet: true,
    logLevel: "silent",
    routing: { probe: { intervalMs: 500, timeoutMs: 1_000, chainIdIntervalMs: 60_000, concurrency: 8 } },
  });
  answerCpuQueries();
  process.send!({ ready: true, url: `${r.rpcUrl(CHAIN)}` });
}

/**
 * The load generator, one process for every target: `{drive: i, rampMs, ms}` runs `connections`
 * closed loops against target i alone (each sends its next request when its last returned), says
 * `{measuring: true}` once the ramp is over and answers `{slice}`, what it measured.
 */
async function load(connections: number, urls: string[]): Promise<void> {
  const targets = urls.map((u) => {
    const url = new URL(u);
    return { path: url.pathname, pool: new Pool(url.origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 }) };
  });
  const drive = async (target: number, rampMs: number, ms: number) => {
    const { path, pool } = targets[target];
    let latencies = new Float64Array(1 << 16);
    let count = 0;
    let errors = 0;
    let firstError: string | null = null;
    let measuring = false;
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const started = performance.now();
        let ok = false;
        try {
          const response = await pool.request({ path, method: "POST", headers: { "content-type": "application/json" }, body });
          const text = await response.body.text();
          ok = response.statusCode === 200 && text.includes('"result"');
          if (!ok && firstError === null && measuring) firstError = `HTTP ${response.statusCode} ${text.slice(0, 200)}`;
        } catch (error) {
          if (firstError === null && measuring) firstError = (error as Error).message;
        }
        if (!measuring) continue;
        if (!ok) errors++;
        if (count === latencies.length) {
          const grown = new Float64Array(2 * count);
          grown.set(latencies);
          latencies = grown;
        }
        latencies[count++] = performance.now() - started;
      }
    };
    const loops = Array.from({ length: connections }, loop);
    await new Promise((resolve) => setTimeout(resolve, rampMs));
    measuring = true;
    const began = performance.now();
    process.send!({ measuring: true });
    await new Promise((resolve) => setTimeout(resolve, ms));
    measuring = false;
    stop = true;
    const seconds = (performance.now() - began) / 1000;
    await Promise.all(loops);
    const slice: LoadSlice = { requests: count, errors, seconds, firstError, latencies: latencies.slice(0, count) };
    process.send!({ slice });
  };
  process.on("message", (m: { drive?: number; rampMs?: number; ms?: number }) => {
    if (m.drive !== undefined) void drive(m.drive, m.rampMs!, m.ms!);
  });
  process.send!({ ready: true });
}

// ---------------------------------------------------------------------------------------------
// The conductor.

/** Starts a role of this bench script (or of `script`, another checkout's copy) in a child process; resolves with its first message. */
export function start(role: string, args: string[], script = self): Promise<{ child: ChildProcess; message: Message }> {
  // "advanced": the load generator's latencies cross as a Float64Array.
  const child = fork(script, ["--role", role, ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" });
  return new Promise((resolve, reject) => {
    child.once("message", (message: Message) => resolve({ child, message }));
    child.once("exit", (code) => reject(new Error(`bench ${role} of ${script} exited with code ${code}`)));
  });
}

/** A system under test's CPU time so far (it answers `{cpu: true}`, answerCpuQueries). */
export function cpuOf(sut: ChildProcess): Promise<NodeJS.CpuUsage> {
  return nextMessage(sut, "cpu", () => sut.send({ cpu: true }));
}

/** The next message of `child` that has `key`, once `ask` has been done. */
function nextMessage<K extends keyof Message>(child: ChildProcess, key: K, ask: () => void): Promise<NonNullable<Message[K]>> {
  return new Promise((resolve) => {
    const on = (m: Message) => {
      if (m[key] === undefined) return;
      child.off("message", on);
      resolve(m[key]!);
    };
    child.on("message", on);
    ask();
  });
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/** The load generator (`loader`) drives its target `target` for `ms` after a ramp of `rampMs`; `during` runs once measuring has begun. */
export async function drive(loader: ChildProcess, target: number, ms: number, sut?: ChildProcess, rampMs = 50, during?: () => Promise<void>): Promise<Slice> {
  const measuring = nextMessage(loader, "measuring", () => {});
  const done = nextMessage(loader, "slice", () => loader.send({ drive: target, rampMs, ms }));
  await measuring;
  const before = sut && (await cpuOf(sut));
  if (during) await during();
  const slice = await done;
  const after = sut && (await cpuOf(sut));
  return { ...slice, userUs: before && after ? after.user - before.user : Number.NaN, systemUs: before && after ? after.system - before.system : Number.NaN };
}

/**
 * Drives the loader's targets in turn, `slices` times `sliceMs` each after a ramp of 50 ms not
 * counted, in reverse order every other turn so that none always runs right after another, each
 * target warmed up for a second first; per target, its slices (`turned` hears each turn done). The
 * speed of this shared 2-core host drifts by up to ±25 % from one second to the next: short slices
 * taken in turn meet the drift alike, and pooled they average it out (3 s rounds, a target's
 * measured seconds apart, did not: the router / proxy ratio ran 0.65–1.15× between the rounds of
 * one run).
 */
export async function interleave(loader: ChildProcess, suts: (ChildProcess | undefined)[], slices: number, sliceMs: number, turned?: (turns: number) => void): Promise<Slice[][]> {
  for (const [i, sut] of suts.entries()) await drive(loader, i, 1_000, sut);
  const measured: Slice[][] = suts.map(() => []);
  const order = suts.map((_, i) => i);
  for (let turn = 0; turn < slices; turn++) {
    for (const i of turn % 2 === 0 ? order : order.toReversed()) measured[i].push(await drive(loader, i, sliceMs, suts[i]));
    turned?.(turn + 1);
  }
  return measured;
}

/** Slices pooled: throughput, latency quantiles over every request (µs), CPU per request (µs). */
export function pooled(slices: readonly Slice[]) {
  const sum = (pick: (s: Slice) => number) => slices.reduce((total, s) => total + pick(s), 0);
  const requests = sum((s) => s.requests);
  const latencies = new Float64Array(requests);
  let at = 0;
  for (const s of slices) {
    latencies.set(s.latencies, at);
    at += s.latencies.length;
  }
  latencies.sort();
  const q = (p: number) => (latencies[Math.min(requests - 1, Math.floor(p * requests))] ?? Number.NaN) * 1000;
  return {
    requests,
    errors: sum((s) => s.errors),
    firstError: slices.find((s) => s.firstError !== null)?.firstError ?? null,
    rps: requests / sum((s) => s.seconds),
    p50: q(0.5),
    p99: q(0.99),
    userUs: sum((s) => s.userUs) / requests,
    systemUs: sum((s) => s.systemUs) / requests,
  };
}

/** ns per draw from a chain of 10,000 providers with varied stake. */
function pickCost(): number {
  const options = resolveRoutingOptions();
  const table = new ChainTable(CHAIN, options);
  table.setProviders(
    Array.from({ length: 10_000 }, (_, i) => ({
      address: `0x${(i + 1).toString(16).padStart(40, "0")}`,
      chainId: CHAIN,
      url: `https://node-${i}.example`,
      stake: BigInt(1_000 + (i % 977) * 37) * 10n ** 18n,
      slashedTotal: 0n,
      name: "",
    })),
  );
  for (const p of table.providers) {
    p.setChainCheck(CHAIN, CHAIN, 0);
    p.setHead(100, 0);
    p.probationLeft = 0;
    p.latencyMs = 20 + (p.stakeTokens % 50);
  }
  const now = performance.now();
  table.rebuild(now);
  let sink = 0;
  for (let i = 0; i < 200_000; i++) sink += table.pick(Math.random, null, now)!.stakeTokens; // warm up
  const n = 2_000_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sink += table.pick(Math.random, null, now)!.stakeTokens;
  const ns = ((performance.now() - t0) * 1e6) / n;
  if (sink < 0) console.log(sink);
  return ns;
}

/** The whole benchmark: about two and a quarter minutes with the defaults (40 slices of 250 ms per target and connection count; `--slices`, `--slice` ms). */
export async function benchRouter(options: { slices?: number; sliceMs?: number } = {}): Promise<Row[]> {
  const slices = options.slices ?? 40;
  const sliceMs = options.sliceMs ?? 250;
  const rows: Row[] = [];
  const up = await start("upstreams", []);
  const urls = up.message.urls!;
  const pr = await start("proxy-request", urls);
  const px = await start("proxy", urls);
  const rt = await start("router", urls);
  const targets: [string, string, ChildProcess | undefined][] = [
    ["upstream direct", urls[0], undefined],
    ["plain proxy (undici request)", pr.message.url!, pr.child],
    ["plain proxy (undici dispatch)", px.message.url!, px.child],
    ["router", rt.message.url!, rt.child],
  ];
  const [direct, routed] = [0, 3]; // indices in targets
  const loaders: ChildProcess[] = [];
  try {
    for (const connections of [32, 1]) {
      const loader = (await start("load", [String(connections), ...targets.map(([, url]) => url)])).child;
      loaders.push(loader);
      const measured = await interleave(loader, targets.map(([, , sut]) => sut), slices, sliceMs);
      for (const [i, [name, , sut]] of targets.entries()) {
        const f = pooled(measured[i]);
        const tag = `${name}, ${connections} conn`;
        rows.push({ name: `${tag}: throughput`, value: f.rps, unit: "req/s", note: `${f.errors} errors` });
        rows.push({ name: `${tag}: p50 latency`, value: f.p50, unit: "µs", note: "" });
        rows.push({ name: `${tag}: p99 latency`, value: f.p99, unit: "µs", note: "" });
        if (sut !== undefined) rows.push({ name: `${tag}: CPU per request`, value: f.userUs + f.systemUs, unit: "µs", note: "user + system, whole process" });
      }
      // Each ratio over the whole run, and its range over the run's four quarters: how far the
      // drift left in a quarter of the slices moves it.
      const quarters = [0, 1, 2, 3].map((q) => [Math.floor((q * slices) / 4), Math.floor(((q + 1) * slices) / 4)]).filter(([from, to]) => to > from);
      type Pooled = ReturnType<typeof pooled>;
      const paired = (plain: number, ratio: (routed: Pooled, plain: Pooled, direct: Pooled) => number) => {
        const of = (from: number, to: number) => {
          const [r, p, d] = [routed, plain, direct].map((i) => pooled(measured[i].slice(from, to)));
          return ratio(r, p, d);
        };
        const values = quarters.map(([from, to]) => of(from, to));
        return { value: of(0, slices), note: `quarters ${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}` };
      };
      for (const [plain, kind] of [[1, "undici request"], [2, "undici dispatch"]] as const) {
        const throughput = paired(plain, (r, p) => r.rps / p.rps);
        rows.push({ name: `router / proxy (${kind}) throughput, ${connections} conn`, value: throughput.value, unit: "×", note: `goal ≥ 0.9; ${throughput.note}` });
        // NaN when the proxy added nothing measurable (its p50 at or below the upstream's).
        const added = paired(plain, (r, p, d) => (p.p50 > d.p50 ? (r.p50 - d.p50) / (p.p50 - d.p50) : Number.NaN));
        rows.push({ name: `router / proxy (${kind}) added p50 latency, ${connections} conn`, value: added.value, unit: "×", note: `goal ≤ 1.2; ${added.note}` });
        // The cause of both: what the router's own work costs per request, beside the proxy's.
        const extra = paired(plain, (r, p) => r.userUs + r.systemUs - p.userUs - p.systemUs);
        rows.push({ name: `router − proxy (${kind}) CPU per request, ${connections} conn`, value: extra.value, unit: "µs", note: extra.note });
      }
      if (connections !== 32) continue;
      // Kill one upstream of three a second into a 4 s run, behind the proxy and behind the router.
      for (const i of [2, routed]) {
        const [name, , sut] = targets[i];
        const killed = async () => {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          up.child.send({ kill: 2 });
        };
        const r = pooled([await drive(loader, i, 4_000, sut, 1_000, killed)]);
        up.child.send({ revive: 2 });
        await new Promise((resolve) => setTimeout(resolve, 3_000)); // the router's circuit half-opens and recovers
        rows.push({
          name: `${name}, 32 conn, 1 of 3 upstreams killed: failed requests`,
          value: r.errors,
          unit: "requests",
          note: `of ${r.requests}${r.firstError ? `; first: ${r.firstError.slice(0, 80)}` : ""}${i === routed ? "; goal 0" : ""}`,
        });
      }
    }
  } finally {
    for (const c of [...loaders, rt.child, px.child, pr.child, up.child]) await stopChild(c);
  }
  rows.push({ name: "choose a provider among 10,000", value: pickCost() / 1000, unit: "µs", note: "goal ≤ 5 µs" });
  return rows;
}

/** The rows as a Markdown table. */
export function formatRows(rows: readonly Row[]): string {
  const format = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));
  const lines = ["| measure | value | unit | note |", "|---|---:|---|---|"];
  for (const r of rows) lines.push(`| ${r.name} | ${format(r.value)} | ${r.unit} | ${r.note} |`);
  return lines.join("\n");
}

const roleIndex = process.argv.indexOf("--role");
if (roleIndex >= 0) {
  const [role, ...args] = process.argv.slice(roleIndex + 1);
  process.on("SIGTERM", () => process.exit(0));
  process.on("disconnect", () => process.exit(0)); // the conductor is gone: so are we
  const roles: Record<string, () => Promise<void>> = {
    upstreams: () => upstreams(),
    proxy: () => proxy(args),
    "proxy-lean": () => proxy(args, "router"),
    "proxy-request": () => proxyRequest(args),
    router: () => router(args),
    load: () => load(Number(args[0]), args.slice(1)),
  };
  roles[role]().catch((error: Error) => {
    console.error(error);
    process.exit(1);
  });
} else if (process.argv[1] === self) {
  benchRouter({ slices: countFlag("--slices"), sliceMs: countFlag("--slice") }).then(
    (rows) => console.log(formatRows(rows)),
    (error: Error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
