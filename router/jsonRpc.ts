import { isUtf8 } from "node:buffer";
import { ClientInputError, RpcCode } from "./errors.ts";

// Reading what a client sent and writing what it gets back. Requests are parsed once; upstream
// answers pass through as the provider's bytes (after checks in upstream.ts), so this file only
// writes the router's own answers: local results and errors.

export type RpcId = string | number | null;

/** One JSON-RPC call as the router routes it (normalised: unknown members are dropped). */
export type RpcCall = {
  id: RpcId;
  method: string;
  /** `undefined` when the client sent none. */
  params: unknown;
  /** No `id` member: the client wants no answer. */
  notification: boolean;
};

/** A batch item that could not be read as a call, answered with an error and its id if any. */
export type InvalidItem = { id: RpcId; code: number; message: string };

export type ParsedItem = RpcCall | InvalidItem;

export type ParsedBody = { batch: false; item: ParsedItem } | { batch: true; items: ParsedItem[] };

export type BodyLimits = {
  /** Items in one batch. */
  maxBatchItems: number;
  /** Nesting depth of arrays and objects anywhere in the body. */
  maxDepth: number;
};

export const methodPattern = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const maxIdLength = 256;

export function isCall(item: ParsedItem): item is RpcCall {
  return "method" in item;
}

/**
 * The nesting depth of a JSON text, stopping as soon as it passes `limit` (so a 1 MB "[[[[…" costs
 * one pass over the bytes and never reaches JSON.parse or a recursive walk).
 */
export function exceedsDepth(bytes: Buffer, limit: number): boolean {
  // Fast path: fewer opening brackets than the limit cannot nest deeper than it.
  if (countByte(bytes, 0x5b, limit + 1) + countByte(bytes, 0x7b, limit + 1) <= limit) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Whether a parsed value nests arrays and objects deeper than `limit` (the value itself is level
 * 1). Iterative: a provider's answer may nest as deep as JSON.parse goes, past any call stack.
 */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  const open: object[] = [value];
  const levels: number[] = [1];
  while (open.length > 0) {
    const container = open.pop() as Record<string, unknown>;
    const level = levels.pop() as number;
    if (level > limit) return true;
    // An array by index: for…in would enumerate its indices as strings (several times slower). The
    // two loops are written out: through a shared closure the walk took twice as long.
    if (Array.isArray(container)) {
      for (let i = 0; i < container.length; i++) {
        const inner: unknown = container[i];
        if (typeof inner === "object" && inner !== null) {
          open.push(inner);
          levels.push(level + 1);
        }
      }
    } else {
      for (const key in container) {
        const inner = container[key];
        if (typeof inner === "object" && inner !== null) {
          open.push(inner);
          levels.push(level + 1);
        }
      }
    }
  }
  return false;
}

/**
 * The most memory one byte of a body may take once parsed: `{},` is three bytes for an empty object
 * (about 60) and its slot in the array (8): a 1 MiB body of them holds about 22 MB parsed.
 */
export const parsedBytesPerByteAtMost = 32;

/**
 * A bound on the memory a body holds once parsed, counted from the bytes that open a container or
 * separate two values (those inside strings too: an over-estimate; hex data has none of them).
 */
export function parsedSize(bytes: Buffer): number {
  return bytes.length + 64 * (countByte(bytes, 0x7b) + countByte(bytes, 0x5b)) + 32 * countByte(bytes, 0x2c);
}

/**
 * Whether `bytes` hold more than `containers` JSON objects and arrays, or more than `values`
 * values in all, counted (over-counted: those inside strings too) from the bytes that open a
 * container or separate two values. Stops counting past the bounds; skips what cannot pass them.
 */
export function holdsMoreThan(bytes: Buffer, containers: number, values: number): boolean {
  if (bytes.length <= containers && bytes.length <= values) return false;
  const opened = countByte(bytes, 0x7b, containers + 1);
  const all = opened > containers ? opened : opened + countByte(bytes, 0x5b, containers + 1 - opened);
  if (all > containers) return true;
  return bytes.length > values && all + countByte(bytes, 0x2c, values + 1 - all) > values;
}

/** How often `byte` occurs in `bytes`, counting no further than `atMost`. */
function countByte(bytes: Buffer, byte: number, atMost = Infinity): number {
  let count = 0;
  for (let at = bytes.indexOf(byte); at >= 0 && count < atMost; at = bytes.indexOf(byte, at + 1)) count++;
  return count;
}

