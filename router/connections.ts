import { BlockList, isIP, isIPv4 } from "node:net";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { ipv6Groups } from "./endpointPolicy.ts";
import { RouterOptionError, RpcCode } from "./errors.ts";
import type { RouterMetrics } from "./metrics.ts";
import type { Limits } from "./options.ts";

// What a client can hold before it sends a request: connections (all, and per client address) and
// time (a whole request within requestReadTimeoutMs). Errors the HTTP parser finds are answered
// as JSON-RPC errors, like everything else on /rpc. The ledger keeps what each client holds, so
// the request path (server.ts) can cap one client's requests in flight and buffered bytes too.
// Behind a proxy (TLS terminator, load balancer) every client has the proxy's address: requests
// from a trusted proxy count against the client its X-Forwarded-For names.

type ConnectionLimits = Pick<Limits, "maxConnections" | "maxConnectionsPerClient" | "requestReadTimeoutMs" | "maxBodyBytes">;

/**
 * What one client (an IPv4 address, or an IPv6 /64) holds now. `requests`: requests that count
 * against it, from their headers to their answer (a share known by X-Forwarded-For alone has no
 * connection to keep it); `inFlight`: those whose body has arrived; `calls`: their calls.
 */
export type ClientShare = { key: string; connections: number; requests: number; inFlight: number; calls: number; bufferBytes: number; filters: number };

/** Every client's share, found from a socket; a client that holds nothing is forgotten. */
export class ClientLedger {
  private readonly byKey = new Map<string, ClientShare>();
  private readonly bySocket = new WeakMap<Socket, ClientShare>();
  private readonly proxies: TrustedProxies | null;

  constructor(proxies: TrustedProxies | null = null) {
    this.proxies = proxies;
  }

  /** The share of the client at the other end of `socket` (its connections count here). */
  of(socket: Socket): ClientShare {
    let share = this.bySocket.get(socket);
    if (share !== undefined) return share;
    share = this.byAddress(socket.remoteAddress ?? "");
    this.bySocket.set(socket, share);
    return share;
  }

  /**
   * Whom a request counts against: the client at the other end of its connection or, when that is
   * a trusted proxy, the client its X-Forwarded-For names. `release` it once the request is done.
   */
  ofRequest(socket: Socket, forwardedFor: string | undefined): ClientShare {
    const client = forwardedFor === undefined || !this.fromTrustedProxy(socket) ? null : this.proxies!.clientBehind(forwardedFor);
    const share = client === null ? this.of(socket) : this.byAddress(client);
    share.requests++;
    return share;
  }

  /** A request taken with `ofRequest` is done with its share. */
  release(share: ClientShare): void {
    share.requests--;
    this.settle(share);
  }

  /** Whether `socket` comes from a trusted proxy (its connections are not capped per address). */
  fromTrustedProxy(socket: Socket): boolean {
    return this.proxies !== null && this.proxies.has(socket.remoteAddress ?? "");
  }

  /** Call after lowering a count: forgets the client once it holds nothing. */
  settle(share: ClientShare): void {
    const idle = share.connections === 0 && share.requests === 0 && share.bufferBytes === 0 && share.filters === 0;
    // Only this very share: a socket refused at the cap may outlive it and settle later.
    if (idle && this.byKey.get(share.key) === share) this.byKey.delete(share.key);
  }

  private byAddress(address: string): ClientShare {
    const key = clientKey(address);
    let share = this.byKey.get(key);
    if (share === undefined) this.byKey.set(key, (share = { key, connections: 0, requests: 0, inFlight: 0, calls: 0, bufferBytes: 0, filters: 0 }));
    return share;
  }
}

