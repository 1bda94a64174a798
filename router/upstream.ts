import { performance } from "node:perf_hooks";
import type { Dispatcher } from "undici";
import { quantityOf, shownBlock } from "./blocks.ts";
import { EndpointRefusedError } from "./errors.ts";
import type { UpstreamDispatcher } from "./httpClient.ts";
import type { FailureKind, ProviderHealth } from "./health.ts";
import { holdsMoreThan, nestsDeeperThan, utf8Text, type RpcId } from "./jsonRpc.ts";
import { Pieces } from "./pieces.ts";

// One attempt of one call on one provider, and the verdict on what came back. The provider is a
// stranger: its answer must be a JSON-RPC 2.0 response object with our id, within the size and
// time caps, or the attempt failed and another provider is tried. A good answer passes through as
// the provider's own bytes.

/** What one attempt produced. */
export type Outcome =
  /** A result, or an error that is the call's own (execution reverted, invalid params): pass it through. */
  | {
      type: "answer";
      bytes: Buffer;
      error: { code: number; message: string } | null;
      /** The result, parsed (undefined with an error): failover.ts compares it with the call (contradiction.ts). */
      result: unknown;
      latencyMs: number;
      /** The result when it is a quantity (blocks.ts's quantityOf), read once here for those who keep heights and chain ids. */
      quantity: number | null;
      /** A block the answer shows its provider holds (blocks.ts's shownBlock): eth_blockNumber's result, a receipt's block. */
      block: number | null;
      /** The result is null. */
      nullResult: boolean;
    }
  /** An answer another provider may not give (pruned state, unknown block): try elsewhere, else pass it through. */
  | { type: "soft"; bytes: Buffer; latencyMs: number }
  /** The provider failed; the caller did nothing wrong. `callsOwn`: no, the call did (its size): held against nobody. */
  | { type: "failure"; kind: FailureKind; detail: string; latencyMs: number; callsOwn?: true }
  /** This router stopped the attempt: another attempt of the call answered (a hedge won). */
  | { type: "cancelled"; latencyMs: number }
  /**
   * It waited for one of the router's connections to the provider (all busy), and the time left
   * ran out before the provider had its whole timeout: the router's own queue, not the provider's fault.
   */
  | { type: "queued"; latencyMs: number }
  /** The answer grew past what the client may hold now: stopped, not the provider's fault. */
  | { type: "over_budget"; latencyMs: number };

/** Who hears how an attempt ended (exactly once), and when it left the router's queue. */
export type AttemptOwner = { settle: (attempt: UpstreamAttempt, outcome: Outcome) => void; sent?: () => void };

/**
 * Holds the bytes of answers being collected for a client against its budget (server.ts), so a
 * client cannot make the router gather more from providers than it may hold.
 */
export type AnswerBudget = {
  /** Bytes of each answer held free of charge. */
  readonly freeBytes: number;
  /** Charges `bytes` more; false, and nothing charged, when the client or the router has no room. */
  collect: (bytes: number) => boolean;
  /** Gives back what an attempt that brought no answer had charged. */
  release: (bytes: number) => void;
  /** The client's key (ClientShare.key): the wait list's turn its calls take, also those a filter makes for it. */
  readonly turn: string;
};

/** The user agent of every request a router sends a provider: a router refuses calls that carry it (server.ts). */
export const routerUserAgent = "opendin-router";
const upstreamHeaders = { "content-type": "application/json", accept: "application/json", "user-agent": routerUserAgent };

/** Methods that broadcast a transaction: sent to several providers at once (failover.writeFanout). */
export const writeMethods: ReadonlySet<string> = new Set(["eth_sendRawTransaction", "eth_sendRawTransactionSync", "eth_sendRawTransactionConditional"]);

/**
 * Errors that are an execution or the caller's own (in geth's, Hardhat's, Besu's, reth's and
 * OpenEthereum's words): never the provider's fault, never retried.
 */
const executionPattern =
  /revert|invalid opcode|invalid jump|stack (underflow|overflow)|evm error|vm execution error|out of gas|insufficient funds|insufficient balance|upfront cost|nonce too (low|high)|already known|known transaction|underpriced|intrinsic gas|requires at least \d+ gas|fee cap|base fee|(higher|bigger) than max ?fee ?per ?gas|gas limit|exceeds block gas|exceeds allowance|invalid sender|invalid signature|transaction type not supported/i;
/** Codes of an execution error: 3 (a revert, EIP-1474's execution error), -32015 (OpenEthereum's VM execution error), -32003 (transaction rejected). */
const executionCodes: ReadonlySet<number> = new Set([3, -32015, -32003]);
/** Errors of the provider's own making: retried elsewhere and counted against it. */
const faultPattern = /rate.?limit|too many requests|capacity|internal error|service unavailable|bad gateway|gateway timeout|timed? ?out|try again later|upstream|backend/i;
/**
 * Errors of the call's own size or cost, under limits that differ between providers (results per
 * query, block range, execution time): retried elsewhere, not counted, passed on if all give them.
 */
