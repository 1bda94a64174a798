import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { blockParamOf } from "../router/blocks.ts";
import { resultTypesOf } from "../router/upstream.ts";

// A provider's node as the outside world sees it: an HTTP JSON-RPC server in front of a chain,
// with its own latency and faults that can be switched on and off (in process, or over a small
// admin HTTP API on a separate port, so even "refuse connections" can be undone). The devnet runs
// several; the router's tests use them to fail in every way a stranger's node can.

export type Fault =
  | { kind: "none" }
  /** Stop listening: connections are refused until the fault is cleared. */
  | { kind: "refuse" }
  /** Accept the request, then reset the connection without answering. */
  | { kind: "reset" }
  /** Accept the request (every one, or one method's) and never answer. */
  | { kind: "hang"; method?: string }
  /** Answer every request, or one method's, with this HTTP status (500, 502, 503, 429, …). */
  | { kind: "status"; status: number; method?: string }
  /** Answer eth_chainId and net_version with another chain. */
  | { kind: "wrongChain"; chainId: number }
  /** Answer eth_blockNumber with a frozen head (default: the head when the fault is set). */
  | { kind: "staleHead"; head?: number }
  /**
   * Answer as a node whose chain ends at `head` (default: the head when the fault is set): its
   * eth_blockNumber, "latest" and the logs stop there; a later block is unknown (null, or "header
   * not found" for state at it).
   */
  | { kind: "behind"; head?: number }
  /** Answer eth_blockNumber with an absurd height. */
  | { kind: "absurdHead" }
  /** Answer 200, then a space every `everyMs` (default 200) and never the answer: each byte restarts an idle timer. */
  | { kind: "trickle"; everyMs?: number }
  /** Answer with a body that is not JSON. */
  | { kind: "malformed" }
  /** Answer with the right shape but another id. */
  | { kind: "wrongId" }
  /**
   * Answer with a valid but huge JSON-RPC result (default 32 MiB), to every call or to one
   * method's: a hex string (inside a list or an object where the method's result is one), or with
   * `dense` a list of empty objects (`[{},{},…]`, a million values a few megabytes); `unfinished`:
   * send that much of it and never the end.
   */
  | { kind: "oversized"; bytes?: number; method?: string; unfinished?: boolean; dense?: boolean }
  /** Answer one method's calls with this result (e.g. a string where a list is due). */
  | { kind: "result"; method: string; result: unknown }
  /** Answer with a redirect (e.g. to a private address). */
  | { kind: "redirect"; location: string }
  /**
   * Answer with a JSON-RPC error object (e.g. -32005 rate limited), to every call or to one
   * method's; `nullId`: with id null, as a node answers a request it could not read.
   */
  | { kind: "rpcError"; code: number; message: string; method?: string; nullId?: boolean }
  /**
   * Answer one method's calls (or every call) with a result nested this many lists deep: `[[[…]]]`;
   * `beside`: with an empty list as the result, and the nesting in a member of its own.
   */
  | { kind: "deep"; levels: number; method?: string; beside?: boolean }
  /** Answer as a node on a fork: blocks and logs as the chain has them, under other block hashes. */
  | { kind: "forked" }
  /** Answer eth_getLogs with a member of its own (`padding`, this many characters) in each log. */
  | { kind: "paddedLogs"; bytes: number }
  /** Answer truly, one byte per write and a turn of the event loop between. */
  | { kind: "dribble" };

/**
 * Every fault's kind with its parameters, `?` for an optional one (a Record, so a kind added to
 * Fault must be added here too): the admin API refuses other kinds and parameters (a walkthrough's
 * `{"kind":"behind","blocks":20}` was taken, and echoed, as if it meant something), and lists
 * them at GET /faults.
 */
