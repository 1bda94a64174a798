import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { answerCors, type ClientLedger, type ClientShare } from "./connections.ts";
import type { Asset } from "./dashboardAssets.ts";
import { ClientInputError, NoProviderSetError, noProviderSetYet, RouterError, RpcCode, UnknownChainError } from "./errors.ts";
import { routeCall, type CallHandle, type RouteContext } from "./failover.ts";
import { filterMethods, type FilterRegistry, type PollBudget } from "./filters.ts";
import type { ProviderHealth } from "./health.ts";
import { cannotHoldResponse, errorResponse, isCall, parseBody, parsedBytesPerByteAtMost, parsedSize, resultResponse, type BodyLimits, type ParsedItem, type RpcCall, type RpcId } from "./jsonRpc.ts";
import type { Logger } from "./log.ts";
import type { MethodCheck } from "./methodPolicy.ts";
import type { CallOutcome, RouterMetrics } from "./metrics.ts";
import type { Limits } from "./options.ts";
import { Pieces } from "./pieces.ts";
import type { ProviderSetStatus } from "./providerSet.ts";
import { graphqlError, type RegistryAnswer } from "./registryView.ts";
import type { ChainTable } from "./routingTable.ts";
import { routerUserAgent, writeMethods } from "./upstream.ts";

// The HTTP face of the router: POST /rpc/:chainId (JSON-RPC 2.0, single and batch), GET /status,
// GET /history, GET /metrics, GET /health, the dashboard at GET /, and GET /registry (the indexer's
// registry, one fixed query). Nothing from the client's headers ever reaches a provider: the
// upstream request is built from the parsed call alone.

export type Gateway = {
  /** Draining (stopping): answers close their connection. */
  lifecycle: { readonly draining: boolean };
  tables: ReadonlyMap<number, ChainTable>;
  route: RouteContext;
  filters: FilterRegistry;
  methodAllowed: MethodCheck;
  limits: BodyLimits & Pick<Limits, BudgetLimit | "maxBodyBytes" | "maxConcurrentRequests" | "maxInFlightPerClient" | "maxCallsInFlight" | "maxCallsInFlightPerClient">;
  metrics: RouterMetrics;
  clients: ClientLedger;
  log: Logger;
  status: () => unknown;
  /** Where the provider set comes from and whether the router has one yet. */
  providerSet: () => ProviderSetStatus;
  /** A snapshot file is kept (--snapshot): one was looked for at start-up. */
  snapshotKept: boolean;
  /** Traffic per provider over the last minutes, the points after `since` (unix ms), as JSON; null: ask again shortly (history.ts). */
  history: (since: number) => Buffer | null;
  renderMetrics: () => string;
  /** The dashboard's files by URL path (empty when not built). */
  assets: ReadonlyMap<string, Asset>;
  /** The registry from the indexer (cached); null when the provider set does not come from an indexer. */
  registry: (() => Promise<RegistryAnswer>) | null;
};

type BudgetLimit = "clientBufferBytes" | "clientBufferBytesPerClient" | "clientStallMs" | "clientTakeBytesPerSecond";

/** What one call of a request came to. */
type Answered = { bytes: Buffer | null; provider: ProviderHealth | null; local: boolean; attempts: number };

/** The answer to a browser's preflight (OPTIONS); it carries the x-din-* headers as every answer does. */
const corsHeaders: (readonly [string, string])[] = [
  ["x-din-provider", "router"],
  ["x-din-attempts", "0"],
  ...answerCors,
  ["access-control-allow-methods", "POST, GET, OPTIONS"],
  // Any header a dapp's SDK adds (no client header reaches a provider); `*` leaves out authorization.
  ["access-control-allow-headers", "*, authorization"],
  ["access-control-max-age", "86400"],
];
/** answerCors as send's flat [name, value, …] list. */
const answerCorsFlat = answerCors.flat();
// The chain id in decimal, as eth_chainId's value is known (no sign, no leading zero, no hex).
const rpcPath = /^\/rpc\/([1-9][0-9]{0,15})\/?$/;