const callLimitPattern =
  /query returned more than|more than \d+ (results|logs)|too many (results|logs|blocks)|block range|blocks range|limited to [^.]*range|range (is )?too (large|wide|big)|response (size|is too large)|exceed(s|ed)? (the )?(max|maximum|limit)[^.]*(range|results|logs|blocks|size|topics|addresses)|exceeds limit|execution aborted|execution timeout|max-recreate-state-depth/i;
/** Errors another provider might not give (its node lacks the data): retried, not counted. */
const softPattern =
  /header not found|header for hash not found|missing trie node|unknown block|block not found|block \S+ not found|beyond head block|pruned|not synced|syncing|sync is still in progress|indexing is in progress|historical state|state .*not available/i;

/** nginx's default limit on a request's body (client_max_body_size), which many nodes sit behind. */
const commonBodyLimitBytes = 1024 * 1024;

/**
 * A provider's HTTP 413 to a call of `bytes`: a failure, and past the common limit the call's own,
 * never held against the provider, even once another takes the call (a client that could make
 * providers fail at will, with a provider of its own taking what they refuse, would open their
 * circuits: the security review). Below it, the provider takes less than nodes usually do, and is
 * blamed once another provider takes the call. (Not an answer kept for the client: another node's
 * refusal of a transaction says more.)
 */
function tooLargeFor(bytes: number, latencyMs: number): Outcome {
  if (bytes <= commonBodyLimitBytes) return { type: "failure", kind: "too_large", detail: "HTTP 413 (the call is larger than it takes)", latencyMs };
  return { type: "failure", kind: "too_large", detail: `HTTP 413 (the call, ${bytes} bytes, is larger than it takes)`, latencyMs, callsOwn: true };
}

/**
 * Methods whose answer is small by nature (a number, a hash, a flag, a short string, or a node's
 * error message). A provider answering one with more than smallAnswerBytes is cut off as
 * malformed, its fault: checking a 16 MiB answer holds the event loop for 35–80 ms, so a provider
 * could otherwise stall the router with its share of traffic or its probes. eth_call and
 * eth_estimateGas are not among them: a revert may carry any amount of data.
 */
const smallAnswerMethods: ReadonlySet<string> = new Set([
  "eth_blockNumber",
  "eth_chainId",
  "net_version",
  "net_listening",
  "net_peerCount",
  "web3_clientVersion",
  "web3_sha3",
  "eth_protocolVersion",
  "eth_syncing",
  "eth_gasPrice",
  "eth_maxPriorityFeePerGas",
  "eth_blobBaseFee",
  "eth_getBalance",
  "eth_getTransactionCount",
  "eth_getStorageAt",
  "eth_getBlockTransactionCountByHash",
  "eth_getBlockTransactionCountByNumber",
  "eth_getUncleCountByBlockHash",
  "eth_getUncleCountByBlockNumber",
  "eth_sendRawTransaction",
  "eth_sendRawTransactionConditional",
]);
const smallAnswerBytes = 64 * 1024;

/** The most bytes a provider may answer `method` with (Infinity: up to limits.maxResponseBytes, the HTTP client's cap). */
function answerCap(method: string): number {
  return smallAnswerMethods.has(method) ? smallAnswerBytes : Infinity;
}

type JsonType = "string" | "array" | "object" | "boolean" | "null";

/** Methods whose result is a number, written as a hex quantity (the type check takes any string)… */
const numberResults = ["eth_blockNumber", "eth_chainId", "eth_gasPrice", "eth_maxPriorityFeePerGas", "eth_blobBaseFee", "eth_getBalance", "eth_getTransactionCount", "eth_estimateGas"];
/** …or null for a block the node does not know. */
const countResults = ["eth_getBlockTransactionCountByHash", "eth_getBlockTransactionCountByNumber", "eth_getUncleCountByBlockHash", "eth_getUncleCountByBlockNumber"];
const quantityResults: ReadonlySet<string> = new Set([...numberResults, ...countResults]);
/** Methods whose result is bytes: 0x and two hex digits a byte (a re-probe of the security review saw "hello <b>x</b>" reach clients as an eth_call result). */
const dataResults: ReadonlySet<string> = new Set(["eth_call", "eth_getCode", "eth_getStorageAt"]);
const hexData = /^0x(?:[0-9a-fA-F]{2})*$/;

/**
 * The JSON types a method's result may have (the execution API's, with null where nodes answer
 * null for a block or transaction they do not know). A result of another type is not passed to
 * the client (a provider answering eth_getLogs with a string would break it) but tried elsewhere,
 * and held against the provider once another answers the call (`wrong_type`): a node of some chain
 * might answer so for every provider. Methods not listed are not checked.
 */
