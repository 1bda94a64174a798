import type { ProviderHealth } from "./health.ts";
import { senderOf, type SignedTransaction } from "./transactionHash.ts";

// A client's questions about its own transactions go first to the providers that took its last one
// (each copy of the broadcast answered with a result: one drawn evenly, so answering first wins a
// provider nothing).
// A transaction reaches the other nodes by gossip a moment later and is mined a block later on
// each, so a provider that did not take it may still answer the old nonce ("pending" too): the
// client's next transaction would then reuse it ("nonce too low", "replacement transaction
// underpriced"), as scripts do that send two in a row (approve, then swap) and ask the nonce
// before each. The providers that took it know it from the start. And the router knows its nonce:
// a provider answering the sender's nonce at "pending" below it has not seen the transaction (a
// node frozen behind while sends pass, or a load-balanced URL whose other node answered), so
// another is asked (failover.ts); if all answer so, the highest is given.

/** Calls about a sender's transactions: its nonce, a transaction by hash, its receipt. */
const affineMethods: ReadonlySet<string> = new Set(["eth_getTransactionCount", "eth_getTransactionByHash", "eth_getTransactionReceipt"]);

/** A transaction a provider took, until when it counts, its sender recovered once asked (null: it could not be). */
type Sent = { transaction: SignedTransaction; until: number; sender?: string | null };

/**
 * A client's last transaction some provider took: who took it, until when that counts, and its
 * transactions of the last `holdMs`, newest first, at most maxSentKept: a backend with several
 * wallets (a relayer, users behind one NAT) sends from several senders, and each one's nonce is
 * checked against its own last transaction (a dapp walkthrough: two wallets from one address got
 * "nonce has already been used" through a provider behind, where one wallet got none).
 */
type Took = { providers: readonly ProviderHealth[]; until: number; sent: readonly Sent[] };

const maxSentKept = 16;

export class WriteAffinity {
  /** Per chain and client address, its last transaction some provider took; oldest first. */
  private readonly byClient = new Map<string, Took>();
  private readonly holdMs: number;
  private readonly maxClients: number;

  /** `holdMs`: how long after a transaction its client's calls prefer its provider (0: never). */
  constructor(holdMs: number, maxClients = 65_536) {
    this.holdMs = holdMs;
    this.maxClients = maxClients;
  }

  /**
   * `providers` took transaction `sent` from `client` (its address) on `chainId`: the copies of the
   * broadcast answered with a result so far (the caller adds those that answer later to the list).
   */
  took(chainId: number, client: string, providers: readonly ProviderHealth[], sent: SignedTransaction | null, now: number): void {
    if (this.holdMs <= 0) return;
    const key = `${chainId} ${client}`;
    const before = this.byClient.get(key);
    // Each counts for holdMs from its own broadcast: a later one does not renew the others.
    const earlier = before === undefined ? [] : before.sent.filter((s) => s.until > now).slice(0, maxSentKept - 1);
    const until = now + this.holdMs;
    renew(this.byClient, key, { providers, until, sent: sent === null ? earlier : [{ transaction: sent, until }, ...earlier] }, now, this.maxClients);
  }

  /**
   * Whether `count`, a provider's answer to `client`'s eth_getTransactionCount(`sender`, "pending")
   * on `chainId`, leaves out a transaction of `sender`'s that a provider took from the client lately.
   */
  missesTaken(chainId: number, client: string, sender: string, count: number, now: number): boolean {
    if (this.byClient.size === 0) return false;
    const entry = this.byClient.get(`${chainId} ${client}`);
    if (entry === undefined || entry.until <= now) return false;
    const asked = sender.toLowerCase();
    for (const sent of entry.sent) {
      if (sent.until <= now || count > sent.transaction.nonce) continue; // it counts this one (whoever sent it): the usual next nonce costs nothing
      if (sent.sender === undefined) sent.sender = senderOf(sent.transaction); // once per transaction, and only for a count that may leave it out
      if (sent.sender === asked) return true;
    }
    return false;
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