function send(
  res: ServerResponse,
  status: number,
  body: Buffer | string | null,
  provider: string,
  attempts: number,
  cors: boolean,
  contentType = "application/json",
  close = false,
): void {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  // A flat [name, value, …] list, and a content-length so the answer goes out in one write.
  const headers = ["x-din-provider", provider, "x-din-attempts", attempts === 1 ? "1" : String(attempts)];
  if (cors) {
    // Browsers (dapps) may read the answer and the x-din-* headers from any origin.
    headers.push(...answerCorsFlat);
  }
  if (bytes !== null) headers.push("content-type", contentType, "content-length", String(bytes.length));
  if (close) headers.push("connection", "close");
  res.writeHead(status, headers);
  if (bytes === null || bytes.length <= answerSliceBytes) return void res.end(bytes ?? undefined);
  // A large answer goes to the socket a slice at a time, the next once the kernel took the last: a
  // client taking it slowly is seen taking it (holdUntilTaken), not only once it took all (slices
  // written at once leave Node's buffer together).
  let at = 0;
  const more = () => {
    while (at < bytes.length) {
      const slice = bytes.subarray(at, (at += answerSliceBytes));
      if (at >= bytes.length) return void res.end(slice);
      if (!res.write(slice)) return void res.once("drain", more);
    }
  };
  more();
}

const answerSliceBytes = 256 * 1024;

/** Refuses a request before its body is read (or all of it): counted, answered, the connection closed. */
function refuseUnread(g: Gateway, res: ServerResponse, error: RouterError, cors: boolean): void {
  g.metrics.refused(error.code);
  send(res, error.httpStatus, errorResponse(null, error.rpcCode, error.message), "none", 0, cors, "application/json", true);
}

// What the router holds for clients: request bodies being received, answers being collected from
// providers (until the request is answered) and answers not yet handed to the kernel (a client
// that does not read keeps its answer in the router's memory). The first 16 KiB of each are free;
// bytes past them are charged to one budget shared by all clients and to the client's own part of
// it, so stalled uploads, large answers and unread answers cannot grow memory without bound nor one
// client take the whole budget, while small calls and answers (nearly all JSON-RPC) are never
// refused for it.
const freeBytes = 16 * 1024;

/** Whether `bytes` more fit the budget and the client's part (each `past` more), once `held` of theirs are given back. */
function fits(g: Gateway, client: ClientShare, bytes: number, held = 0, past = 0): boolean {
  return g.metrics.bufferBytes - held + bytes <= g.limits.clientBufferBytes + past && client.bufferBytes - held + bytes <= g.limits.clientBufferBytesPerClient + past;
}

/** Charges `bytes` to the budget and to the client's part; false, and nothing charged, past either (by more than `past`). */
function charge(g: Gateway, client: ClientShare, bytes: number, past = 0): boolean {
  if (!fits(g, client, bytes, 0, past)) return false;
  g.metrics.bufferBytes += bytes;
  client.bufferBytes += bytes;
  return true;
}

/**
 * How far past the budget the answer of calls that changed something (a transaction went out, a
 * filter moved on) may go, where "retry" would lose what they did: a quarter of the client's part
 * (a broadcast's answer is not charged while it arrives), or the 16 KiB each of `calls` held free
 * while it arrived, whichever is more. A batch of filter polls was charged those only once whole:
 * 40 polls of 15 KB against a 256 KiB part were answered 503 after the filters had moved on (review B).
 */
function mustAnswerAllowance(g: Gateway, calls: number): number {
  return Math.max(g.limits.clientBufferBytesPerClient / 4, calls * freeBytes);
}

/**
 * Holds `owed` bytes of an answer against the budget until the answer's "close" (handed to the
 * kernel: "close" follows "finish") or the socket's: an answer queued behind another on its
 * connection has no socket yet, and Node does not close it when the client leaves. While it is
 * held, the client must take bytes from its connection: one that, with bytes waiting, takes less
 * than clientTakeBytesPerSecond over a clientStallMs window is cut off, so an unread answer cannot
 * hold its bytes for ever (also one queued behind a small answer the client does not read).
 */
function holdUntilTaken(g: Gateway, client: ClientShare, res: ServerResponse, owed: number): void {
  const socket = res.req.socket;
  const least = (g.limits.clientTakeBytesPerSecond * g.limits.clientStallMs) / 1000;
  let taken = takenFrom(socket);
  const check = () => {
    const now = takenFrom(socket);
    if (socket.writableLength > 0 && now - taken < least) {
      g.metrics.refused("answer_not_taken");
      socket.destroy();
      return;
    }
    taken = now;
    stall.refresh();
  };
  const stall = setTimeout(check, g.limits.clientStallMs);
  stall.unref();
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    clearTimeout(stall);
    unwatch();
    refund(g, client, owed);
  };
  const unwatch = whenClosed(socket, release);
  res.once("close", release);
}

/** Bytes the kernel has taken from the socket (written, less those still waiting in Node). */
function takenFrom(socket: Socket): number {
  return socket.bytesWritten - socket.writableLength;
}

/** What to call when a socket closes: one listener per socket, however many answers wait on it. */
const closeWatchers = new WeakMap<Socket, Set<() => void>>();

