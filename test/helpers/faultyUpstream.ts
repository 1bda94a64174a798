import { startProviderNode, type Fault, type ProviderNode } from "../../scripts/providerNode.ts";
import type { ProviderRecord } from "../../router/providerSet.ts";

// Provider nodes for the router's tests: real HTTP servers in front of a real chain, each able to
// fail in every way (see Fault in scripts/providerNode.ts).

export { startProviderNode, type Fault, type ProviderNode };

/** Starts `count` provider nodes in front of `upstreamUrl`. */
export async function startFaultyUpstreams(upstreamUrl: string, count: number, latencyMs = 0): Promise<ProviderNode[]> {
  return await Promise.all(Array.from({ length: count }, () => startProviderNode({ upstreamUrl, latencyMs })));
}

/** A made-up provider address for node `i` (0x…01, 0x…02, …). */
export function providerAddress(i: number): string {
  return `0x${(i + 1).toString(16).padStart(40, "0")}`;
}

/** Static provider records for nodes (for tests where the issue does not require the indexer). */
export function recordsFor(nodes: readonly { url: string }[], chainId: number, stakesInTokens: readonly number[]): ProviderRecord[] {
  return nodes.map((node, i) => ({
    address: providerAddress(i),
    chainId,
    url: node.url,
    stake: BigInt(stakesInTokens[i] ?? 1000) * 10n ** 18n,
    slashedTotal: 0n,
    name: `node-${i}`,
  }));
}
