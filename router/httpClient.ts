import { isIP, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { buildConnector, Dispatcher } from "undici";

// The router's HTTP/1.1 client to providers: keep-alive connections per origin, one request at a
// time on each, and a strict reader of the answer. It takes undici's dispatch contract (the
// handler's onRequestStart … onResponseEnd | onResponseError, a controller to abort) and undici's
// connector (TCP or TLS, its connect timeout, endpointPolicy's address checks), but not undici's
// pool: on the bench's static upstreams that took 15 µs of CPU off each of the router's requests,
// as much as its routing logic costs (router/README.md, "Benchmark"). It sends only what the
// router sends: a POST with a string body and fixed headers.
//
// An answer is a stranger's bytes: a malformed status line or header, a bad chunk, a header block
// past 16 KiB, a body past maxResponseBytes, or bytes after the answer end the connection with an
// error, never with a guess. Redirects are answers like any other (the router never follows one).

/** One request: a POST of `body` to `origin` + `path`. The timeouts are backstops, checked each second. */
export type UpstreamRequest = {
  origin: string;
  path: string;
  method: "POST";
  headers: Readonly<Record<string, string>>;
  body: string;
  headersTimeout?: number;
  bodyTimeout?: number;
};

/** What the router sends requests through: this client, or an undici Agent in tests. */
export interface UpstreamDispatcher {
  dispatch(request: UpstreamRequest, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export type HttpClientOptions = {
  /** Opens a connection (undici's buildConnector, wrapped with endpointPolicy's checks). */
  connect: buildConnector.connector;
  /** Connections kept per origin; requests past them wait in order. */
  connections: number;
  /** Largest answer body in bytes. */
  maxResponseBytes: number;
  /** How long an idle connection is kept when the provider gives no keep-alive hint (ms). */
  keepAliveMs?: number;
  /** The most a provider's keep-alive hint keeps one (ms). */
  keepAliveMaxMs?: number;
};

/**
 * An error of the client, with a code as undici's (upstream.ts's failureOf reads the codes; its
 * connector's errors have them too). Not a RouterError: it is a provider's failure, never a client's answer.
 */
export class HttpClientError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "HttpClientError";
    this.code = code;
  }
}

/** The headers, trailers and context handlers are given: the router reads none. */
const none = Object.freeze({});
const maxHeadBytes = 16 * 1024;
const headTooLarge = "the answer's headers, with its interim answers and trailers, are larger than 16 KiB";
const maxChunkLineBytes = 64;
const defaultTimeoutMs = 30_000;
const sweepMs = 1_000;

type Origin = {
  protocol: string;
  hostname: string;
  host: string;
  port: string;
  idle: Connection[];
  open: number;
  waiting: Pending[];
  /** Request heads up to the content length, by path, with the headers object each was built from (nearly always one). */
  heads: Map<string, { headers: UpstreamRequest["headers"]; head: string }>;
};

/** A request from dispatch to its end, and the controller its handler aborts it with. */
class Pending implements Dispatcher.DispatchController {
  readonly request: UpstreamRequest;
  readonly handler: Dispatcher.DispatchHandler;
  /** Null for a request refused before it had one (a malformed origin). */
  readonly origin: Origin | null;
  /** The request's head up to its content length's value (HttpClient.headOf). */
  head = "";
  connection: Connection | null = null;
  ended = false;
  aborted = false;
  reason: Error | null = null;
  readonly paused = false;

  constructor(origin: Origin | null, request: UpstreamRequest, handler: Dispatcher.DispatchHandler) {
    this.origin = origin;
    this.request = request;
    this.handler = handler;
  }

  abort(reason: Error): void {
    if (this.ended) return;
    this.aborted = true;
    this.reason = reason;
    if (this.connection !== null) this.connection.destroy(reason);
    else {
      const at = this.origin?.waiting.indexOf(this) ?? -1;
      if (at >= 0) this.origin!.waiting.splice(at, 1);
      this.fail(reason);
    }
  }

  // The router reads each answer whole and never pauses one.
  pause(): void {}
  resume(): void {}

  /** Tells the handler the request failed, once. */
  fail(error: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.handler.onResponseError?.(this, error);
  }
}

// Where the reader is in an answer (numbers: compared on every chunk).
const Phase = { Idle: 0, Head: 1, Length: 2, ChunkSize: 3, ChunkData: 4, ChunkEnd: 5, Trailers: 6, UntilClose: 7 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/** One keep-alive connection to an origin, and the reader of the answer on it. */
class Connection {
  readonly origin: Origin;
  readonly client: HttpClient;
  socket: Socket | null = null;
  pending: Pending | null = null;
  closed = false;
  private phase: Phase = Phase.Idle;
  /** The head (or a chunk line, or a trailer) read so far, when it came in more than one piece. */
  private held: Buffer | null = null;
  private heldLength = 0;
  /** Bytes of the answer's head, interim answers and trailers so far (at most maxHeadBytes). */
  private headBytes = 0;
  /** Body bytes left: of the content length, or of the chunk. */
  private left = 0;
  private bodyBytes = 0;
  /** Bytes of "\r\n" after a chunk's data matched so far. */
  private endMatched = 0;
  private keepAlive = true;
  private keepAliveMs: number;
  /** When the request went out, the last bytes came and the connection went idle (performance.now() ms). */
  sentAt = 0;
  lastBytesAt = 0;
  idleSince = 0;

  constructor(client: HttpClient, origin: Origin) {
    this.client = client;
    this.origin = origin;
    this.keepAliveMs = client.keepAliveMs;
  }

  get idleUntil(): number {
    return this.idleSince + this.keepAliveMs;
  }

  connected(socket: Socket): void {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      try {
        this.read(chunk);
      } catch (error) {
        this.destroy(error as Error); // a handler's throw: its request fails, as undici does
      }
    });
    socket.on("end", () => this.ended());
    socket.on("error", (error: Error) => this.destroy(error));
    socket.on("close", () => this.destroy(null));
  }

  /** Sends `pending`'s request on this connection, once its handler says it still wants it. */
  send(pending: Pending): void {
    this.pending = pending;
    pending.connection = this;
    try {
      pending.handler.onRequestStart?.(pending, none);
    } catch (error) {
      // The handler no longer wants it (its time ran out while it waited): not a byte was written.
      // The connection is free before the handler hears (it may send another at once).
      this.pending = null;
      pending.connection = null;
      this.client.idle(this);
      pending.fail(error as Error);
      return;
    }
    if (pending.ended || this.closed) return; // aborted inside onRequestStart
    const { request } = pending;
    this.phase = Phase.Head;
    this.keepAlive = true;
    this.keepAliveMs = this.client.keepAliveMs;
    this.bodyBytes = 0;
    this.headBytes = 0;
    this.sentAt = this.lastBytesAt = performance.now();
    this.socket!.write(`${pending.head}${Buffer.byteLength(request.body)}\r\n\r\n${request.body}`);
  }

  private read(chunk: Buffer): void {
    this.lastBytesAt = performance.now();
    let at = 0;
    while (at < chunk.length && !this.closed) {
      const pending = this.pending;
      if (pending === null || this.phase === Phase.Idle) return this.destroy(protocolError("the provider sent bytes with no request open"));
      switch (this.phase) {
        case Phase.Head: {
          const end = this.lineEnd(chunk, at, "\r\n\r\n", maxHeadBytes - this.headBytes, headTooLarge);
          if (end === null) return;
          at = end.next;
          if (!this.head(end.text, pending, at < chunk.length)) return;
          break;
        }
        case Phase.Length:
        case Phase.ChunkData:
        case Phase.UntilClose: {
          const take = this.phase === Phase.UntilClose ? chunk.length - at : Math.min(this.left, chunk.length - at);
          if (!this.body(chunk.subarray(at, at + take), pending)) return;
          at += take;
          this.left -= take;
          if (this.left > 0 || this.phase === Phase.UntilClose) break;
          if (this.phase === Phase.Length) return this.complete(pending, at < chunk.length);
          this.phase = Phase.ChunkEnd;
          this.endMatched = 0;
          break;
        }
        case Phase.ChunkEnd: {
          if (chunk[at] !== (this.endMatched === 0 ? 13 : 10)) return this.destroy(protocolError("a chunk of the answer does not end with CRLF"));
          at++;
          if (++this.endMatched === 2) this.phase = Phase.ChunkSize;
          break;
        }
        case Phase.ChunkSize: {
          // At most 64 bytes a line (a size, rarely an extension), so a provider cannot send much
          // more than its answer's bytes, which the size cap counts, in chunk lines.
          const end = this.lineEnd(chunk, at, "\r\n", maxChunkLineBytes, "a chunk size line of the answer is longer than 64 bytes");
          if (end === null) return;
          at = end.next;
          const size = /^([0-9a-fA-F]{1,12})[ \t]*(;[^\r\n]*)?$/.exec(end.text);
          if (size === null) return this.destroy(protocolError(`a chunk size of the answer is not hexadecimal: "${end.text.slice(0, 40)}"`));
          this.left = parseInt(size[1], 16);
          this.phase = this.left === 0 ? Phase.Trailers : Phase.ChunkData;
          break;
        }
        case Phase.Trailers: {
          const end = this.lineEnd(chunk, at, "\r\n", maxHeadBytes - this.headBytes, headTooLarge);
          if (end === null) return;
          at = end.next;
          if (end.text !== "") break; // a trailer: not read
          return this.complete(pending, at < chunk.length);
        }
      }
    }
  }

  /**
   * The text up to `mark` (at most `max` bytes with it) and where the bytes after it start in
   * `chunk`; null, the bytes kept, while it has not come. Bytes that come a few at a time are
   * gathered in a buffer that doubles and only the new ones are searched, so a provider dripping
   * its head costs linear time. What is read so counts against the answer's head bytes.
   */
  private lineEnd(chunk: Buffer, at: number, mark: string, max: number, tooLong: string): { text: string; next: number } | null {
    const before = this.heldLength;
    if (before === 0) {
      const end = chunk.indexOf(mark, at, "latin1");
      if (end >= 0 && end + mark.length - at <= max) {
        this.counted(end + mark.length - at);
        return { text: chunk.toString("latin1", at, end), next: end + mark.length };
      }
    }
    // Past `max` bytes with no mark the line is too long, so no more than that is kept.
    const taken = Math.min(chunk.length - at, max + 1 - before);
    this.hold(chunk, at, taken);
    // Only the bytes held: the rest of the buffer is memory never written (allocUnsafe), which may
    // hold a CRLF of an earlier answer (the diff review: 1,271 of 2,000 good answers failed so).
    const end = this.held!.subarray(0, this.heldLength).indexOf(mark, Math.max(0, before - mark.length + 1), "latin1");
    if (end >= 0 && end + mark.length <= max) {
      const text = this.held!.toString("latin1", 0, end);
      this.held = null;
      this.heldLength = 0;
      this.counted(end + mark.length);
      return { text, next: at + end + mark.length - before };
    }
    if (this.heldLength > max || end >= 0) this.destroy(protocolError(tooLong));
    return null;
  }

  /** Keeps `length` bytes of `chunk` from `at` after those held. */
  private hold(chunk: Buffer, at: number, length: number): void {
    const needed = this.heldLength + length;
    if (this.held === null || this.held.length < needed) {
      const grown = Buffer.allocUnsafe(Math.max(256, needed * 2));
      this.held?.copy(grown, 0, 0, this.heldLength);
      this.held = grown;
    }
    chunk.copy(this.held, this.heldLength, at, at + length);
    this.heldLength = needed;
  }

  /** Head, interim answers and trailers count together against maxHeadBytes (chunk lines are capped each). */
  private counted(bytes: number): void {
    if (this.phase !== Phase.ChunkSize) this.headBytes += bytes;
  }

  /** Reads the status line and headers; false when the connection ended over them. */
  private head(text: string, pending: Pending, more: boolean): boolean {
    const statusEnd = text.indexOf("\r\n");
    const statusLine = statusEnd < 0 ? text : text.slice(0, statusEnd);
    const status = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: [^\r\n]*)?$/.exec(statusLine);
    if (status === null) return void this.destroy(protocolError(`the answer's status line is not HTTP/1.x: "${statusLine.slice(0, 40)}"`)), false;
    const code = Number(status[2]);
    if (code < 200) {
      if (code === 101) return void this.destroy(protocolError("the provider switched protocols")), false;
      return true; // an interim answer (103 Early Hints): the real one follows
    }
    let length = -1;
    let chunked = false;
    // HTTP/1.0 closes unless it says keep-alive; `close` in any Connection header wins.
    let closeSaid = false;
    let keepAliveSaid = false;
    headerLine.lastIndex = statusEnd + 2;
    while (statusEnd >= 0 && headerLine.lastIndex < text.length) {
      const start = headerLine.lastIndex;
      const header = headerLine.exec(text);
      if (header === null) return void this.destroy(protocolError(`a header of the answer is malformed: "${text.slice(start, start + 40).split("\r")[0]}"`)), false;
      const [, name, value] = header;
      // By length first: most headers are passed over without lower-casing their names.
      if (name.length === 14 && name.toLowerCase() === "content-length") {
        if (!/^[0-9]{1,15}$/.test(value) || (length >= 0 && Number(value) !== length)) return void this.destroy(protocolError(`the answer's content-length is not one number: "${value.slice(0, 40)}"`)), false;
        length = Number(value);
      } else if (name.length === 17 && name.toLowerCase() === "transfer-encoding") {
        if (value.toLowerCase() !== "chunked" || chunked) return void this.destroy(protocolError(`the answer's transfer-encoding is not chunked: "${value.slice(0, 40)}"`)), false;
        chunked = true;
      } else if (name.length === 10 && name.toLowerCase() === "connection") {
        const tokens = value.toLowerCase();
        if (tokens.includes("close")) closeSaid = true;
        else if (tokens.includes("keep-alive")) keepAliveSaid = true;
      } else if (name.length === 10 && name.toLowerCase() === "keep-alive") {
        // A provider closing idle connections after N s says so: the router lets go 2 s before (as undici).
        const hint = /timeout=([0-9]{1,6})/i.exec(value);
        if (hint !== null) this.keepAliveMs = Math.min(Number(hint[1]) * 1000 - 2000, this.client.keepAliveMaxMs);
      }
    }
    this.keepAlive = !closeSaid && (status[1] === "1" || keepAliveSaid);
    if (chunked && length >= 0) return void this.destroy(protocolError("the answer has both a content-length and chunked transfer-encoding")), false;
    if (length > this.client.maxResponseBytes) return void this.destroy(tooLarge()), false;
    pending.handler.onResponseStart?.(pending, code, none, "");
    if (this.closed || pending.ended) return false; // aborted in onResponseStart
    if (code === 204 || code === 304 || length === 0) {
      this.complete(pending, more);
      return false;
    }
    if (chunked) this.phase = Phase.ChunkSize;
    else if (length > 0) {
      this.phase = Phase.Length;
      this.left = length;
    } else {
      this.phase = Phase.UntilClose; // the answer ends when the provider closes the connection
      this.keepAlive = false;
    }
    return true;
  }

  /** Hands body bytes to the handler; false when that ended the request. */
  private body(bytes: Buffer, pending: Pending): boolean {
    if (bytes.length === 0) return true;
    this.bodyBytes += bytes.length;
    if (this.bodyBytes > this.client.maxResponseBytes) return void this.destroy(tooLarge()), false;
    pending.handler.onResponseData?.(pending, bytes);
    return !this.closed && !pending.ended;
  }

  /**
   * The answer is whole: the connection goes back to its origin (or closes), then the handler
   * hears. `more`: bytes came after the answer, so the connection is not used again (they would
   * be read as the next request's answer).
   */
  private complete(pending: Pending, more = false): void {
    this.phase = Phase.Idle;
    this.pending = null;
    pending.connection = null;
    pending.ended = true;
    if (this.keepAlive && this.keepAliveMs > 0 && !more) this.client.idle(this);
    else this.destroy(null);
    try {
      pending.handler.onResponseEnd?.(pending, none);
    } catch (error) {
      // As undici: the handler hears its own throw. Not through the socket's listener, which would
      // end the connection, given by now to the next request.
      pending.handler.onResponseError?.(pending, error as Error);
    }
  }

  /** The provider ended its side: an answer read until then is whole; anything else failed. */
  private ended(): void {
    const pending = this.pending;
    if (pending !== null && this.phase === Phase.UntilClose) {
      this.keepAlive = false;
      return this.complete(pending);
    }
    this.destroy(null);
  }

  /** Ends the connection; its request, if any, fails with `error` (or "closed by the provider"). */
  destroy(error: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.destroy();
    this.client.closed(this);
    const pending = this.pending;
    this.pending = null;
    if (pending !== null) {
      pending.connection = null;
      pending.fail(pending.reason ?? error ?? new HttpClientError("UND_ERR_SOCKET", "the provider closed the connection before the whole answer"));
    }
  }

  /** The backstop timeouts: a request whose provider sent nothing for its timeout ends. */
  sweep(now: number): void {
    const pending = this.pending;
    if (pending === null) {
      if (this.socket !== null && now >= this.idleUntil) this.destroy(null);
      return;
    }
    if (this.socket === null) return; // connecting: the connector's own timeout
    const { headersTimeout, bodyTimeout } = pending.request;
    if (this.phase === Phase.Head && now - this.sentAt > (headersTimeout ?? defaultTimeoutMs)) {
      this.destroy(new HttpClientError("UND_ERR_HEADERS_TIMEOUT", "no answer's headers within the timeout"));
    } else if (this.phase !== Phase.Head && now - this.lastBytesAt > (bodyTimeout ?? defaultTimeoutMs)) {
      this.destroy(new HttpClientError("UND_ERR_BODY_TIMEOUT", "no bytes of the answer's body within the timeout"));
    }
  }
}