/** Calls `then` when `socket` closes; returns what cancels that. */
function whenClosed(socket: Socket, then: () => void): () => void {
  let watchers = closeWatchers.get(socket);
  if (watchers === undefined) {
    const all = new Set<() => void>();
    closeWatchers.set(socket, all);
    socket.once("close", () => {
      for (const watcher of all) watcher();
    });
    watchers = all;
  }
  const mine = watchers;
  mine.add(then);
  return () => mine.delete(then);
}

function refund(g: Gateway, client: ClientShare, bytes: number): void {
  if (bytes === 0) return;
  g.metrics.bufferBytes -= bytes;
  client.bufferBytes -= bytes;
  g.clients.settle(client);
}

/**
 * Reads the body, then calls `done` once: with the body and the bytes charged to the budget, with
 * the error that refuses it (too large, budget spent), or with null when the client went away.
 */
function readBody(g: Gateway, client: ClientShare, req: IncomingMessage, done: (body: Buffer | RouterError | null, charged: number) => void): void {
  const max = g.limits.maxBodyBytes;
  const body = new Pieces();
  let charged = 0;
  let finished = false;
  const fail = (why: RouterError | null) => {
    if (finished) return;
    finished = true;
    refund(g, client, charged);
    req.pause();
    done(why, 0);
  };
  req.on("data", (chunk: Buffer) => {
    if (finished) return;
    const size = body.size + chunk.length;
    if (size > max) return fail(tooLarge(max));
    const owed = size - freeBytes - charged;
    if (owed > 0) {
      if (!charge(g, client, owed)) return fail(overCapacity("over_budget"));
      charged += owed;
    }
    body.add(chunk);
  });
  req.on("end", () => {
    if (finished) return;
    finished = true;
    done(body.take(), charged);
  });
  // Node emits "error" (ECONNRESET) when the connection closes before the body's end.
  req.on("error", () => fail(null));
}

function hasOrigin(req: IncomingMessage): boolean {
  return req.headers.origin !== undefined;
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const semicolon = value.indexOf(";");
  const type = (semicolon >= 0 ? value.slice(0, semicolon) : value).trim().toLowerCase();
  return type === "application/json" || type === "application/json-rpc";
}

const notAnswered: Answered = { bytes: null, provider: null, local: true, attempts: 0 };

function localAnswer(item: RpcCall, bytes: Buffer): Answered {
  return item.notification ? notAnswered : { bytes, provider: null, local: true, attempts: 0 };
}

/**
 * Answers one call; `done` hears the answer and how the call ended once (at once for what the
 * router answers itself). The outcome is also added to `outcomes`, the request's count.
 */
function answerCall(
  g: Gateway,
  table: ChainTable,
  item: ParsedItem,
  outcomes: CallOutcome[],
  x: Exchange,
  done: (answered: Answered, outcome: CallOutcome) => void,
): void {
  if (!isCall(item)) return ended(outcomes, done, { bytes: errorResponse(item.id, item.code, item.message), provider: null, local: true, attempts: 0 }, "rejected");
  const refusal = g.methodAllowed(item.method);
  if (refusal !== null) {
    return ended(outcomes, done, localAnswer(item, errorResponse(item.id, RpcCode.methodNotFound, `method ${item.method} is not allowed: ${refusal}`)), "rejected");
  }
  if (item.method === "eth_chainId") return ended(outcomes, done, localAnswer(item, resultResponse(item.id, `"0x${table.chainId.toString(16)}"`)), "local");
  if (item.method === "net_version") return ended(outcomes, done, localAnswer(item, resultResponse(item.id, `"${table.chainId}"`)), "local");
  if (filterMethods.has(item.method)) {
    return g.filters.answer(table, item, x.client, x, (a) =>
      ended(outcomes, done, { bytes: item.notification ? null : a.bytes, provider: a.provider, local: a.provider === null, attempts: a.attempts }, a.outcome),
    );
  }
  const upstreamId = item.notification ? 1 : item.id;
  const handle = routeCall(g.route, table, item, upstreamId, (result) => {
    ended(outcomes, done, { bytes: item.notification ? null : result.bytes, provider: result.provider, local: false, attempts: result.attempts }, result.outcome);
  }, { budget: x, client: x.client.key });
  x.routing(handle);
}

/** A call's end: counted in the request's `outcomes`, then told to `done`. */
function ended(outcomes: CallOutcome[], done: (answered: Answered, outcome: CallOutcome) => void, answered: Answered, outcome: CallOutcome): void {
  outcomes.push(outcome);
  done(answered, outcome);
}

/** The headers the router reads, from the raw list (cheaper than building `req.headers`). */
type ClientHeaders = { contentLength: string | undefined; contentType: string | undefined; origin: string | undefined; forwardedFor: string | undefined; userAgent: string | undefined };