const resultTypes: ReadonlyMap<string, readonly JsonType[]> = new Map([
  ...[
    ...numberResults,
    "eth_getCode",
    "eth_getStorageAt",
    "eth_call",
    "eth_sendRawTransaction",
    "eth_sendRawTransactionConditional",
    "net_version",
    "web3_clientVersion",
    "web3_sha3",
  ].map((method): [string, JsonType[]] => [method, ["string"]]),
  ...[
    ...countResults,
    "eth_getRawTransactionByHash",
    "eth_getRawTransactionByBlockHashAndIndex",
    "eth_getRawTransactionByBlockNumberAndIndex",
  ].map((method): [string, JsonType[]] => [method, ["string", "null"]]),
  ...[
    "eth_getBlockByHash",
    "eth_getBlockByNumber",
    "eth_getTransactionByHash",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionBySenderAndNonce",
    "eth_getTransactionReceipt",
    "eth_getUncleByBlockHashAndIndex",
    "eth_getUncleByBlockNumberAndIndex",
  ].map((method): [string, JsonType[]] => [method, ["object", "null"]]),
  ...["eth_feeHistory", "eth_getProof", "eth_createAccessList", "eth_fillTransaction", "eth_sendRawTransactionSync"].map((method): [string, JsonType[]] => [method, ["object"]]),
  ["eth_getLogs", ["array"]],
  ["eth_simulateV1", ["array"]],
  ["eth_getBlockReceipts", ["array", "null"]],
  ["eth_syncing", ["boolean", "object"]],
  ["net_listening", ["boolean"]],
]);

/**
 * Methods reading state at a block, which Besu answers with null (not an error, as geth does) for a
 * block whose state it no longer holds: like "missing trie node", another provider may have it.
 */
const nullWithoutState: ReadonlySet<string> = new Set(["eth_getBalance", "eth_getCode", "eth_getStorageAt", "eth_getTransactionCount", "eth_call", "eth_getProof"]);

/** The JSON types `method`'s result may have; undefined when it is not checked. */
export function resultTypesOf(method: string): readonly JsonType[] | undefined {
  return resultTypes.get(method);
}

function jsonType(value: unknown): JsonType | "number" {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value as JsonType | "number";
}

/** Whether an error message says the node lacks the data asked for (another node may have it). */
export function lacksData(message: string): boolean {
  return softPattern.test(message);
}

/**
 * Methods that read what is stored and execute nothing: an execution error (a revert, out of gas,
 * a nonce) in answer to one is no caller's mistake but the provider's fault.
 */
const executesNothing: ReadonlySet<string> = new Set([
  "eth_blockNumber",
  "eth_chainId",
  "net_version",
  "eth_syncing",
  "eth_gasPrice",
  "eth_maxPriorityFeePerGas",
  "eth_blobBaseFee",
  "eth_feeHistory",
  "eth_getBalance",
  "eth_getCode",
  "eth_getStorageAt",
  "eth_getTransactionCount",
  "eth_getProof",
  "eth_getLogs",
  "eth_getBlockByHash",
  "eth_getBlockByNumber",
  "eth_getBlockReceipts",
  "eth_getBlockTransactionCountByHash",
  "eth_getBlockTransactionCountByNumber",
  "eth_getTransactionByHash",
  "eth_getTransactionByBlockHashAndIndex",
  "eth_getTransactionByBlockNumberAndIndex",
  "eth_getTransactionReceipt",
]);

/**
 * Classifies a JSON-RPC error object from a provider's answer to `method`: the call's own
 * (`answer`), a lack of data or a limit of this node's (`soft`), the provider's (`fault`), or
 * `unknown`: an error of a node's own wording ("request failed") or "method not found" to a call
 * that is not a send (an execution error is told by its words or code: executionPattern), or
 * invalid params or request to a call that executes nothing. An unknown error is taken as a soft
 * one: other providers are asked, none blamed, and it is the answer if none does better. A
 * provider answering so would otherwise fail its share of calls; blaming it is not safe (nodes
 * differ: geth refuses five topics, "exceed max topics", where Hardhat answers [], and a client
 * could have an honest provider blamed with calls of its choosing). A client's truly bad read so
 * costs an attempt on each provider tried.
 */
export function classifyRpcError(code: number, message: string, method: string): "answer" | "soft" | "fault" | "unknown" {
  const read = executesNothing.has(method);
  // The caller's request, which a node may repeat ("invalid value \"revert\"", "pruned"); to a
  // read, not known to be (a provider refusing valid reads so must not fail them; Alchemy says its
  // block range limit so).
  if (code === -32602 || code === -32600) return read ? "unknown" : "answer";
  // "Method not found" from one provider: another may serve it (nodes differ in what they offer).
  if (code === -32601) return writeMethods.has(method) ? "answer" : "unknown";
  if (executionCodes.has(code) || executionPattern.test(message)) return read ? "fault" : "answer";
  if (callLimitPattern.test(message)) return "soft"; // before the faults: -32005 and "timeout" are also a provider's own
  if (code === -32005 || code === -32029 || code === -32603 || code === -32700 || faultPattern.test(message)) return "fault";
  if (softPattern.test(message)) return "soft";
  return writeMethods.has(method) ? "answer" : "unknown";
}