// RFC 9110's token: a header's name.
const token = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const headerName = new RegExp(`^${token}$`);
// One header line of an answer's head: a token, a colon, the value without the spaces and tabs
// around it (no CR or LF inside), then CRLF or the head's end. Sticky: read line after line.
const headerLine = new RegExp(`(${token}):[ \\t]*([^\\r\\n]*?)[ \\t]*(?:\\r\\n|$)`, "y");

/** Headers the client writes itself. */
const framingHeaders: ReadonlySet<string> = new Set(["host", "connection", "content-length", "transfer-encoding"]);

function protocolError(message: string): HttpClientError {
  return new HttpClientError("UND_ERR_PROTOCOL", message);
}

function closedError(): HttpClientError {
  return new HttpClientError("UND_ERR_DESTROYED", "the router's HTTP client is closed");
}

function tooLarge(): HttpClientError {
  return new HttpClientError("UND_ERR_RES_EXCEEDED_MAX_SIZE", "the answer is larger than the response size cap");
}

export class HttpClient implements UpstreamDispatcher {
  readonly maxResponseBytes: number;
  readonly keepAliveMs: number;
  readonly keepAliveMaxMs: number;
  private readonly connector: buildConnector.connector;
  private readonly connections: number;
  private readonly origins = new Map<string, Origin>();
  private readonly live = new Set<Connection>();
  private sweeper: NodeJS.Timeout | null = null;
  private state: "open" | "closing" | "destroyed" = "open";
  private whenDrained: (() => void) | null = null;
  private closing: Promise<void> | null = null;