function clientHeaders(req: IncomingMessage): ClientHeaders {
  const raw = req.rawHeaders;
  const found: ClientHeaders = { contentLength: undefined, contentType: undefined, origin: undefined, forwardedFor: undefined, userAgent: undefined };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    // Lengths first: most headers are skipped without lower-casing them.
    if (name.length === 14 && found.contentLength === undefined && name.toLowerCase() === "content-length") found.contentLength = raw[i + 1];
    else if (name.length === 12 && found.contentType === undefined && name.toLowerCase() === "content-type") found.contentType = raw[i + 1];
    else if (name.length === 6 && found.origin === undefined && name.toLowerCase() === "origin") found.origin = raw[i + 1];
    else if (name.length === 10 && found.userAgent === undefined && name.toLowerCase() === "user-agent") found.userAgent = raw[i + 1];
    else if (name.length === 15 && name.toLowerCase() === "x-forwarded-for") {
      // Several such headers read as one list, in order (the last proxy's entry stays last).
      found.forwardedFor = found.forwardedFor === undefined ? raw[i + 1] : `${found.forwardedFor},${raw[i + 1]}`;
    }
  }
  return found;
}

function handleRpc(g: Gateway, req: IncomingMessage, res: ServerResponse, chainText: string): void {
  const started = performance.now();
  const headers = clientHeaders(req);
  const cors = headers.origin !== undefined;
  // A call another router forwards: this router is registered as a provider's endpoint (its own,
  // or another's). Serving it would loop through the set, or let a provider serve with no node.
  if (headers.userAgent === routerUserAgent) return refuseUnread(g, res, routerLoop, cors);
  const declared = Number(headers.contentLength ?? 0);
  if (declared > g.limits.maxBodyBytes) return refuseUnread(g, res, tooLarge(g.limits.maxBodyBytes), cors);
  if (!isJsonContentType(headers.contentType)) {
    const error = new ClientInputError("unsupported_media_type", "invalid request: send the body as content-type application/json", RpcCode.invalidRequest, 415);
    return refuseUnread(g, res, error, cors);
  }
  const client = g.clients.ofRequest(req.socket, headers.forwardedFor);
  readBody(g, client, req, (body, charged) => {
    if (body === null || body instanceof RouterError) {
      g.clients.release(client);
      if (body === null) res.destroy();
      else refuseUnread(g, res, body, cors);
      return;
    }
    // Only requests whose body has arrived count: stalled uploads cannot crowd out the others.
    let busy = g.metrics.inFlight >= g.limits.maxConcurrentRequests ? overCapacity() : client.inFlight >= g.limits.maxInFlightPerClient ? clientBusy(g.limits.maxInFlightPerClient) : null;
    // What the body holds once parsed is charged too, past what its bytes were (small bodies cannot hold much).
    if (busy === null && body.length * parsedBytesPerByteAtMost > freeBytes) {
      const owed = parsedSize(body) - freeBytes - charged;
      if (owed > 0) {
        if (charge(g, client, owed)) charged += owed;
        else busy = overCapacity("over_budget");
      }
    }
    if (busy !== null) {
      refund(g, client, charged);
      g.clients.release(client);
      g.metrics.refused(busy.code);
      return send(res, busy.httpStatus, errorResponse(null, busy.rpcCode, busy.message), "none", 0, cors);
    }
    g.metrics.inFlight++;
    client.inFlight++;
    answerBody(new Exchange(g, client, res, started, cors, charged), chainText, body);
  });
}

/**
 * One HTTP request on /rpc from its body to its answer. `reply` runs exactly once, whether the
 * answer comes at once or from a provider's callback; an internal error becomes a 500.
 */
class Exchange implements PollBudget {
  readonly g: Gateway;
  readonly client: ClientShare;
  readonly res: ServerResponse;
  readonly started: number;
  readonly cors: boolean;
  /** Body bytes charged to the client buffer budget, given back with the answer. */
  private readonly charged: number;
  /** Bytes of providers' answers charged while they were collected, given back with the answer. */
  private collected = 0;
  /** The request's calls, counted in flight until the answer. */
  private calls = 0;
  /** The request's calls being routed by providers, abandoned if the client goes away first. */
  private routed: CallHandle[] | null = null;
  /** Stops watching the client's connection for that (once answered). */
  private unwatch: (() => void) | null = null;
  readonly freeBytes = freeBytes;
  readonly turn: string;
  private open = true;

  constructor(g: Gateway, client: ClientShare, res: ServerResponse, started: number, cors: boolean, charged: number) {
    this.g = g;
    this.client = client;
    this.res = res;
    this.started = started;
    this.cors = cors;
    this.charged = charged;
    this.turn = client.key;
  }