const faultParameters: Record<Fault["kind"], readonly string[]> = {
  none: [],
  refuse: [],
  reset: [],
  hang: ["method?"],
  status: ["status", "method?"],
  wrongChain: ["chainId"],
  staleHead: ["head?"],
  behind: ["head?"],
  absurdHead: [],
  trickle: ["everyMs?"],
  malformed: [],
  wrongId: [],
  oversized: ["bytes?", "method?", "unfinished?", "dense?"],
  result: ["method", "result"],
  redirect: ["location"],
  rpcError: ["code", "message", "method?", "nullId?"],
  deep: ["levels", "method?", "beside?"],
  forked: [],
  paddedLogs: ["bytes"],
  dribble: [],
};

/** The fault a POST /fault body asks for; throws, saying what is wrong, for an unknown kind or parameter, or a missing one. */
function askedFault(asked: unknown): Fault {
  const kind = (asked as { kind?: unknown } | null)?.kind;
  if (typeof kind !== "string" || !Object.hasOwn(faultParameters, kind)) {
    throw new Error(`unknown fault kind ${JSON.stringify(kind)}: one of ${Object.keys(faultParameters).join(", ")} (GET /faults lists their parameters)`);
  }
  const parameters = faultParameters[kind as Fault["kind"]];
  const takes = parameters.length === 0 ? "no parameter" : parameters.map((name) => name.replace(/\?$/, " (optional)")).join(", ");
  const unknown = Object.keys(asked as object).find((name) => name !== "kind" && !parameters.includes(name) && !parameters.includes(`${name}?`));
  if (unknown !== undefined) throw new Error(`fault "${kind}" takes ${takes}, not "${unknown}"`);
  const missing = parameters.find((name) => !name.endsWith("?") && !Object.hasOwn(asked as object, name));
  if (missing !== undefined) throw new Error(`fault "${kind}" needs ${missing} (it takes ${takes})`);
  return asked as Fault;
}

export type StartProviderNodeOptions = {
  /** The chain's JSON-RPC URL this node forwards to. */
  upstreamUrl: string;
  /** Port to listen on (0 or omitted: the OS picks). */
  port?: number;
  host?: string;
  /** Extra latency on every answer (ms). */
  latencyMs?: number;
  /** Port of the admin API (0 or omitted: the OS picks; null: no admin API). */
  adminPort?: number | null;
  fault?: Fault;
};

export type ProviderNodeStats = {
  requests: number;
  /** Connections accepted. */
  connections: number;
  byMethod: Record<string, number>;
  /** Every request header name this node has received (lower case). */
  headerNames: string[];
};

export type ProviderNode = {
  url: string;
  port: number;
  /** POST /fault {kind,…} sets the fault; GET /stats returns the counts; null without admin API. */
  adminUrl: string | null;
  setFault: (fault: Fault) => Promise<void>;
  fault: () => Fault;
  setLatency: (ms: number) => void;
  stats: () => ProviderNodeStats;
  resetStats: () => void;
  stop: () => Promise<void>;
};

type Call = { id?: unknown; method?: unknown; params?: unknown };

const newestTags: ReadonlySet<unknown> = new Set(["latest", "pending", "safe", "finalized"]);

/**
 * How a node whose chain ends at `head` takes `call`: its own answer (a block it lacks), the call
 * with its blocks brought back to `head` ("latest", a log range past it), or null (as the chain).
 */