  constructor(options: HttpClientOptions) {
    this.connector = options.connect;
    this.connections = options.connections;
    this.maxResponseBytes = options.maxResponseBytes;
    this.keepAliveMs = options.keepAliveMs ?? 10_000;
    this.keepAliveMaxMs = options.keepAliveMaxMs ?? 60_000;
  }

  dispatch(request: UpstreamRequest, handler: Dispatcher.DispatchHandler): boolean {
    let origin: Origin;
    let head: string;
    try {
      if (this.state !== "open") throw closedError();
      origin = this.originOf(request.origin);
      head = this.headOf(origin, request);
    } catch (error) {
      new Pending(null, request, handler).fail(error as Error); // ended: an abort after it tells nothing more
      return false;
    }
    const pending = new Pending(origin, request, handler);
    pending.head = head;
    let connection = origin.idle.pop();
    // One the provider may be closing now (past its keep-alive) is not used; the sweep would close it within a second.
    while (connection !== undefined && performance.now() >= connection.idleUntil) {
      connection.destroy(null);
      connection = origin.idle.pop();
    }
    if (connection !== undefined) connection.send(pending);
    else if (origin.open < this.connections) this.open(origin, pending);
    else origin.waiting.push(pending);
    return true;
  }

  /** Lets the requests in flight end, then closes every connection. */
  close(): Promise<void> {
    if (this.state === "open") this.state = "closing";
    this.closing ??= new Promise((resolve) => {
      this.whenDrained = resolve;
      this.settleClosing();
    });
    return this.closing;
  }