/**
 * What parsing a reply costs is set less by its bytes than by its objects and arrays: 16 MiB of
 * real logs parse in 80 ms, 16 MiB of `[{},{},…]` in 2.8 s (and over 300 MB), of `[[0],[0],…]` in 2.2 s.
 * A reply holding more than these is not parsed, as one past the size cap is not (it counts against
 * its provider only if another provider answers the call: a request may ask for that much). Real
 * answers hold far fewer: 16 MiB of logs about 63,000 objects and arrays and 380,000 values; the
 * bounds keep checking any reply of repeated keys under about 300 ms (keys never repeated: see costlyParseMs).
 */
const maxReplyContainers = 256 * 1024;

/**
 * The deepest nesting passed on: the answers of the methods served by default nest under ten levels
 * (a block's transactions' access lists); a call trace (debug_, trace_, refused unless allowed) may
 * nest deeper. Deeper ones break clients' parsers (Python's stops near 1,000 levels) and the
 * router's own JSON.stringify (near 5,000); like a reply too large, one counts against its
 * provider only if another provider answers the call.
 */
export const maxReplyDepth = 512;

/**
 * Distinct keys and short strings cost more than the counts above can tell: 6 MiB of objects
 * of 32 keys never repeated parse in 670 ms, and 15 MiB of them in 1.3 s, where real answers of
 * the methods the router knows (their keys repeat: fields of logs, blocks, receipts) take about
 * 5 ms a MiB. Such a reply of 512 KiB or more whose parse took more than 50 ms and 30 ms a MiB of
 * CPU is not passed on, and counts against its provider as one too large does: it cannot stall the
 * router for long, nor keep its share of traffic doing so. Answers of methods it does not know
 * (a trace, when an operator allows them) are keyed by address and slot, every key new: not timed.
 */
const timedParseBytes = 512 * 1024;
const costlyParseMs = 50;
const costlyParseMsPerMiB = 30;
const maxReplyValues = 2 * 1024 * 1024;

