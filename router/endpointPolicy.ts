import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction, type Socket } from "node:net";
import { buildConnector } from "undici";
import { EndpointRefusedError } from "./errors.ts";
import { HttpClient } from "./httpClient.ts";

// Provider endpoints come from strangers on chain. Outside devnet mode the router must never be
// turned into a probe of its own network: no loopback, private, link-local, unique-local, shared
// (CGNAT), multicast, reserved or cloud-metadata destinations. The check runs on the address the
// socket actually connects to (after DNS), so a name that resolves to a public address once and to
// 127.0.0.1 the next time (DNS rebinding) is caught on the connection that matters.

/** Why an address is refused, or null when it is a public unicast address. */
export type AddressClass =
  | "loopback"
  | "private"
  | "link-local"
  | "unique-local"
  | "shared"
  | "metadata"
  | "multicast"
  | "reserved"
  | "unspecified"
  | "documentation";

type Range = { subnet: string; prefix: number; family: "ipv4" | "ipv6"; kind: AddressClass };

const ranges: readonly Range[] = [
  { subnet: "0.0.0.0", prefix: 8, family: "ipv4", kind: "unspecified" },
  { subnet: "10.0.0.0", prefix: 8, family: "ipv4", kind: "private" },
  { subnet: "100.64.0.0", prefix: 10, family: "ipv4", kind: "shared" }, // CGNAT; Alibaba's metadata 100.100.100.200
  { subnet: "127.0.0.0", prefix: 8, family: "ipv4", kind: "loopback" },
  { subnet: "169.254.169.254", prefix: 32, family: "ipv4", kind: "metadata" }, // AWS, GCP, Azure, …
  { subnet: "169.254.0.0", prefix: 16, family: "ipv4", kind: "link-local" },
  { subnet: "172.16.0.0", prefix: 12, family: "ipv4", kind: "private" },
  { subnet: "192.0.0.0", prefix: 24, family: "ipv4", kind: "reserved" }, // IETF protocol assignments
  { subnet: "192.0.2.0", prefix: 24, family: "ipv4", kind: "documentation" },
  { subnet: "192.88.99.0", prefix: 24, family: "ipv4", kind: "reserved" }, // 6to4 relay anycast
  { subnet: "192.168.0.0", prefix: 16, family: "ipv4", kind: "private" },
  { subnet: "198.18.0.0", prefix: 15, family: "ipv4", kind: "reserved" }, // benchmarking
  { subnet: "198.51.100.0", prefix: 24, family: "ipv4", kind: "documentation" },
  { subnet: "203.0.113.0", prefix: 24, family: "ipv4", kind: "documentation" },
  { subnet: "224.0.0.0", prefix: 4, family: "ipv4", kind: "multicast" },
  { subnet: "240.0.0.0", prefix: 4, family: "ipv4", kind: "reserved" }, // includes 255.255.255.255
  { subnet: "::", prefix: 128, family: "ipv6", kind: "unspecified" },
  { subnet: "::1", prefix: 128, family: "ipv6", kind: "loopback" },
  { subnet: "fd00:ec2::254", prefix: 128, family: "ipv6", kind: "metadata" }, // AWS IMDS over IPv6
  { subnet: "fc00::", prefix: 7, family: "ipv6", kind: "unique-local" },
  { subnet: "fe80::", prefix: 10, family: "ipv6", kind: "link-local" },
  { subnet: "fec0::", prefix: 10, family: "ipv6", kind: "private" }, // deprecated site-local
  { subnet: "ff00::", prefix: 8, family: "ipv6", kind: "multicast" },
  { subnet: "100::", prefix: 64, family: "ipv6", kind: "reserved" }, // discard
  { subnet: "2001:db8::", prefix: 32, family: "ipv6", kind: "documentation" },
  { subnet: "3fff::", prefix: 20, family: "ipv6", kind: "documentation" }, // RFC 9637
  { subnet: "5f00::", prefix: 16, family: "ipv6", kind: "reserved" }, // SRv6 segment identifiers (RFC 9602): not hosts
  { subnet: "2001::", prefix: 23, family: "ipv6", kind: "reserved" }, // IETF protocol assignments (Teredo …)
  { subnet: "64:ff9b:1::", prefix: 48, family: "ipv6", kind: "reserved" }, // local-use NAT64 (RFC 8215): may reach private IPv4
];

// One BlockList per class, most specific first, so `classifyAddress` can say why.
const lists: readonly { kind: AddressClass; list: BlockList }[] = ranges.map((range) => {
  const list = new BlockList();
  list.addSubnet(range.subnet, range.prefix, range.family);
  return { kind: range.kind, list };
});