  /** Sends the answer; `mustAnswer`: it answers a call that changed something (see mustAnswerAllowance). */
  reply(status: number, body: Buffer | null, provider: string, attempts: number, mustAnswer = false): void {
    if (!this.open) return;
    this.open = false;
    this.g.metrics.inFlight--;
    this.client.inFlight--;
    this.g.metrics.callsInFlight -= this.calls;
    this.client.calls -= this.calls;
    this.unwatch?.();
    refund(this.g, this.client, this.charged + this.collected);
    try {
      this.deliver(status, body, provider, attempts, mustAnswer);
    } finally {
      this.g.clients.release(this.client); // after the answer is charged: the share stays known meanwhile
    }
  }

  private deliver(status: number, body: Buffer | null, provider: string, attempts: number, mustAnswer: boolean): void {
    const { g, client, res } = this;
    const socket = res.req.socket;
    // The client is gone. (An answer queued behind another on its connection is not destroyed
    // with it and would never see "close": the socket says.)
    if (res.destroyed || socket.destroyed) return;
    const owed = body === null ? 0 : body.length - freeBytes;
    const close = g.lifecycle.draining;
    if (owed > 0) {
      if (!charge(g, client, owed, mustAnswer ? mustAnswerAllowance(g, this.calls) : 0)) {
        const error = overCapacity("over_budget");
        g.metrics.refused("answer_over_budget");
        return send(res, error.httpStatus, errorResponse(null, error.rpcCode, error.message), "none", attempts, this.cors, "application/json", close);
      }
      holdUntilTaken(g, client, res, owed);
    }
    send(res, status, body, provider, attempts, this.cors, "application/json", close);
  }

  /** Counts the request's `count` calls in flight; the error that refuses them when the router's or the client's cap would pass. */
  admitCalls(count: number): RouterError | null {
    const { g, client } = this;
    if (g.metrics.callsInFlight + count > g.limits.maxCallsInFlight) return overCapacity();
    if (client.calls + count > g.limits.maxCallsInFlightPerClient) return clientBusy(g.limits.maxCallsInFlightPerClient, true);
    g.metrics.callsInFlight += count;
    client.calls += count;
    this.calls = count;
    return null;
  }

  /**
   * A call of this request is being routed. If the client's connection closes before the answer,
   * its calls are abandoned: providers are not asked on behalf of nobody (a broadcast goes on).
   */
  routing(handle: CallHandle): void {
    if (!this.open) return; // answered already (no provider, at once): nothing to abandon, nothing to watch
    if (this.routed === null) {
      this.routed = [];
      this.unwatch = whenClosed(this.res.req.socket, () => {
        for (const call of this.routed!) call.abandon();
      });
    }
    this.routed.push(handle);
  }

  /** Counts up to `wanted` more calls in flight (a filter poll's), within the client's and the router's caps: how many were counted. */
  moreCalls(wanted: number): number {
    const { g, client } = this;
    if (!this.open) return 0; // answered: nothing would give them back
    const more = Math.max(0, Math.min(wanted, g.limits.maxCallsInFlight - g.metrics.callsInFlight, g.limits.maxCallsInFlightPerClient - client.calls));
    g.metrics.callsInFlight += more;
    client.calls += more;
    this.calls += more;
    return more;
  }

  /** Whether an answer of `bytes` can be held for this client now (reply refuses it otherwise). */
  answerFits(bytes: number): boolean {
    return bytes <= freeBytes || fits(this.g, this.client, bytes - freeBytes, this.charged + this.collected);
  }

  collect(bytes: number): boolean {
    if (!this.open || !charge(this.g, this.client, bytes)) return false;
    this.collected += bytes;
    return true;
  }

  release(bytes: number): void {
    if (!this.open) return; // the answer went out and gave back all that was collected
    this.collected -= bytes;
    refund(this.g, this.client, bytes);
  }

  refuse(error: RouterError, id: RpcId = null): void {
    this.g.metrics.refused(error.code);
    this.reply(error.httpStatus, errorResponse(id, error.rpcCode, error.message), "none", 0);
  }

  /** Runs `step`; a throw inside it is the router's bug: logged, answered with a 500. */
  guard(step: () => void): void {
    try {
      step();
    } catch (failure) {
      this.g.log.error("request failed inside the router", { error: failure instanceof Error ? failure.stack : String(failure) });
      if (this.open) this.reply(500, errorResponse(null, RpcCode.internalError, "internal error in the router"), "none", 0);
      else if (!this.res.writableEnded) this.res.destroy();
    }
  }
}