/**
 * The proxies in front of the router whose X-Forwarded-For is believed, by address or CIDR
 * (`--trust-proxy 127.0.0.1,10.0.0.0/8`). Each proxy appends the address it was reached from, so
 * the client is the right-most address not itself a trusted proxy; what lies left of it is
 * whatever the client wrote and is never read.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  /** The entries that cover very many addresses (0.0.0.0/0, ::/0, …): the router warns of them at start. */
  readonly wide: readonly string[];

  /** Throws RouterOptionError naming an entry that is empty, neither an IP address nor a CIDR block, or has host bits set. */
  constructor(entries: readonly string[]) {
    const wide: string[] = [];
    for (const entry of entries) {
      const text = entry.trim();
      if (text === "") throw new RouterOptionError("a trusted proxy entry is empty: list addresses or CIDR blocks separated by single commas");
      const [address, prefixText, extra] = text.split("/");
      const family = isIP(address);
      const bits = family === 4 ? 32 : 128;
      const prefix = prefixText === undefined ? bits : /^[0-9]{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
      if (family === 0 || extra !== undefined || !(prefix <= bits)) {
        throw new RouterOptionError(`a trusted proxy must be an IP address or a CIDR block such as 10.0.0.0/8, got "${entry}"`);
      }
      const value = addressValue(address, family);
      // Refused rather than rounded down: "10.0.0.1/8" may mean the network (10.0.0.0/8) or the one
      // proxy (10.0.0.1) with a netmask copied along, and the two differ by 16 million trusted
      // addresses. Whom to believe is not for the router to guess (Python's ip_network refuses it too).
      const hostMask = (1n << BigInt(bits - prefix)) - 1n;
      if ((value & hostMask) !== 0n) {
        throw new RouterOptionError(
          `the trusted proxy block "${text}" has bits set past its /${prefix} prefix: write ${addressText(value & ~hostMask, family)}/${prefix} for the network, or ${address} alone for one proxy`,
        );
      }
      if (isWide(value, family, prefix)) wide.push(text);
      this.list.addSubnet(address, prefix, family === 4 ? "ipv4" : "ipv6");
    }
    this.wide = wide;
  }

  /** Whether `address` is a trusted proxy (BlockList matches an IPv4-mapped IPv6 address to IPv4 rules). */
  has(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.list.check(address, family === 4 ? "ipv4" : "ipv6");
  }

  /**
   * The client an X-Forwarded-For names: the right-most address not a trusted proxy (the left-most
   * when all are: a client inside the trusted network); null when the header cannot be read.
   */
  clientBehind(forwardedFor: string): string | null {
    const hops = forwardedFor.split(",");
    let address: string | null = null;
    for (let i = hops.length - 1; i >= 0; i--) {
      address = hopAddress(hops[i].trim());
      if (address === null || !this.has(address)) return address;
    }
    return address;
  }
}

/** An address as a number (32 bits for IPv4, 128 for IPv6). */
function addressValue(address: string, family: number): bigint {
  const [parts, width] = family === 4 ? [address.split(".").map(Number), 8n] : [ipv6Groups(address) ?? [], 16n];
  return parts.reduce((sum, part) => (sum << width) | BigInt(part), 0n);
}

/** A number as an address, IPv6 in its short form (2001:db8::). */
function addressText(value: bigint, family: number): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
  const groups = Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

/**
 * Whether a block is wider than any one operator's proxies need: for IPv4 (also written
 * IPv4-mapped, ::ffff:0:0/96 and inside it) wider than 10.0.0.0/8, the largest private network; for
 * IPv6 wider than /28 (a cloud's or an ISP's whole allocation is /29…/32) outside the private fc00::/7.
 * Every client in such a block can write its own X-Forwarded-For.
 */
function isWide(value: bigint, family: number, prefix: number): boolean {
  if (family === 4) return prefix < 8;
  const mapped = prefix >= 96 && value >> 32n === 0xffffn;
  if (mapped) return prefix - 96 < 8;
  const privateBlock = prefix >= 7 && value >> 121n === 0x7en; // fc00::/7
  return prefix < 28 && !privateBlock;
}

/** An X-Forwarded-For entry's address (some proxies add a port: `1.2.3.4:5678`, `[2001:db8::1]:5678`). */
function hopAddress(hop: string): string | null {
  const bracketed = /^\[([^\]]+)\](?::[0-9]+)?$/.exec(hop);
  const address = bracketed !== null ? bracketed[1] : /^[0-9.]+:[0-9]+$/.test(hop) ? hop.slice(0, hop.indexOf(":")) : hop;
  return isIP(address) !== 0 ? address : null;
}

/** The HTTP server's options: the read timeout (checked every connectionsCheckingInterval), keep-alive, header size. */
export function serverOptions(limits: ConnectionLimits) {
  return {
    headersTimeout: limits.requestReadTimeoutMs,
    requestTimeout: limits.requestReadTimeoutMs,
    // Node's default (30 s) would let a stalled request live up to 30 s past its timeout.
    connectionsCheckingInterval: Math.min(1_000, limits.requestReadTimeoutMs),
    keepAliveTimeout: 5_000,
    maxHeaderSize: 16 * 1024,
    // Node would answer a request without Host with a bare 400; the router has no use for Host.
    requireHostHeader: false,
  };
}

