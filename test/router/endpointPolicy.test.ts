import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { classifyAddress, createUpstreamClient, type Resolver } from "../../router/endpointPolicy.ts";
import { EndpointRefusedError } from "../../router/errors.ts";
import { providerAddress, recordsFor, startFaultyUpstreams, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { startRouter } from "../helpers/startRouter.ts";
import { waitFor } from "./support.ts";

// Provider endpoints come from strangers. Outside devnet mode the router connects to public
// addresses only, judged on the address the socket really goes to, after DNS.

let chain: Chain;
let nodes: ProviderNode[];

beforeAll(async () => {
  chain = await startChain();
  nodes = await startFaultyUpstreams(chain.rpcUrl, 1);
});

afterAll(async () => {
  for (const node of nodes ?? []) await node.stop();
  await chain?.stop();
});

describe("which addresses a provider endpoint may have", () => {
  it("refuses loopback, private, link-local, unique-local, shared, metadata and reserved addresses", () => {
    const table: [string, string | null][] = [
      ["127.0.0.1", "loopback"],
      ["127.8.9.10", "loopback"],
      ["::1", "loopback"],
      ["10.0.0.1", "private"],
      ["172.16.5.4", "private"],
      ["192.168.1.1", "private"],
      ["169.254.169.254", "metadata"],
      ["fd00:ec2::254", "metadata"],
      ["169.254.10.10", "link-local"],
      ["fe80::1", "link-local"],
      ["fd12:3456::1", "unique-local"],
      ["100.100.100.200", "shared"],
      ["0.0.0.0", "unspecified"],
      ["::", "unspecified"],
      ["224.0.0.251", "multicast"],
      ["255.255.255.255", "reserved"],
      ["::ffff:127.0.0.1", "loopback"], // IPv4-mapped
      ["::ffff:a9fe:a9fe", "metadata"], // IPv4-mapped 169.254.169.254 in hex
      ["::127.0.0.1", "loopback"], // IPv4-compatible (deprecated, still parsed)
      ["::a9fe:a9fe", "metadata"], // IPv4-compatible 169.254.169.254
      ["64:ff9b::a00:1", "private"], // NAT64 of 10.0.0.1
      ["2002:c0a8:101::1", "private"], // 6to4 of 192.168.1.1
      ["::ffff:0:a9fe:a9fe", "metadata"], // IPv4-translated (SIIT) 169.254.169.254
      ["64:ff9b:1::a9fe:a9fe", "reserved"], // local-use NAT64: a translator there may reach private IPv4
      ["3fff:fff::1", "documentation"], // the newer IPv6 documentation block
      ["5f00:1::1", "reserved"], // SRv6 segment identifiers
      ["[::1]", "loopback"],
      ["8.8.8.8", null],
      ["1.1.1.1", null],
      ["2606:4700:4700::1111", null],
      ["::ffff:8.8.8.8", null],
      ["::ffff:0:808:808", null], // IPv4-translated 8.8.8.8
    ];
    for (const [address, kind] of table) expect(classifyAddress(address), address).toBe(kind);
  });
});

describe("connecting to providers outside devnet mode", () => {
  const clientWith = (resolver?: Resolver) =>
    createUpstreamClient({ devnet: false, maxResponseBytes: 1 << 20, connectionsPerOrigin: 4, connectTimeoutMs: 1_000, resolver });
  const call = (client: ReturnType<typeof clientWith>, origin: string) =>
    new Promise((resolve, reject) =>
      client.dispatch(
        { origin, path: "/", method: "POST", headers: { "content-type": "application/json" }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}' },
        { onResponseEnd: resolve, onResponseError: (_controller, error) => reject(error) },
      ),
    );

  it("refuses an IP-literal endpoint on a forbidden address without connecting", async () => {
    nodes[0].resetStats();
    const client = clientWith();
    const port = nodes[0].port;
    for (const origin of [`http://127.0.0.1:${port}`, `http://[::ffff:127.0.0.1]:${port}`, `http://[::1]:${port}`]) {
      await expect(call(client, origin), origin).rejects.toBeInstanceOf(EndpointRefusedError);
    }
    await client.destroy();
    expect(nodes[0].stats().requests).toBe(0);
  });

  it("refuses a host name that resolves to a forbidden address, checked on every connection (DNS rebinding)", async () => {
    nodes[0].resetStats();
    const port = nodes[0].port;
    // An innocent-looking name that resolves to loopback.
    const rebinding: Resolver = async () => [{ address: "127.0.0.1", family: 4 }];
    const client = clientWith(rebinding);
    await expect(call(client, `http://rpc.provider.example:${port}`)).rejects.toThrow(EndpointRefusedError);
    // One public and one private address: refused as a whole.
    const mixed = clientWith(async () => [
      { address: "93.184.216.34", family: 4 },
      { address: "10.1.2.3", family: 4 },
    ]);
    await expect(call(mixed, `http://mixed.example:${port}`)).rejects.toThrow(/10\.1\.2\.3/);
    // Public on the first lookup, loopback on the next: each new connection is judged on its own lookup.
    let lookups = 0;
    const flipping = clientWith(async () => (lookups++ === 0 ? [{ address: "192.0.2.1", family: 4 }] : [{ address: "127.0.0.1", family: 4 }]));
    await expect(call(flipping, `http://flip.example:${port}`)).rejects.toThrow(/documentation/); // TEST-NET is refused too
    await expect(call(flipping, `http://flip.example:${port}`)).rejects.toThrow(/loopback/);
    expect(lookups).toBe(2);
    for (const a of [client, mixed, flipping]) await a.destroy();
    expect(nodes[0].stats().requests).toBe(0);
  });

  it("a router outside devnet mode sends nothing to a loopback endpoint and says why in /status", async () => {
    nodes[0].resetStats();
    const router = await startRouter({ devnet: false, records: recordsFor(nodes, 31337, [1_000]), readyWaitMs: 500 });
    try {
      await waitFor(() => (router.status().chains[0].providers[0].failures.endpoint_refused ?? 0) > 0, "an endpoint_refused failure");
      const p = router.status().chains[0].providers[0];
      expect(p.address).toBe(providerAddress(0));
      expect(p.state).toBe("refused");
      expect(p.lastFailure).toMatch(/loopback addresses are not allowed/);
      expect(p.lastFailureSecondsAgo).toBeGreaterThanOrEqual(0);
      expect(p.lastFailureSecondsAgo).toBeLessThan(30);
      const answer = await router.post(31337, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber" });
      expect((answer.json() as { error: { code: number; message: string } }).error).toEqual({
        code: -32002,
        message: "every provider of chain 31337 has an endpoint at an address this router refuses (loopback, private or link-local; allowed only in devnet mode, --devnet)",
      });
      expect(nodes[0].stats().requests).toBe(0);
    } finally {
      await router.stop();
    }
  });
});