function readItem(value: unknown): ParsedItem {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { id: null, code: RpcCode.invalidRequest, message: "invalid request: a call must be a JSON object" };
  }
  const object = value as Record<string, unknown>;
  const hasId = Object.hasOwn(object, "id");
  const rawId = object.id;
  let id: RpcId = null;
  if (hasId) {
    if (typeof rawId === "string" && rawId.length <= maxIdLength) id = rawId;
    // A number is answered as JSON.parse read it: past 2^53 that is not the number sent.
    else if (typeof rawId === "number" && Number.isSafeInteger(rawId)) id = rawId;
    else if (rawId !== null) {
      return {
        id: null,
        code: RpcCode.invalidRequest,
        message: `invalid request: id must be a string (≤ ${maxIdLength} characters), a whole number within ±(2^53 − 1), or null`,
      };
    }
  }
  if (object.jsonrpc !== "2.0") {
    return { id, code: RpcCode.invalidRequest, message: 'invalid request: "jsonrpc" must be "2.0"' };
  }
  const method = object.method;
  if (typeof method !== "string" || !methodPattern.test(method)) {
    return { id, code: RpcCode.invalidRequest, message: 'invalid request: "method" must be a method name like "eth_blockNumber"' };
  }
  // null as no params: not in the spec, but geth and Hardhat take it (geth's own client sent it).
  const params = object.params === null ? undefined : object.params;
  if (params !== undefined && typeof params !== "object") {
    return { id, code: RpcCode.invalidRequest, message: 'invalid request: "params" must be an array or an object' };
  }
  // JSON-RPC allows params by name; no Ethereum method takes them, and a node answers them as an
  // unreadable request (id null), which must not reach a provider as though it were one's fault.
  if (params !== undefined && !Array.isArray(params)) {
    return { id, code: RpcCode.invalidParams, message: 'invalid params: Ethereum methods take their params as a list, such as ["0x…", "latest"], not by name' };
  }
  return { id, method, params, notification: !hasId };
}

/**
 * `bytes` decoded; null when they are not UTF-8. Decoding turns bad bytes into U+FFFD, so only a
 * text holding U+FFFD is checked byte by byte (one sent as such is valid).
 */
export function utf8Text(bytes: Buffer): string | null {
  const text = bytes.toString("utf8");
  return text.includes("\uFFFD") && !isUtf8(bytes) ? null : text;
}

/**
 * Parses a request body. Throws ClientInputError for what spoils the whole request (bad JSON, too
 * deep, an empty or oversized batch); a bad item inside a batch becomes an InvalidItem.
 */
export function parseBody(bytes: Buffer, limits: BodyLimits): ParsedBody {
  if (exceedsDepth(bytes, limits.maxDepth)) {
    throw new ClientInputError("too_deep", `invalid request: JSON nested deeper than ${limits.maxDepth} levels`, RpcCode.invalidRequest);
  }
  // Decoding turns bad bytes into U+FFFD: an id so changed would come back as another id.
  const text = utf8Text(bytes);
  if (text === null) throw new ClientInputError("parse_error", "parse error: the body is not valid UTF-8", RpcCode.parseError);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ClientInputError("parse_error", "parse error: the body is not valid JSON", RpcCode.parseError);
  }
  if (!Array.isArray(value)) return { batch: false, item: readItem(value) };
  if (value.length === 0) {
    throw new ClientInputError("invalid_request", "invalid request: empty batch", RpcCode.invalidRequest);
  }
  if (value.length > limits.maxBatchItems) {
    throw new ClientInputError(
      "batch_too_large",
      `limit exceeded: a batch holds at most ${limits.maxBatchItems} calls (got ${value.length}); split it`,
      RpcCode.limitExceeded,
      413,
    );
  }
  const items = new Array<ParsedItem>(value.length);
  for (let i = 0; i < value.length; i++) items[i] = readItem(value[i]);
  return { batch: true, items };
}

/** The body sent to a provider for one call: normalised, so duplicate or unknown members never pass. */
export function upstreamBody(call: RpcCall, id: RpcId): string {
  const params = call.params === undefined ? "" : `,"params":${JSON.stringify(call.params)}`;
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"${call.method}"${params}}`;
}

export function resultResponse(id: RpcId, resultJson: string): Buffer {
  return Buffer.from(`{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${resultJson}}`);
}

/** A call whose answer the client cannot be given now (the router's buffer budget): it may ask again. */
export function cannotHoldResponse(id: RpcId): Buffer {
  return errorResponse(id, RpcCode.limitExceeded, "the router is at capacity and cannot hold this answer now; retry this call");
}

export function errorResponse(id: RpcId, code: number, message: string, data?: unknown): Buffer {
  const error = data === undefined ? { code, message } : { code, message, data };
  return Buffer.from(JSON.stringify({ jsonrpc: "2.0", id, error }));
}

/** Same id by JSON value: 1 ≠ "1", null only equals null. */
export function sameId(a: unknown, b: RpcId): boolean {
  return a === b;
}