/**
 * Whom a connection counts against: its IPv4 address (also when written IPv4-mapped), or the /64
 * of an IPv6 one, since one IPv6 host is usually given a whole /64.
 */
export function clientKey(address: string): string {
  if (isIPv4(address)) return address;
  const groups = ipv6Groups(address);
  if (groups === null) return address;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`;
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}

/** Node's own mark of the answer a connection is writing (set from a request's headers to its answer's end). */
type SocketWithResponse = Socket & { _httpMessage?: ServerResponse | null };

function errorBody(code: number, message: string): string {
  return JSON.stringify({ jsonrpc: "2.0", id: null, error: { code, message } });
}

/** What lets a page on any origin read an answer and its x-din-* headers (server.ts's answers and the raw ones below). */
export const answerCors: readonly (readonly [string, string])[] = [
  ["access-control-allow-origin", "*"],
  ["access-control-expose-headers", "x-din-provider, x-din-attempts"],
];

// Readable by a page on any origin (a 429 it can back off on, not a network failure): the
// request's headers are not read, so whether it had an Origin is not known.
const rawCors = answerCors.map(([name, value]) => `${name}: ${value}\r\n`).join("");

function rawReply(status: string, code: number, message: string): string {
  const body = errorBody(code, message);
  return `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-din-provider: none\r\nx-din-attempts: 0\r\n${rawCors}connection: close\r\n\r\n${body}`;
}

/** How a parser error is answered: HTTP status, JSON-RPC code, the reason counted in metrics, the message. */
function parserRefusal(code: string | undefined, timeoutMs: number): [string, number, string, string] {
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") {
    const message = `request timeout: the whole request must arrive within ${timeoutMs / 1000} s`;
    return ["408 Request Timeout", RpcCode.limitExceeded, "request_timeout", message];
  }
  if (code === "HPE_HEADER_OVERFLOW") {
    return ["431 Request Header Fields Too Large", RpcCode.limitExceeded, "headers_too_large", "limit exceeded: the headers are larger than 16 KiB"];
  }
  return ["400 Bad Request", RpcCode.invalidRequest, "bad_http", "invalid request: malformed HTTP"];
}

/** Caps client connections and answers what the HTTP parser refuses (malformed, too slow, headers too large). */
export function guardConnections(server: Server, limits: ConnectionLimits, metrics: RouterMetrics, clients: ClientLedger): void {
  // The router answers past maxConnections itself; Node's own cap (closing without a word) only
  // bounds the sockets being answered so.
  server.maxConnections = limits.maxConnections + limits.maxConnectionsPerClient;
  server.on("drop", () => metrics.refused("too_many_connections"));
  // 429, as every other limit of one client's: clients back off and retry it (ethers does on 429
  // only). No retry-after: ethers reads it as milliseconds and would retry at once.
  const tooMany = rawReply(
    "429 Too Many Requests",
    RpcCode.limitExceeded,
    `too many connections from your address (at most ${limits.maxConnectionsPerClient}); reuse connections (keep-alive)`,
  );
  const full = rawReply(
    "503 Service Unavailable",
    RpcCode.limitExceeded,
    `the router holds as many connections as it may (${limits.maxConnections}) and no client holds two more than you to take one from; retry shortly`,
  );
  // Each client's connections (trusted proxies' aside: they carry many clients and are never
  // taken), each with what gives its place back; and the clients by how many they hold
  // (byCount[n]), so the one holding the most is found at once (a scan of 8,192 clients takes some
  // 55 µs, as much again as turning a connection away).
  const held = new Map<ClientShare, Map<Socket, () => void>>();
  const byCount: Set<ClientShare>[] = [];
  let most = 0;
  const heldBy = (share: ClientShare) => held.get(share)?.size ?? 0;
  const recount = (share: ClientShare, from: number) => {
    const to = heldBy(share);
    byCount[from]?.delete(share);
    if (to > 0) (byCount[to] ??= new Set()).add(share);
    most = Math.max(most, to);
    while (most > 0 && (byCount[most]?.size ?? 0) === 0) most--;
  };

  /**
   * With every place held, a new connection takes an idle one (no request on it; failing that, one
   * whose request is still arriving or whose answer waits for its client to read it) of the client
   * holding the most, if that client holds at least two more than the newcomer (so it still holds
   * as many after): a few addresses (16 at 512 each) cannot keep every other client out, while a
   * client among many keeps its share. The connection taken is closed as an idle keep-alive
   * connection is; its client reconnects. A look goes through at most `maxLook` connections, moving
   * busy ones to the back, so a client keeping all its connections busy costs each newcomer little.
   */
  const maxLook = 32;
  const take = (socket: Socket, release: () => void) => {
    metrics.refused("connection_taken");
    release(); // counted out now: a burst of newcomers sees what each take left
    socket.destroy();
    return true;
  };
  const takeIdleFor = (asker: ClientShare): boolean => {
    let looked = 0;
    // Failing an idle one, one whose request is still arriving or whose answer its client does not
    // read (bytes wait in the router): else a few addresses could hold every place with requests
    // that never finish arriving, each for requestReadTimeoutMs, and again, or with answers under
    // 16 KiB they never read, which nothing else cuts off (review B).
    let stuck: [Socket, () => void] | null = null;
    search: for (let n = most; n >= heldBy(asker) + 2; n--) {
      for (const share of byCount[n] ?? []) {
        const sockets = held.get(share)!;
        for (const [socket, release] of sockets) {
          if (looked++ >= maxLook) break search;
          const answering = (socket as SocketWithResponse)._httpMessage;
          if (answering == null) return take(socket, release);
          sockets.delete(socket); // busy: looked at last next time
          sockets.set(socket, release);
          if (stuck === null && (!answering.req.complete || socket.writableLength > 0)) stuck = [socket, release];
        }
      }
    }
    return stuck !== null && take(...stuck);
  };

  server.on("connection", (socket: Socket) => {
    const client = clients.of(socket);
    const proxy = clients.fromTrustedProxy(socket);
    // A trusted proxy brings many clients over its connections: only the total caps them.
    if (client.connections >= limits.maxConnectionsPerClient && !proxy) {
      metrics.refused("too_many_client_connections");
      // Answered before the client asks, then closed: the client reads the reason if it can.
      socket.end(tooMany);
      socket.destroySoon();
      return;
    }
    if (metrics.connections >= limits.maxConnections && !takeIdleFor(client)) {
      metrics.refused("too_many_connections");
      socket.end(full);
      socket.destroySoon();
      clients.settle(client); // a client known only by this refusal is not kept
      return;
    }
    client.connections++;
    metrics.connections++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      metrics.connections--;
      client.connections--;
      const sockets = held.get(client);
      if (sockets?.delete(socket) === true) {
        if (sockets.size === 0) held.delete(client);
        recount(client, sockets.size + 1);
      }
      clients.settle(client);
    };
    if (!proxy) {
      let sockets = held.get(client);
      if (sockets === undefined) held.set(client, (sockets = new Map()));
      sockets.set(socket, release);
      recount(client, sockets.size - 1);
    }
    socket.once("close", release);
  });
  // Node closes a CONNECT (a proxy's tunnel request) without a word when nobody listens for it.
  const noTunnel = rawReply("405 Method Not Allowed", RpcCode.invalidRequest, "invalid request: this router is not a proxy; POST JSON-RPC to /rpc/<chainId>");
  server.on("connect", (_req: IncomingMessage, socket: Socket) => {
    socket.end(noTunnel);
    socket.destroySoon();
  });
  // A body declared larger than the router takes is not invited (100 Continue) only to be refused
  // once sent: the request is handled at once, and its handler answers 413 unread.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    if (!(Number(req.headers["content-length"]) > limits.maxBodyBytes)) res.writeContinue();
    server.emit("request", req, res);
  });
  // Node answers an Expect other than 100-continue itself with a bare 417: answered as everything else is.
  const expectation = errorBody(RpcCode.invalidRequest, "invalid request: the only Expect understood is 100-continue");
  server.on("checkExpectation", (_req: IncomingMessage, res: ServerResponse) => {
    metrics.refused("expectation_failed");
    res.writeHead(417, ["content-type", "application/json", "content-length", String(Buffer.byteLength(expectation)), "x-din-provider", "none", "x-din-attempts", "0"]);
    res.end(expectation);
  });
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    // As Node itself does: answer only if no answer on this connection has begun.
    const pending = (socket as SocketWithResponse)._httpMessage;
    if (error.code === "ECONNRESET" || !socket.writable || (pending != null && pending.headersSent)) {
      socket.destroy();
      return;
    }
    const [status, rpcCode, reason, message] = parserRefusal(error.code, limits.requestReadTimeoutMs);
    metrics.refused(reason);
    socket.end(rawReply(status, rpcCode, message));
    socket.destroySoon();
  });
}