function answerBody(x: Exchange, chainText: string, body: Buffer): void {
  x.guard(() => {
    const g = x.g;
    let parsed;
    try {
      parsed = parseBody(body, g.limits);
    } catch (error) {
      if (!(error instanceof RouterError)) throw error;
      return x.refuse(error);
    }
    // A refusal of a single call carries its id.
    const id = !parsed.batch && isCall(parsed.item) ? parsed.item.id : null;
    const chainId = Number(chainText);
    const table = g.tables.get(chainId);
    if (table === undefined) {
      const set = g.providerSet();
      if (set.servingFrom === "none") return x.refuse(new NoProviderSetError(set.state, g.snapshotKept), id);
      return x.refuse(new UnknownChainError(chainText, [...g.tables.keys()]), id);
    }
    const full = x.admitCalls(parsed.batch ? parsed.items.length : 1);
    if (full !== null) return x.refuse(full, id);
    const outcomes: CallOutcome[] = [];
    if (!parsed.batch) {
      answerCall(g, table, parsed.item, outcomes, x, (answered) =>
        x.guard(() => {
          countRequest(x, chainId, outcomes);
          const who = answered.provider !== null ? answered.provider.address : answered.local ? "router" : "none";
          const item = parsed.item;
          // An answer too large to hold now is refused as HTTP refuses what is over capacity.
          const status = answered.bytes === null ? 204 : outcomes[0] === "over_budget" ? 503 : 200;
          x.reply(status, answered.bytes, who, answered.attempts, isCall(item) && mustAnswer.has(item.method));
        }),
      );
      return;
    }
    // A batch: every call routed on its own, answers in the order of the calls, notifications
    // dropped. Its transactions go one after another in the batch's order, as a node takes a batch:
    // a wallet batching nonces n, n+1, … (ethers' NonceManager) must not have n+1 reach a node first.
    const answers = new Array<Answered>(parsed.items.length);
    let pending = parsed.items.length;
    const answer = (i: number, then: ((outcome: CallOutcome) => void) | null = null) =>
      answerCall(g, table, parsed.items[i], outcomes, x, (answered, outcome) => {
        answers[i] = answered;
        then?.(outcome);
        if (--pending === 0) x.guard(() => replyBatch(x, chainId, outcomes, parsed.items, answers));
      });
    const sends: number[] = [];
    parsed.items.forEach((item, i) => (isCall(item) && item.method === "eth_sendRawTransaction" ? sends.push(i) : answer(i)));
    // Once a send gets no provider's answer (none to ask, a provider hanging) the order is moot: the
    // rest go at once, each within its own deadline, not one deadline after another. Sends answered
    // at once are taken in this loop, not by recursion (a batch of 1,000 overflowed the stack); one
    // answered later resumes it, guarded as any step.
    let next = 0;
    let inOrder = true;
    const sendOn = (): void => {
      while (next < sends.length) {
        if (!inOrder) {
          answer(sends[next++]);
          continue;
        }
        let inLoop = true;
        let answeredAtOnce = false;
        answer(sends[next++], (outcome) => {
          if (outcome !== "answer") inOrder = false;
          if (inLoop) answeredAtOnce = true;
          else x.guard(sendOn);
        });
        inLoop = false;
        if (!answeredAtOnce) return;
      }
    };
    sendOn();
  });
}

/** Counts how a request's calls ended and how long it took. */
function countRequest(x: Exchange, chainId: number, outcomes: readonly CallOutcome[]): void {
  const metrics = x.g.metrics;
  for (const o of outcomes) {
    metrics.call(chainId, o);
    if (o === "over_budget") metrics.refused("answer_over_budget"); // refused while it arrived
  }
  metrics.duration(chainId, performance.now() - x.started);
}

function replyBatch(x: Exchange, chainId: number, outcomes: readonly CallOutcome[], items: readonly ParsedItem[], answers: Answered[]): void {
  const g = x.g;
  countRequest(x, chainId, outcomes);
  let size = 1;
  for (const a of answers) if (a.bytes !== null) size += a.bytes.length + 1;
  const heldBack = !x.answerFits(size);
  if (heldBack) {
    g.metrics.refused("batch_answer_over_budget");
    holdBackReads(items, answers);
  }
  const parts: Buffer[] = [];
  // Who answered: each once, in the order of the calls, the router too when it answered some.
  const answerers = new Set<string>();
  let attempts = 0;
  for (const a of answers) {
    attempts += a.attempts;
    if (a.provider !== null) answerers.add(a.provider.address);
    else if (a.local) answerers.add("router");
    if (a.bytes === null) continue;
    parts.push(parts.length === 0 ? open : comma, a.bytes);
  }
  const who = answerers.size > 0 ? [...answerers].join(",") : "none";
  if (parts.length === 0) return x.reply(204, null, who, attempts);
  parts.push(close);
  x.reply(200, Buffer.concat(parts), who, attempts, heldBack);
}