/** Reads a provider's reply to `method` for call `id`: the verdict, with the bytes to pass through. */
export function judgeReply(bytes: Buffer, id: RpcId, method: string, latencyMs: number): Outcome {
  if (holdsMoreThan(bytes, maxReplyContainers, maxReplyValues)) {
    const detail = `the reply holds more than ${maxReplyContainers.toLocaleString("en-US")} objects and arrays or ${maxReplyValues.toLocaleString("en-US")} values (too costly to check)`;
    return { type: "failure", kind: "too_large", detail, latencyMs };
  }
  // The bytes go to the client as they are: ones that are not UTF-8 would be checked as U+FFFD, and
  // strict decoders (Rust's, Go's encoding/json on some paths) refuse them (the security review).
  const text = utf8Text(bytes);
  if (text === null) return { type: "failure", kind: "malformed", detail: "the reply is not valid UTF-8", latencyMs };
  let value: unknown;
  const timed = bytes.length >= timedParseBytes && resultTypes.has(method);
  // The main thread's CPU time, not the wall clock's: a host that pauses the process (others
  // busy on its cores) must not make a real answer look costly.
  const parseStart = timed ? process.threadCpuUsage() : null;
  try {
    value = JSON.parse(text);
  } catch {
    return { type: "failure", kind: "malformed", detail: "the reply is not valid JSON", latencyMs };
  }
  if (parseStart !== null) {
    const used = process.threadCpuUsage(parseStart);
    const took = (used.user + used.system) / 1000;
    if (took > Math.max(costlyParseMs, (costlyParseMsPerMiB * bytes.length) / (1024 * 1024))) {
      const detail = `the reply took ${Math.round(took)} ms of CPU to parse (${(bytes.length / (1024 * 1024)).toFixed(1)} MiB): too costly to check`;
      return { type: "failure", kind: "too_large", detail, latencyMs };
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { type: "failure", kind: "malformed", detail: "the reply is not a JSON-RPC response object", latencyMs };
  }
  // Nesting needs two bytes a level: a short reply cannot be too deep, and costs no walk.
  if (bytes.length > 2 * maxReplyDepth && nestsDeeperThan(value, maxReplyDepth)) {
    return { type: "failure", kind: "too_large", detail: `the reply nests deeper than ${maxReplyDepth} levels`, latencyMs };
  }
  const reply = value as { jsonrpc?: unknown; id?: unknown; result?: unknown; error?: unknown };
  if (reply.jsonrpc !== "2.0") return { type: "failure", kind: "malformed", detail: 'the reply lacks "jsonrpc":"2.0"', latencyMs };
  if (reply.id !== id) {
    // id null with a JSON-RPC request error is how a node answers a request it could not read: the
    // request may be at fault (held as a suspect, counted against maxAttempts), not only the provider.
    if (reply.id === null && isRpcError(reply.error) && reply.error.code <= -32600 && reply.error.code >= -32700) {
      return { type: "failure", kind: "rpc_fault", detail: `could not read the call: ${reply.error.code} ${reply.error.message.slice(0, 200)}`, latencyMs };
    }
    return { type: "failure", kind: "wrong_id", detail: `answered id ${describeId(reply.id)} for id ${describeId(id)}`, latencyMs };
  }
  const hasResult = reply.result !== undefined;
  const hasError = reply.error !== undefined;
  if (hasResult === hasError) {
    return { type: "failure", kind: "malformed", detail: "the reply must hold exactly one of result and error", latencyMs };
  }
  if (hasResult) {
    const types = resultTypes.get(method);
    const type = jsonType(reply.result);
    if (types !== undefined && !types.includes(type as JsonType)) {
      if (type === "null" && nullWithoutState.has(method)) return { type: "soft", bytes, latencyMs };
      return { type: "failure", kind: "wrong_type", detail: `answered ${method} with ${article(type)} (${types.map(article).join(" or ")} is due)`, latencyMs };
    }
    const quantity = quantityOf(reply.result);
    if (quantity === null && type === "string" && quantityResults.has(method)) {
      return { type: "failure", kind: "wrong_type", detail: `answered ${method} with ${JSON.stringify((reply.result as string).slice(0, 40))} (a hex quantity is due)`, latencyMs };
    }
    if (type === "string" && dataResults.has(method) && !hexData.test(reply.result as string)) {
      return { type: "failure", kind: "wrong_type", detail: `answered ${method} with ${JSON.stringify((reply.result as string).slice(0, 40))} (hex data is due)`, latencyMs };
    }
    return { type: "answer", bytes, error: null, result: reply.result, latencyMs, quantity, block: shownBlock(method, reply.result, quantity), nullResult: type === "null" };
  }
  const error = reply.error;
  if (!isRpcError(error)) return { type: "failure", kind: "malformed", detail: "the error member is not {code, message}", latencyMs };
  const rpcError = { code: error.code, message: error.message };
  const verdict = classifyRpcError(rpcError.code, rpcError.message, method);
  if (verdict === "fault") return { type: "failure", kind: "rpc_fault", detail: `${rpcError.code} ${rpcError.message.slice(0, 200)}`, latencyMs };
  if (verdict === "soft" || verdict === "unknown") return { type: "soft", bytes, latencyMs };
  return { type: "answer", bytes, error: rpcError, result: undefined, latencyMs, quantity: null, block: null, nullResult: false };
}

/** Whether a reply's error member is a JSON-RPC error object: a numeric code and a message. */
export function isRpcError<T>(error: T): error is T & { code: number; message: string } {
  const e = error as { code?: unknown; message?: unknown } | null;
  return typeof e === "object" && e !== null && typeof e.code === "number" && typeof e.message === "string";
}

/** An id as a log line shows it: a provider's may be any JSON, as deep as it likes. */
function describeId(id: unknown): string {
  return typeof id === "object" && id !== null ? (Array.isArray(id) ? "a list" : "an object") : JSON.stringify(id);
}

function article(type: JsonType | "number"): string {
  return type === "null" ? "null" : type === "array" ? "a list" : type === "object" ? "an object" : `a ${type}`;
}

function failureOf(error: unknown): { kind: FailureKind; detail: string } {
  if (error instanceof EndpointRefusedError) return { kind: "endpoint_refused", detail: error.message };
  const e = error as { code?: string; name?: string; message?: string; cause?: unknown };
  if (e.cause instanceof EndpointRefusedError) return { kind: "endpoint_refused", detail: e.cause.message };
  const code = e.code ?? "";
  // HTTP the router cannot read (a bad status line, header or chunk: httpClient.ts).
  if (code === "UND_ERR_PROTOCOL") return { kind: "malformed", detail: e.message ?? code };
  if (code === "UND_ERR_RES_EXCEEDED_MAX_SIZE") return { kind: "too_large", detail: "the reply exceeded the response size cap" };
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT") {
    return { kind: "timeout", detail: code };
  }
  return { kind: "connect", detail: `${code || e.name || "error"}: ${e.message ?? String(error)}`.slice(0, 300) };
}

const cancelled = new Error("attempt cancelled by the router");

/** Below this much time left before its call's deadline, no attempt starts (nor leaves the wait list). */
export const minAttemptMs = 20;

/**
 * The router's connections to one origin, as its HTTP client pools them (`scheme://host:port`: providers
 * on one host, say one operator's chains on different paths, share them), and the client calls'
 * requests waiting for one. The wait list is the router's own, so a request nobody needs any more
 * leaves it at once (in the HTTP client's queue it could not), and a connection that frees goes to the
 * clients waiting in turn, each client's requests in order: one client with hundreds of slow calls
 * does not make another's wait behind all of them.
 */
export class ConnectionGate {
  readonly origin: string;
  readonly connections: number;
  /** Client calls' requests the HTTP client holds on these connections (from dispatch to their end). */
  busy = 0;
  /** The requests waiting, by client (ClientShare.key; null: the router's own calls, which take one turn together); the client whose turn is next first. */
  private readonly waitingBy = new Map<string | null, Set<UpstreamAttempt>>();
  /** How many requests wait. */
  waiting = 0;
  /** A hand-off from the wait list is running: a release inside it only frees its connection. */
  handingOver = false;