/** Parses an IPv6 literal into eight 16-bit groups; null when it is not one. */
export function ipv6Groups(address: string): number[] | null {
  let text = address;
  const percent = text.indexOf("%");
  if (percent >= 0) text = text.slice(0, percent); // zone id
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    // Embedded IPv4 in the last 32 bits (::ffff:1.2.3.4): rewrite it as two hex groups.
    const v4 = text.slice(lastColon + 1).split(".").map(Number);
    if (v4.length !== 4 || v4.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) return null;
    const hex = (n: number) => n.toString(16);
    text = `${text.slice(0, lastColon + 1)}${hex((v4[0] << 8) | v4[1])}:${hex((v4[2] << 8) | v4[3])}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string): number[] => (part === "" ? [] : part.split(":").map((g) => parseInt(g, 16)));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const fill = 8 - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return null;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...rest];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

/**
 * The IPv4 address an IPv6 address stands for, when it embeds one that a host would reach:
 * IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d),
 * NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
 */
function embeddedIpv4(groups: number[]): string | null {
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zeros = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  if (zeros(0, 5) && (groups[5] === 0xffff || groups[5] === 0) && (groups[6] !== 0 || groups[7] > 1)) {
    return v4(groups[6], groups[7]);
  }
  if (zeros(0, 4) && groups[4] === 0xffff && groups[5] === 0) return v4(groups[6], groups[7]);
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6)) return v4(groups[6], groups[7]);
  if (groups[0] === 0x2002) return v4(groups[1], groups[2]);
  return null;
}

/** A URL's host when it is an IP literal (`[…]` for IPv6): the reason to refuse it, null when it is public or not a literal (a name is checked once resolved). */
export function literalHostClass(host: string): AddressClass | null {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return isIP(bare) === 0 ? null : classifyAddress(bare);
}

/** Classifies an IP literal: null for a public unicast address, else the reason to refuse it. */
export function classifyAddress(address: string): AddressClass | null {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  const family = isIP(bare);
  if (family === 0) return "reserved"; // not an address at all: never connect to it
  if (family === 6) {
    const groups = ipv6Groups(bare);
    if (groups === null) return "reserved";
    const v4 = embeddedIpv4(groups);
    if (v4 !== null) return classifyAddress(v4);
  }
  const type = family === 4 ? "ipv4" : "ipv6";
  for (const { kind, list } of lists) if (list.check(bare.split("%")[0], type)) return kind;
  return null;
}

/** Resolves a host name; the default is the system resolver (`dns.lookup`, all addresses). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))),
  );

/** A `lookup` for `net.connect` that refuses a name when any address it resolves to is refused. */
function guardedLookup(resolver: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    resolver(hostname).then(
      (addresses) => {
        const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
        const usable = wanted === 0 ? addresses : addresses.filter((a) => a.family === wanted);
        for (const a of addresses) {
          const kind = classifyAddress(a.address);
          if (kind !== null) {
            callback(new EndpointRefusedError(hostname, a.address, kind), "", 0);
            return;
          }
        }
        if (usable.length === 0) {
          const error = Object.assign(new Error(`${hostname} has no usable address`), { code: "ENOTFOUND" });
          callback(error, "", 0);
          return;
        }
        if (options.all) (callback as unknown as (e: null, all: LookupAddress[]) => void)(null, usable);
        else callback(null, usable[0].address, usable[0].family);
      },
      (error: NodeJS.ErrnoException) => callback(error, "", 0),
    );
  };
}

export type UpstreamClientOptions = {
  /** Devnet mode: loopback and private endpoints are allowed (local provider nodes). */
  devnet: boolean;
  /** Largest upstream response body in bytes; a larger one fails the attempt. */
  maxResponseBytes: number;
  /** Connections kept per provider origin. */
  connectionsPerOrigin: number;
  /** TCP (and TLS) connect timeout in ms. */
  connectTimeoutMs: number;
  /** Name resolution, replaceable in tests to play DNS rebinding. */
  resolver?: Resolver;
};

/**
 * The one HTTP client the router talks to providers with (httpClient.ts), whose connector refuses
 * forbidden destinations (outside devnet mode) on the literal host, on every resolved address, and
 * once more on the socket's connected remote address. It follows no redirects and caps the
 * response size.
 */
export function createUpstreamClient(options: UpstreamClientOptions): HttpClient {
  const base = buildConnector({
    timeout: options.connectTimeoutMs,
    ...(options.devnet ? {} : { lookup: guardedLookup(options.resolver ?? systemResolver) }),
  } as buildConnector.BuildOptions);
  const connect: buildConnector.connector = (connectOptions, callback) => {
    if (!options.devnet) {
      const host = connectOptions.hostname;
      const kind = literalHostClass(host);
      if (kind !== null) {
        callback(new EndpointRefusedError(host, host.replace(/^\[|\]$/g, ""), kind), null);
        return;
      }
    }
    base(connectOptions, (error, socket) => {
      if (error !== null) {
        callback(error, null);
        return;
      }
      if (!options.devnet) {
        const remote = (socket as Socket).remoteAddress ?? "";
        const kind = classifyAddress(remote);
        if (kind !== null) {
          socket.destroy();
          callback(new EndpointRefusedError(connectOptions.hostname, remote, kind), null);
          return;
        }
      }
      callback(null, socket);
    });
  };
  return new HttpClient({ connect, connections: options.connectionsPerOrigin, maxResponseBytes: options.maxResponseBytes, keepAliveMs: 10_000, keepAliveMaxMs: 60_000 });
}