  /** Ends every connection now; requests in flight fail. */
  destroy(): Promise<void> {
    this.state = "destroyed";
    const error = closedError();
    for (const origin of this.origins.values()) for (const pending of origin.waiting.splice(0)) pending.fail(error);
    for (const connection of [...this.live]) connection.destroy(error);
    this.stopSweeping();
    return Promise.resolve();
  }

  /** The head of `request` up to its content length's value, built once per origin, path and headers. */
  private headOf(origin: Origin, request: UpstreamRequest): string {
    const known = origin.heads.get(request.path);
    if (known !== undefined && known.headers === request.headers) return known.head;
    if (!/^\/[\x21-\x7e]*$/.test(request.path)) throw new HttpClientError("UND_ERR_INVALID_ARG", `the path "${request.path.slice(0, 40)}" is not a request target`);
    let lines = `${request.method} ${request.path} HTTP/1.1\r\nhost: ${origin.host}\r\nconnection: keep-alive\r\n`;
    for (const [name, value] of Object.entries(request.headers)) {
      if (!headerName.test(name) || /[\0-\x1f\x7f]/.test(value) || framingHeaders.has(name.toLowerCase())) {
        throw new HttpClientError("UND_ERR_INVALID_ARG", `the header ${name} is not valid here`);
      }
      lines += `${name}: ${value}\r\n`;
    }
    const head = `${lines}content-length: `;
    if (origin.heads.size < 64) origin.heads.set(request.path, { headers: request.headers, head });
    return head;
  }