/** Calls that change something: their answer is not replaced with "retry" (see mustAnswerAllowance). */
const mustAnswer: ReadonlySet<string> = new Set([...writeMethods, ...[...filterMethods].filter((m) => m !== "eth_getFilterLogs")]);

/**
 * A batch whose answer cannot be held now: its reads are answered with an error to retry, but the
 * calls that changed something keep their answers (a broadcast went out, a filter moved on), so a
 * client is never told a transaction failed that was sent. What is left may go past the budget (mustAnswerAllowance).
 */
function holdBackReads(items: readonly ParsedItem[], answers: Answered[]): void {
  items.forEach((item, i) => {
    const a = answers[i];
    if (a.bytes === null || !isCall(item) || mustAnswer.has(item.method)) return;
    a.bytes = cannotHoldResponse(item.id);
  });
}

const open = Buffer.from("[");
const comma = Buffer.from(",");
const close = Buffer.from("]");

const routerLoop = new RouterError(
  "router_loop",
  "loop detected: this is an OpenDIN router, and it takes no call another router forwards (a provider's endpoint must be its own node)",
  RpcCode.invalidRequest,
  508,
);

function tooLarge(max: number): ClientInputError {
  return new ClientInputError("body_too_large", `limit exceeded: the body is larger than ${max} bytes`, RpcCode.limitExceeded, 413);
}

/** One client has too many requests (or calls) in flight: it should wait for its answers. */
function clientBusy(max: number, calls = false): RouterError {
  const what = calls ? `calls in flight from your address (at most ${max}; a batch counts each of its calls)` : `requests in flight from your address (at most ${max})`;
  return new RouterError("client_over_capacity", `too many ${what}; wait for answers before sending more`, RpcCode.limitExceeded, 429);
}

/** Too many requests in flight, or the client buffer budget spent: the client hears the same. */
function overCapacity(code: "over_capacity" | "over_budget" = "over_capacity"): RouterError {
  return new RouterError(code, "the router is at capacity; retry shortly", RpcCode.limitExceeded, 503);
}

function sendPage(res: ServerResponse, status: number, body: Buffer | string, type: string): void {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, {
    "content-type": type,
    "content-length": bytes.length,
    "x-din-provider": "router",
    "x-din-attempts": 0,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    // The page loads only its own script and stylesheet and talks only to this router.
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
  });
  res.end(res.req.method === "HEAD" ? undefined : bytes);
}

function handleRegistry(g: Gateway, req: IncomingMessage, res: ServerResponse): void {
  const cors = hasOrigin(req);
  if (g.registry === null) {
    return send(res, 404, graphqlError("this router has no indexer: it reads its providers from a fixed set"), "router", 0, cors);
  }
  g.registry()
    .then((answer) => send(res, answer.status, answer.body, "router", 0, cors))
    .catch((error: unknown) => {
      g.log.error("GET /registry failed inside the router", { error: String(error) });
      if (!res.headersSent) send(res, 500, graphqlError("internal error in the router"), "router", 0, cors);
      else res.destroy();
    });
}

/**
 * A page built anew only once its last build is older than ten times what that build took: /status
 * and /metrics grow with the provider set (2,000 providers: 1.9 MB and 4.5 MB, 40–55 ms to build),
 * and a client asking for them in a loop would otherwise keep the router building them. So
 * building takes at most about a tenth of the router's time, and every asker meanwhile gets the
 * same bytes (one copy in memory, however many answers wait to be sent).
 */
export function reusedPage(build: () => string, clock: () => number = () => performance.now()): () => Buffer {
  let page: Buffer | null = null;
  let builtAt = 0;
  let reuseMs = 0;
  return () => {
    const now = clock();
    if (page === null || now - builtAt > reuseMs) {
      page = Buffer.from(build());
      builtAt = clock();
      reuseMs = 10 * (builtAt - now);
    }
    return page;
  };
}