  constructor(origin: string, connections: number) {
    this.origin = origin;
    this.connections = connections;
  }

  /** Whether a request would go out at once: a connection free, and nobody waiting before it (one may be being handed over). */
  get free(): boolean {
    return this.busy < this.connections && this.waiting === 0;
  }

  wait(attempt: UpstreamAttempt, client: string | null): void {
    let list = this.waitingBy.get(client);
    if (list === undefined) this.waitingBy.set(client, (list = new Set()));
    list.add(attempt);
    this.waiting++;
  }

  isWaiting(attempt: UpstreamAttempt, client: string | null): boolean {
    return this.waitingBy.get(client)?.has(attempt) ?? false;
  }

  /** Takes `attempt` off the wait list; false if it was not on it. */
  leave(attempt: UpstreamAttempt, client: string | null): boolean {
    const list = this.waitingBy.get(client);
    if (list === undefined || !list.delete(attempt)) return false;
    if (list.size === 0) this.waitingBy.delete(client);
    this.waiting--;
    return true;
  }

  /** Takes the next request off the wait list: the first of the client whose turn it is, who then goes last. */
  next(): UpstreamAttempt | null {
    for (const [client, list] of this.waitingBy) {
      const first: UpstreamAttempt = list.values().next().value!;
      list.delete(first);
      this.waitingBy.delete(client);
      if (list.size > 0) this.waitingBy.set(client, list);
      this.waiting--;
      return first;
    }
    return null;
  }
}

/** The gates of every origin client calls go to, each with `connections` (limits.connectionsPerProvider, the HTTP client's per origin). */
export class ConnectionGates {
  readonly connections: number;
  private readonly byOrigin = new Map<string, ConnectionGate>();

  constructor(connections: number) {
    this.connections = connections;
  }

  of(origin: string): ConnectionGate {
    let gate = this.byOrigin.get(origin);
    if (gate === undefined) this.byOrigin.set(origin, (gate = new ConnectionGate(origin, this.connections)));
    return gate;
  }

  /** Whether a request to `origin` would go out at once (a connection free, nobody waiting). */
  hasFree(origin: string): boolean {
    const gate = this.byOrigin.get(origin);
    return gate === undefined || gate.free;
  }

  /** Forgets idle gates of origins no provider has now (after a provider set update). */
  prune(liveOrigins: ReadonlySet<string>): void {
    for (const [origin, gate] of this.byOrigin) {
      if (!liveOrigins.has(origin) && gate.busy === 0 && gate.waiting === 0) this.byOrigin.delete(origin);
    }
  }
}

/**
 * One attempt of one call on one provider: a dispatch handler (httpClient.ts) that gathers the reply and
 * tells its owner the outcome once. No stream, no promise, no timer of its own: the owner calls
 * `timeout()` or `cancel()` when it decides to (see failover.ts's sweeper).
 *
 * The provider's clock (its timeout, its latency) starts when the request goes out on a
 * connection, not when it is dispatched: with all of the router's connections to the provider
 * busy, a request waits in the router's queue, and that wait is the router's, never held against
 * the provider (a burst of traffic would otherwise time out on healthy providers and open their
 * circuits).
 */
export class UpstreamAttempt implements Dispatcher.DispatchHandler {
  readonly provider: ProviderHealth;
  private readonly startedAt: number;
  /** When the request went out on a connection (NaN while it waits in the router's queue). */
  private sentAtMs = Number.NaN;
  /** The attempt ends by then whatever happens, sent or not (performance.now() ms). */
  private readonly endBy: number;
  private readonly id: RpcId;
  private readonly owner: AttemptOwner;
  private readonly timeoutMs: number;
  private readonly budget: AnswerBudget | null;
  private controller: Dispatcher.DispatchController | null = null;
  private status = 0;
  private readonly answer = new Pieces();
  /** Bytes of the answer charged to the budget so far. */
  private charged = 0;
  private settled = false;
  private client: UpstreamDispatcher | null = null;
  private body = "";
  /** The router's connections this request counts in (a client call's; null: a probe's, on connections of its own). */
  private gate: ConnectionGate | null = null;
  /** The HTTP client holds the request (from dispatch to its end or error). */
  private holding = false;
  /** Stops a request that ended for the router but runs on (see finish). */
  private cutOff: NodeJS.Timeout | null = null;
  private readonly method: string;
  /** The most bytes its answer may have (see answerCap). */
  private readonly maxBytes: number;
  /** Whose turn it waits in (ClientShare.key; null: the router's own calls). */
  private readonly turn: string | null;