function behindAt(call: Call, head: number): { answer: object } | { call: Call } | null {
  const method = String(call.method);
  const hex = `0x${head.toString(16)}`;
  if (method === "eth_blockNumber") return { answer: { result: hex } };
  if (!Array.isArray(call.params)) return null;
  const params = [...(call.params as unknown[])];
  if (method === "eth_getLogs" && typeof params[0] === "object" && params[0] !== null) {
    const filter = { ...(params[0] as Record<string, unknown>) };
    if (filter.blockHash !== undefined) return null;
    const from = typeof filter.fromBlock === "string" && filter.fromBlock.startsWith("0x") ? Number(filter.fromBlock) : null;
    if (from !== null && from > head) return { answer: { result: [] } };
    const to = filter.toBlock;
    if (to === undefined || newestTags.has(to) || (typeof to === "string" && to.startsWith("0x") && Number(to) > head)) filter.toBlock = hex;
    params[0] = filter;
    return { call: { ...call, params } };
  }
  const index = blockParamOf(method);
  if (index === undefined) return null;
  const block = params[index];
  if (newestTags.has(block)) params[index] = hex;
  else if (typeof block === "string" && block.startsWith("0x") && Number(block) > head) {
    const nullable = resultTypesOf(method)?.includes("null") ?? false;
    return { answer: nullable ? { result: null } : { error: { code: -32000, message: "header not found" } } };
  }
  return { call: { ...call, params } };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** A block, or a list of logs, with every block hash changed as a fork would have it. */
function onFork(result: unknown): unknown {
  const other = (hash: unknown) => (typeof hash === "string" ? `0x${hash.slice(2).split("").reverse().join("")}` : hash);
  if (Array.isArray(result)) return result.map((log: Record<string, unknown>) => ({ ...log, blockHash: other(log.blockHash) }));
  if (typeof result !== "object" || result === null) return result;
  const block = result as Record<string, unknown>;
  return { ...block, hash: other(block.hash), parentHash: other(block.parentHash) };
}

/** Waits until `res` can take more, or is gone; leaves no listener behind either way. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done).off("close", done);
      resolve();
    };
    res.on("drain", done).on("close", done);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Starts a provider node in front of `upstreamUrl`. */
export async function startProviderNode(options: StartProviderNodeOptions): Promise<ProviderNode> {
  const upstream = new URL(options.upstreamUrl);
  const pool = new Pool(upstream.origin, { connections: 32 });
  const upstreamPath = `${upstream.pathname}${upstream.search}` || "/";
  const host = options.host ?? "127.0.0.1";
  let fault: Fault = options.fault ?? { kind: "none" };
  let latencyMs = options.latencyMs ?? 0;
  let stats = { requests: 0, connections: 0, byMethod: {} as Record<string, number>, headerNames: new Set<string>() };
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();

  const forward = async (body: Buffer): Promise<{ status: number; text: string }> => {
    const response = await pool.request({ path: upstreamPath, method: "POST", headers: { "content-type": "application/json" }, body });
    return { status: response.statusCode, text: await response.body.text() };
  };

  /** The chain's answer to `body` with its result changed by `change`. */
  const altered = async (body: Buffer, change: (result: unknown) => unknown): Promise<unknown> => {
    const reply = JSON.parse((await forward(body)).text) as { result?: unknown };
    return { ...reply, result: change(reply.result) };
  };

  const currentHead = async (): Promise<number> => {
    const { text } = await forward(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'));
    return Number.parseInt((JSON.parse(text) as { result: string }).result, 16);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    let parsed: Call | Call[] | null = null;
    try {
      parsed = JSON.parse(body.toString("utf8")) as Call | Call[];
    } catch {
      parsed = null;
    }
    const single = parsed !== null && !Array.isArray(parsed) ? parsed : null;
    const method = single !== null && typeof single.method === "string" ? single.method : Array.isArray(parsed) ? "batch" : "invalid";
    stats.requests++;
    for (const name of Object.keys(req.headers)) stats.headerNames.add(name);
    stats.byMethod[method] = (stats.byMethod[method] ?? 0) + 1;
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    const f = fault;
    const id = single?.id ?? null;
    switch (f.kind) {
      case "reset":
        req.socket.destroy();
        return;
      case "hang":
        if (f.method !== undefined && f.method !== method) break;
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return;
      case "status":
        if (f.method !== undefined && f.method !== method) break;
        json(res, f.status, { error: `injected HTTP ${f.status}` });
        return;
      case "trickle": {
        res.writeHead(200, { "content-type": "application/json" });
        const drip = setInterval(() => res.write(" "), f.everyMs ?? 200);
        hanging.add(res);
        res.on("close", () => {
          clearInterval(drip);
          hanging.delete(res);
        });
        return;
      }
      case "malformed":
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"jsonrpc":"2.0","id":' + JSON.stringify(id) + ',"result":"0x1"');
        return;
      case "wrongId":
        json(res, 200, { jsonrpc: "2.0", id: typeof id === "number" ? id + 1000 : `${String(id)}-other`, result: "0x1" });
        return;
      case "redirect":
        res.writeHead(307, { location: f.location, "content-length": 0 });
        res.end();
        return;
      case "rpcError":
        if (f.method !== undefined && f.method !== method) break;
        json(res, 200, { jsonrpc: "2.0", id: f.nullId ? null : id, error: { code: f.code, message: f.message } });
        return;
      case "deep":
        if (f.method !== undefined && f.method !== method) break;
        // Written out, not stringified: JSON.stringify runs out of stack a few thousand levels down.
        const levels = Math.min(Math.max(Math.trunc(Number(f.levels)) || 1, 1), 1_000_000); // the admin API takes any JSON
        res.writeHead(200, { "content-type": "application/json" });
        const nested = `${"[".repeat(levels)}${"]".repeat(levels)}`;
        res.end(`{"jsonrpc":"2.0","id":${JSON.stringify(id)},${f.beside ? `"result":[],"extra":${nested}` : `"result":${nested}`}}`);
        return;
      case "oversized": {
        if (f.method !== undefined && f.method !== method) break;
        const total = f.bytes ?? 32 * 1024 * 1024;
        res.writeHead(200, { "content-type": "application/json" });
        // An oversized answer keeps its method's type (the router's table): an object, or a list of
        // one (as logs and receipts are: the router reads each as one), holds the long string.
        const types = resultTypesOf(method) ?? [];
        const [open, close] = f.dense ? ["[", "{}]"] : types.includes("array") ? ['[{"data":"0x', '"}]'] : types.includes("object") ? ['{"data":"0x', '"}'] : ['"0x', '"'];
        res.write(`{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${open}`);
        const chunk = f.dense ? Buffer.from("{},".repeat(21_845)) : Buffer.alloc(64 * 1024, "0");
        let sent = 0;
        while (sent < total && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) await drainedOrClosed(res);
        }
        if (f.unfinished) {
          hanging.add(res);
          res.on("close", () => hanging.delete(res));
        } else res.end(`${close}}`);
        return;
      }
      case "result":
        if (f.method !== method) break;
        json(res, 200, { jsonrpc: "2.0", id, result: f.result });
        return;
      case "wrongChain":
        if (method === "eth_chainId") return json(res, 200, { jsonrpc: "2.0", id, result: `0x${f.chainId.toString(16)}` });
        if (method === "net_version") return json(res, 200, { jsonrpc: "2.0", id, result: String(f.chainId) });
        break;
      case "staleHead":
        if (method === "eth_blockNumber") return json(res, 200, { jsonrpc: "2.0", id, result: `0x${(f.head ?? 0).toString(16)}` });
        break;
      case "behind": {
        const taken = single === null ? null : behindAt(single, f.head ?? 0);
        if (taken === null) break;
        if ("answer" in taken) return json(res, 200, { jsonrpc: "2.0", id, ...taken.answer });
        const answer = await forward(Buffer.from(JSON.stringify(taken.call)));
        return json(res, answer.status, JSON.parse(answer.text));
      }
      case "absurdHead":
        if (method === "eth_blockNumber") return json(res, 200, { jsonrpc: "2.0", id, result: "0xffffffffffff" });
        break;
      case "forked":
        if (method === "eth_getBlockByNumber" || method === "eth_getLogs") return json(res, 200, await altered(body, onFork));
        break;
      case "paddedLogs":
        if (method === "eth_getLogs") return json(res, 200, await altered(body, (logs) => (logs as object[]).map((log) => ({ ...log, padding: "0".repeat(f.bytes) }))));
        break;
      case "dribble": {
        const answer = await forward(body);
        const bytes = Buffer.from(answer.text);
        res.writeHead(answer.status, { "content-type": "application/json", "content-length": bytes.length });
        res.socket?.setNoDelay(true);
        for (let i = 0; i < bytes.length && !res.destroyed; i++) {
          res.write(bytes.subarray(i, i + 1));
          await new Promise((resolve) => setImmediate(resolve));
        }
        res.end();
        return;
      }
      default:
        break;
    }
    const answer = await forward(body);
    res.writeHead(answer.status, { "content-type": "application/json", "content-length": Buffer.byteLength(answer.text) });
    res.end(answer.text);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: Error) => {
      if (!res.headersSent) json(res, 502, { error: `provider node: ${error.message}` });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.on("connection", (socket) => {
    stats.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  let listening = false;
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        listening = true;
        resolve();
      });
    });
  const unlisten = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  await listen(options.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  if (fault.kind === "refuse") await unlisten();

  const setFault = async (next: Fault): Promise<void> => {
    if ((next.kind === "staleHead" || next.kind === "behind") && next.head === undefined) next = { ...next, head: await currentHead() };
    fault = next;
    // Answers left hanging (by "hang", "trickle" or an unfinished "oversized") end with their fault.
    if (next.kind !== "hang") for (const res of hanging) res.destroy();
    if (next.kind === "refuse") await unlisten();
    else if (!listening) await listen(port);
  };

  const snapshot = (): ProviderNodeStats => ({
    requests: stats.requests,
    connections: stats.connections,
    byMethod: { ...stats.byMethod },
    headerNames: [...stats.headerNames],
  });

  let admin: Server | null = null;
  let adminUrl: string | null = null;
  if (options.adminPort !== null) {
    admin = createServer((req, res) => {
      void (async () => {
        if (req.method === "POST" && req.url === "/fault") {
          try {
            await setFault(askedFault(JSON.parse((await readBody(req)).toString("utf8"))));
            json(res, 200, { fault });
          } catch (error) {
            json(res, 400, { error: (error as Error).message });
          }
        } else if (req.method === "POST" && req.url === "/latency") {
          let ms: unknown;
          try {
            ms = (JSON.parse((await readBody(req)).toString("utf8")) as { ms?: unknown } | null)?.ms;
          } catch {
            // answered below, as a body without ms
          }
          // A body without a usable ms changes nothing (a walkthrough's `{}` set a provider's latency to 0).
          if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > 600_000) {
            json(res, 400, { error: `latency must be {"ms": <0 to 600000>}, not ${JSON.stringify(ms ?? null)}`, latencyMs });
          } else {
            latencyMs = ms;
            json(res, 200, { latencyMs });
          }
        } else if (req.method === "GET" && req.url === "/stats") json(res, 200, { fault, latencyMs, ...stats });
        else if (req.method === "GET" && req.url === "/faults") json(res, 200, faultParameters);
        else json(res, 404, { error: "POST /fault, POST /latency, GET /stats, GET /faults" });
      })();
    });
    await new Promise<void>((resolve) => admin!.listen(options.adminPort ?? 0, host, () => resolve()));
    adminUrl = `http://${host}:${(admin.address() as AddressInfo).port}`;
  }

  return {
    url: `http://${host}:${port}`,
    port,
    adminUrl,
    setFault,
    fault: () => fault,
    setLatency: (ms) => {
      latencyMs = ms;
    },
    stats: snapshot,
    resetStats: () => {
      stats = { requests: 0, connections: 0, byMethod: {}, headerNames: new Set() };
    },
    stop: async () => {
      for (const res of hanging) res.destroy();
      await unlisten();
      if (admin !== null) {
        await new Promise<void>((resolve) => {
          admin!.close(() => resolve());
          admin!.closeAllConnections();
        });
      }
      await pool.destroy();
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      upstream: { type: "string" },
      port: { type: "string", default: "0" },
      "admin-port": { type: "string", default: "0" },
      latency: { type: "string", default: "0" },
    },
  });
  if (values.upstream === undefined) throw new Error("usage: providerNode --upstream <chain rpc url> [--port n] [--admin-port n] [--latency ms]");
  const node = await startProviderNode({
    upstreamUrl: values.upstream,
    port: Number(values.port),
    adminPort: Number(values["admin-port"]),
    latencyMs: Number(values.latency),
  });
  console.log(JSON.stringify({ url: node.url, adminUrl: node.adminUrl }));
  const stop = () => void node.stop().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