/** The request listener of the router's HTTP server. */
export function createRequestHandler(g: Gateway): (req: IncomingMessage, res: ServerResponse) => void {
  const statusPage = reusedPage(() => JSON.stringify(g.status(), null, 2));
  const metricsPage = reusedPage(g.renderMetrics);
  return (req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q >= 0 ? url.slice(0, q) : url;
    // Every path: a page's preflight to a wrong one (/rpc/0x7a69) must pass for the page to read the 404 saying why.
    if (req.method === "OPTIONS") {
      res.writeHead(204, corsHeaders.flat());
      res.end();
      return;
    }
    const match = path.startsWith("/rpc/") ? rpcPath.exec(path) : null;
    if (match !== null) {
      if (req.method !== "POST") {
        // A WebSocket transport (viem's webSocket, ethers' WebSocketProvider) is told what to use instead.
        const websocket = req.headers.upgrade?.toLowerCase() === "websocket";
        const why = websocket
          ? "invalid request: this router speaks JSON-RPC over HTTP POST, not WebSocket (for new blocks and logs, poll with eth_newBlockFilter, eth_newFilter and eth_getFilterChanges)"
          : "invalid request: use POST for JSON-RPC";
        res.setHeader("allow", "POST, OPTIONS");
        send(res, 405, errorResponse(null, RpcCode.invalidRequest, why), "none", 0, hasOrigin(req));
        return;
      }
      handleRpc(g, req, res, match[1]);
      return;
    }
    // The pages answer GET and HEAD (a load balancer's health check), with a trailing slash too.
    const page = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
    const isPage = pages.has(page) || g.assets.has(page);
    if (isPage && req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD, OPTIONS");
      // A GraphQL query POSTed to /registry belongs at the indexer's /graphql (a gateway walkthrough).
      const instead = page === "/registry" ? "a GraphQL query of your own goes to the indexer's /graphql" : "POST JSON-RPC to /rpc/<chainId> (in decimal, such as /rpc/1)";
      const why = `invalid request: ${page} answers GET and HEAD, not ${req.method}; ${instead}`;
      send(res, 405, errorResponse(null, RpcCode.invalidRequest, why), "none", 0, hasOrigin(req));
      return;
    }
    if (!isPage) {
      send(res, 404, errorResponse(null, RpcCode.invalidRequest, "not found: POST JSON-RPC to /rpc/<chainId> (in decimal, such as /rpc/1); GET / (dashboard), /status, /history, /registry, /metrics, /health"), "none", 0, hasOrigin(req));
      return;
    }
    if (page === "/health") {
      let eligible = 0;
      const now = performance.now();
      for (const t of g.tables.values()) {
        t.refresh(now);
        eligible += t.eligibleCount;
      }
      const ok = eligible > 0;
      const reason = ok ? undefined : unhealthyBecause(g, now);
      send(res, ok ? 200 : 503, JSON.stringify({ ok, chains: g.tables.size, eligibleProviders: eligible, reason }), "router", 0, hasOrigin(req));
      return;
    }
    if (page === "/status") {
      send(res, 200, statusPage(), "router", 0, hasOrigin(req));
      return;
    }
    if (page === "/history") {
      const asked = new URLSearchParams(q >= 0 ? url.slice(q + 1) : "").get("since");
      const since = asked === null || asked === "" ? 0 : Number(asked);
      if (!Number.isFinite(since) || since < 0) {
        send(res, 400, JSON.stringify({ error: `since must be a time in unix milliseconds (such as ${Date.now()}), not "${asked}"` }), "router", 0, hasOrigin(req));
        return;
      }
      const history = g.history(since);
      if (history !== null) send(res, 200, history, "router", 0, hasOrigin(req));
      else {
        res.setHeader("retry-after", "1");
        send(res, 503, JSON.stringify({ error: "busy building other /history pages: ask again in a second" }), "router", 0, hasOrigin(req));
      }
      return;
    }
    if (page === "/registry") {
      handleRegistry(g, req, res);
      return;
    }
    if (page === "/metrics") {
      send(res, 200, metricsPage(), "router", 0, hasOrigin(req), "text/plain; version=0.0.4; charset=utf-8");
      return;
    }
    const asset = g.assets.get(page);
    if (asset !== undefined) sendPage(res, 200, asset.body, asset.type);
    else sendPage(res, 503, "The dashboard is not built: run `npm run build`, then start the router again.\n", "text/plain; charset=utf-8");
  };
}

/** Why no provider is eligible, in words a load balancer's health log shows (/status has each provider's state). */
function unhealthyBecause(g: Gateway, now: number): string {
  const providers = [...g.tables.values()].flatMap((t) => t.providers);
  if (providers.length === 0) {
    const set = g.providerSet();
    // (The indexer's set may list no provider: a registry nobody joined yet.)
    return set.servingFrom === "none" ? `${noProviderSetYet(set.state, g.snapshotKept)} (see /status)` : "the provider set lists no provider";
  }
  if (providers.every((p) => p.state(now) === "refused")) {
    return "every provider's endpoint is at an address this router refuses (loopback, private or link-local; allowed only in devnet mode, --devnet)";
  }
  return "no provider is eligible now (see /status for each one's state)";
}

/** The routes besides /rpc/ and the dashboard's files: GET (or HEAD) only. */
const pages = new Set(["/", "/health", "/status", "/history", "/registry", "/metrics"]);