  /**
   * `timeoutMs` counts from the request going out; `endBy` (default: `timeoutMs` from now) is when
   * the attempt ends even if it never went out (its call's deadline); `method`: the call's, whose
   * answer is checked for its size (answerCap) and its result's type.
   */
  constructor(provider: ProviderHealth, id: RpcId, timeoutMs: number, owner: AttemptOwner, budget: AnswerBudget | null = null, endBy?: number, method = "", turn: string | null = null) {
    this.provider = provider;
    this.id = id;
    this.owner = owner;
    this.timeoutMs = timeoutMs;
    this.budget = budget;
    this.method = method;
    this.turn = turn;
    this.maxBytes = answerCap(method);
    this.startedAt = performance.now();
    this.endBy = endBy ?? this.startedAt + timeoutMs;
  }

  /** When the owner should give up on it (performance.now() ms): moves earlier once the request is sent. */
  get deadlineAt(): number {
    return Number.isNaN(this.sentAtMs) ? this.endBy : Math.min(this.sentAtMs + this.timeoutMs, this.endBy);
  }

  /** It waits in the router's queue: all of the router's connections to its provider's origin are busy. */
  get queued(): boolean {
    return this.gate !== null && this.gate.isWaiting(this, this.turn);
  }

  /** When the request went out on a connection (performance.now() ms); NaN while it waits in the router's queue. */
  get sentAt(): number {
    return this.sentAtMs;
  }

  /** The provider's time on it so far: from the request going out (or from dispatch, for a connect error). */
  private elapsed(): number {
    return performance.now() - (Number.isNaN(this.sentAtMs) ? this.startedAt : this.sentAtMs);
  }

  /**
   * Sends the request (the owner may hear the outcome before this returns). With `gates` (for a
   * client call), a request past the router's connections to the provider's origin waits in that
   * origin's wait list until one is free, and leaves it at once if it ends first.
   */
  start(client: UpstreamDispatcher, body: string, gates: ConnectionGates | null = null): void {
    this.client = client;
    this.body = body;
    if (gates === null) {
      this.dispatch();
      return;
    }
    const gate = gates.of(this.provider.origin);
    this.gate = gate;
    if (gate.free) this.dispatch();
    else {
      gate.wait(this, this.turn);
      this.provider.waiting++;
    }
  }

  /** Leaves the wait list for the HTTP client, or ends unsent, blaming nobody, when its time ran out while it waited. */
  private go(): void {
    if (this.settled) return;
    if (this.endBy - performance.now() < minAttemptMs) this.timeout();
    else this.dispatch();
  }

  private dispatch(): void {
    const provider = this.provider;
    const timeoutMs = this.timeoutMs;
    if (this.gate !== null) {
      this.gate.busy++;
      provider.inFlight++;
    }
    this.holding = true;
    this.client!.dispatch(
      {
        origin: provider.origin,
        path: provider.path,
        method: "POST",
        headers: upstreamHeaders,
        body: this.body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      },
      this,
    );
  }

  /** The HTTP client is done with the request (answered, failed or dropped): its connection takes the next one waiting. */
  private release(): void {
    if (!this.holding) return;
    this.holding = false;
    if (this.cutOff !== null) clearTimeout(this.cutOff);
    const gate = this.gate;
    if (gate === null) return;
    gate.busy--;
    this.provider.inFlight--;
    // A release inside the hand-off below (a dispatch that fails at once, the router stopping) only
    // frees its connection: the loop takes it, so a long wait list unwinds without recursion.
    if (gate.handingOver) return;
    gate.handingOver = true;
    try {
      // While connections are free; one whose time ran out ends unsent (the sweeper may not have got to it).
      while (gate.busy < gate.connections) {
        const next = gate.next();
        if (next === null) break;
        next.provider.waiting--;
        next.go();
      }
    } finally {
      gate.handingOver = false;
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // Ended while it waited for the connection (its call's deadline, a hedge won, its client left):
    // not a byte is written yet. A throw here makes the HTTP client drop the request and keep the
    // connection for the next; controller.abort() would destroy the connection.
    const now = performance.now();
    if (!this.settled && now >= this.endBy) this.timeout(); // its time ran out meanwhile
    if (this.settled) throw cancelled;
    this.controller = controller;
    this.sentAtMs = now;
    this.owner.sent?.();
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.status !== 200 || this.settled) return; // the body of a failed status is not read into memory
    const size = this.answer.size + chunk.length;
    if (size > this.maxBytes) {
      // No result of such a call is that long, but an error may be: nodes repeat a bad parameter
      // in it (Hardhat does), so it counts against the provider only once another answers the call.
      const detail = `answered more than ${this.maxBytes / 1024} KiB to a call whose answer is a few bytes`;
      this.finish({ type: "failure", kind: "too_large", detail, latencyMs: this.elapsed() });
      this.controller?.abort(cancelled);
      return;
    }
    const owed = this.budget === null ? 0 : size - this.budget.freeBytes - this.charged;
    if (owed > 0) {
      if (!this.budget!.collect(owed)) {
        this.finish({ type: "over_budget", latencyMs: this.elapsed() });
        this.controller?.abort(cancelled);
        return;
      }
      this.charged += owed;
    }
    this.answer.add(chunk);
  }

