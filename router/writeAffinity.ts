import type { ProviderHealth } from "./health.ts";

// A client's questions about its own transactions go first to the providers that took its last one
// (each copy of the broadcast answered with a result: one drawn evenly, so answering first wins a
// provider nothing).
// A transaction reaches the other nodes by gossip a moment later and is mined a block later on
// each, so a provider that did not take it may still answer the old nonce ("pending" too): the
// client's next transaction would then reuse it ("nonce too low", "replacement transaction
// underpriced"), as scripts do that send two in a row (approve, then swap) and ask the nonce
// before each. The providers that took it know it from the start.

/** Calls about a sender's transactions: its nonce, a transaction by hash, its receipt. */
const affineMethods: ReadonlySet<string> = new Set(["eth_getTransactionCount", "eth_getTransactionByHash", "eth_getTransactionReceipt"]);

export class WriteAffinity {
  /** Per chain and client address, the providers that took its last transaction and until when they are asked first; oldest first. */
  private readonly byClient = new Map<string, { providers: readonly ProviderHealth[]; until: number }>();
  private readonly holdMs: number;
  private readonly maxClients: number;

  /** `holdMs`: how long after a transaction its client's calls prefer its provider (0: never). */
  constructor(holdMs: number, maxClients = 65_536) {
    this.holdMs = holdMs;
    this.maxClients = maxClients;
  }

  /**
   * `providers` took a transaction from `client` (its address) on `chainId`: the copies of the
   * broadcast answered with a result so far (the caller adds those that answer later to the list).
   */
  took(chainId: number, client: string, providers: readonly ProviderHealth[], now: number): void {
    if (this.holdMs <= 0) return;
    const key = `${chainId} ${client}`;
    renew(this.byClient, key, { providers, until: now + this.holdMs }, now, this.maxClients);
  }

  /** The providers to ask first for `client`'s `method` on `chainId`, if it sent a transaction lately. */
  preferred(chainId: number, client: string, method: string, now: number): readonly ProviderHealth[] | null {
    if (this.byClient.size === 0 || !affineMethods.has(method)) return null;
    const entry = this.byClient.get(`${chainId} ${client}`);
    return entry !== undefined && entry.until > now ? entry.providers : null;
  }
}

/**
 * Sets `key` to `entry` at the end of `map`, which so stays in the order its entries end; then drops
 * the ended entries from the front and, past `max`, the oldest (clients from many addresses cannot
 * grow it without bound). Also for ClientHeads (blocks.ts).
 */
export function renew<T extends { until: number }>(map: Map<string, T>, key: string, entry: T, now: number, max: number): void {
  map.delete(key);
  map.set(key, entry);
  for (const [k, old] of map) {
    if (old.until > now && map.size <= max) break;
    map.delete(k);
  }
}