  /** A connection is free: the next request waiting takes it, or it waits for one. */
  idle(connection: Connection): void {
    const origin = connection.origin;
    const next = origin.waiting.shift();
    if (next !== undefined) return connection.send(next);
    if (this.state !== "open") return connection.destroy(null);
    connection.idleSince = performance.now();
    origin.idle.push(connection);
  }

  /** A connection ended: it leaves its origin, and a request waiting may open another. */
  closed(connection: Connection): void {
    const origin = connection.origin;
    this.live.delete(connection);
    origin.open--;
    const at = origin.idle.indexOf(connection);
    if (at >= 0) origin.idle.splice(at, 1);
    const next = origin.waiting.shift();
    if (next !== undefined && this.state !== "destroyed") this.open(origin, next);
    if (this.live.size === 0) this.stopSweeping();
    this.settleClosing();
  }

  private open(origin: Origin, pending: Pending): void {
    const connection = new Connection(this, origin);
    origin.open++;
    this.live.add(connection);
    this.startSweeping();
    connection.pending = pending;
    pending.connection = connection;
    const hostname = origin.hostname.startsWith("[") ? origin.hostname.slice(1, -1) : origin.hostname;
    const servername = isIP(hostname) === 0 ? hostname : undefined;
    this.connector({ protocol: origin.protocol, hostname, host: origin.host, port: origin.port, servername } as buildConnector.Options, (error, socket) => {
      if (connection.closed) return void socket?.destroy(); // its request was aborted meanwhile
      if (error !== null) return connection.destroy(error);
      connection.connected(socket as Socket);
      connection.pending = null;
      pending.connection = null;
      connection.send(pending);
    });
  }