  onResponseEnd(): void {
    this.release();
    if (this.settled) return; // abandoned or cut while it ran: its answer goes unused
    const latencyMs = this.elapsed();
    const status = this.status;
    if (status !== 200) {
      if (status === 429) this.finish({ type: "failure", kind: "http_429", detail: "HTTP 429 (rate limited)", latencyMs });
      // The call may be past this node's limit on requests (a blob transaction, behind nginx's 1 MiB): another's may take it.
      else if (status === 413) this.finish(tooLargeFor(Buffer.byteLength(this.body), latencyMs));
      // A router's refusal of a call another router forwards: the endpoint is not a node (no call is sent there).
      else if (status === 508) this.finish({ type: "failure", kind: "http_status", detail: "HTTP 508 (loop detected: a router's answer to a call another router forwards; or a host's resource limit)", latencyMs });
      else if (status >= 500) this.finish({ type: "failure", kind: "http_5xx", detail: `HTTP ${status}`, latencyMs });
      else if (status >= 300 && status < 400) {
        this.finish({ type: "failure", kind: "http_redirect", detail: `HTTP ${status} redirect (never followed)`, latencyMs });
      }
      // Another 4xx may be the call's doing (a firewall's 403 to "<script" in its params, a proxy's
      // 400): one client's calls switched off every provider behind such a firewall (a re-probe of the security review).
      else if (status >= 400 && status < 500) this.finish({ type: "failure", kind: "http_4xx", detail: `HTTP ${status}`, latencyMs });
      else this.finish({ type: "failure", kind: "http_status", detail: `HTTP ${status}`, latencyMs });
      return;
    }
    const bytes = this.answer.take();
    this.finish(judgeReply(bytes, this.id, this.method, latencyMs));
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.release();
    if (this.settled) return;
    const { kind, detail } = failureOf(error);
    this.finish({ type: "failure", kind, detail, latencyMs: this.elapsed() });
  }

  /**
   * The attempt reached its deadline: the provider's failure if it had its whole timeout (within
   * the timers' millisecond) since the request went out; otherwise the time ran out while the
   * request waited in the router's queue (a connect that hangs fails by the connect timeout).
   */
  timeout(): void {
    if (this.settled) return;
    const hadItsTime = performance.now() - this.sentAtMs >= this.timeoutMs - 1; // false while unsent (NaN)
    if (hadItsTime) {
      this.finish({ type: "failure", kind: "timeout", detail: `no complete answer within ${Math.round(this.timeoutMs)} ms`, latencyMs: this.elapsed() });
      this.controller?.abort(cancelled);
      return;
    }
    // Not the provider's doing: a request already out runs to its end (the HTTP client's own timeouts bound
    // it) and its answer goes unused, rather than cost the connection.
    this.finish({ type: "queued", latencyMs: this.elapsed() });
  }

  /**
   * Nobody needs the answer (the client went away): not held against the provider. Unlike
   * cancel(), a request already out runs to its end rather than cost the connection; one still
   * waiting for a connection is dropped before a byte is sent.
   */
  abandon(): void {
    if (this.settled) return;
    this.finish({ type: "cancelled", latencyMs: this.elapsed() });
  }

  /** The router no longer needs this attempt (a hedge won): not held against the provider. */
  cancel(): void {
    if (this.settled) return;
    this.abandon();
    this.controller?.abort(cancelled);
  }

  get done(): boolean {
    return this.settled;
  }

  private finish(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    // A request left to run to its end unused (its client left, or its call's deadline came first)
    // still ends by its timeout: the HTTP client's body timeout restarts with every byte, so a provider
    // trickling its answer would otherwise hold the connection for ever.
    if (this.holding && !Number.isNaN(this.sentAtMs)) {
      this.cutOff = setTimeout(() => this.controller?.abort(cancelled), Math.max(0, this.sentAtMs + this.timeoutMs - performance.now()));
      this.cutOff.unref();
    }
    if (this.gate?.leave(this, this.turn)) this.provider.waiting--; // ended before a connection was free: never sent
    // An answer's bytes stay charged until the client's answer is sent; the rest are garbage now.
    if (this.charged > 0 && outcome.type !== "answer" && outcome.type !== "soft") {
      this.answer.clear();
      this.budget!.release(this.charged);
    }
    this.owner.settle(this, outcome);
  }
}

/** A single call of `method` without params as a promise, with its own timer: for health probes, off the hot path. */
export function attemptOnce(client: UpstreamDispatcher, provider: ProviderHealth, method: string, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined = undefined;
    const owner: AttemptOwner = {
      settle: (_attempt, outcome) => {
        if (timer !== undefined) clearTimeout(timer);
        resolve(outcome);
      },
    };
    const attempt = new UpstreamAttempt(provider, 1, timeoutMs, owner, null, undefined, method);
    attempt.start(client, `{"jsonrpc":"2.0","id":1,"method":"${method}","params":[]}`);
    if (!attempt.done) timer = setTimeout(() => attempt.timeout(), timeoutMs);
  });
}