  private originOf(key: string): Origin {
    let origin = this.origins.get(key);
    if (origin === undefined) {
      const url = new URL(key);
      const port = url.port !== "" ? url.port : url.protocol === "https:" ? "443" : "80";
      origin = { protocol: url.protocol, hostname: url.hostname, host: url.host, port, idle: [], open: 0, waiting: [], heads: new Map() };
      this.origins.set(key, origin);
    }
    return origin;
  }

  private settleClosing(): void {
    if (this.state === "open" || this.whenDrained === null) return;
    // Each destroy comes back here (closed): the last to leave resolves.
    for (const connection of [...this.live]) if (connection.pending === null) connection.destroy(null);
    if (this.live.size > 0 || this.whenDrained === null) return;
    const done = this.whenDrained;
    this.whenDrained = null;
    done();
  }

  private startSweeping(): void {
    if (this.sweeper !== null) return;
    this.sweeper = setInterval(() => {
      const now = performance.now();
      for (const connection of [...this.live]) connection.sweep(now);
      this.forgetUnused();
    }, sweepMs);
    this.sweeper.unref();
  }

  private stopSweeping(): void {
    if (this.sweeper === null) return;
    clearInterval(this.sweeper);
    this.sweeper = null;
  }

  /** Forgets origins with no connection and no request waiting (providers gone from the set): in the sweep, never while a dispatch holds one. */
  private forgetUnused(): void {
    for (const [key, origin] of this.origins) if (origin.open === 0 && origin.waiting.length === 0) this.origins.delete(key);
  }
}
