import type { RpcCall } from "./jsonRpc.ts";
import { renew } from "./writeAffinity.ts";

// Block heights in calls and answers. A call naming a block by its number is sent first to
// providers known to hold that block (failover.ts): providers a few blocks behind the chain are
// still eligible, and one of them would answer such a call with null, "header not found" or logs
// that stop at its own head, when the client learned of the block from another provider a moment
// before (viem and ethers read eth_blockNumber, then ask for that block).
//
// A client's reads of the latest state go likewise to providers known to hold the newest block it
// was shown (by an eth_blockNumber answer, or the block of a receipt): a provider one block behind
// would otherwise answer the state before it, and what the client reads would go back in time (an
// allowance it just approved, in the receipt it holds, gone again).

/** Where each method takes its block: the index of that parameter. */
const blockParamIndex: ReadonlyMap<string, number> = new Map([
  ["eth_getBlockByNumber", 0],
  ["eth_getBlockTransactionCountByNumber", 0],
  ["eth_getUncleCountByBlockNumber", 0],
  ["eth_getTransactionByBlockNumberAndIndex", 0],
  ["eth_getRawTransactionByBlockNumberAndIndex", 0],
  ["eth_getUncleByBlockNumberAndIndex", 0],
  ["eth_getBlockReceipts", 0],
  ["eth_getBalance", 1],
  ["eth_getCode", 1],
  ["eth_getTransactionCount", 1],
  ["eth_call", 1],
  ["eth_estimateGas", 1],
  ["eth_createAccessList", 1],
  ["eth_feeHistory", 1],
  ["eth_simulateV1", 1],
  ["eth_getStorageAt", 2],
  ["eth_getProof", 2],
]);

/** A block number (13 hex digits at most: a safe integer). */
const quantity = /^0x[0-9a-fA-F]{1,13}$/;
/**
 * A quantity in an answer, up to 256 bits (a balance), leading zeros allowed (a larger one than a
 * safe integer reads as Number.MAX_SAFE_INTEGER, so a padded height is as absurd as any).
 */
const answerQuantity = /^0x[0-9a-fA-F]{1,64}$/;

/** A block number written as a JSON-RPC quantity (or EIP-1898's `{blockNumber}`); -1 for anything else (a tag, a hash). */
function blockNumberOf(value: unknown): number {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) value = (value as { blockNumber?: unknown }).blockNumber;
  return typeof value === "string" && quantity.test(value) ? Number.parseInt(value, 16) : -1;
}

/**
 * The highest block a call names by number (eth_getLogs: the later of `fromBlock` and `toBlock`);
 * -1 when it names none (no block, a tag such as "latest", a block hash).
 */
export function namedBlock(call: RpcCall): number {
  const params = call.params;
  if (!Array.isArray(params)) return -1;
  if (call.method === "eth_getLogs") {
    const filter = params[0] as { fromBlock?: unknown; toBlock?: unknown } | null | undefined;
    if (typeof filter !== "object" || filter === null) return -1;
    return Math.max(blockNumberOf(filter.fromBlock), blockNumberOf(filter.toBlock));
  }
  const index = blockParamIndex.get(call.method);
  return index === undefined ? -1 : blockNumberOf(params[index]);
}

/** Which parameter of `method` is its block (undefined: it takes none, or eth_getLogs' filter). */
export function blockParamOf(method: string): number | undefined {
  return blockParamIndex.get(method);
}

/** A reply's result as a number when it is a quantity (eth_blockNumber's, eth_chainId's), else null. */
export function quantityOf(result: unknown): number | null {
  if (typeof result !== "string" || !answerQuantity.test(result)) return null;
  const value = Number.parseInt(result, 16);
  return Number.isSafeInteger(value) ? value : Number.MAX_SAFE_INTEGER;
}

/**
 * Whether a call reads the chain at its head: eth_blockNumber, eth_getLogs up to the latest block,
 * or a method that takes a block given none, "latest" or "pending".
 */
export function readsLatest(call: RpcCall): boolean {
  if (call.method === "eth_blockNumber") return true;
  const params = call.params;
  if (!Array.isArray(params)) return false;
  if (call.method === "eth_getLogs") {
    const filter = params[0] as { blockHash?: unknown; toBlock?: unknown } | null | undefined;
    return typeof filter === "object" && filter !== null && filter.blockHash === undefined && isLatest(filter.toBlock);
  }
  const index = blockParamIndex.get(call.method);
  return index !== undefined && isLatest(params[index]);
}

function isLatest(tag: unknown): boolean {
  return tag === undefined || tag === "latest" || tag === "pending";
}

/** Whether `call` asks for the latest block itself (eth_getBlockByNumber("latest")): its answer's number is its provider's head, as eth_blockNumber's result is. */
export function readsHeadBlock(call: RpcCall): boolean {
  return call.method === "eth_getBlockByNumber" && Array.isArray(call.params) && call.params[0] === "latest";
}

/** The number of the block an answer holds (null: no block, or one without a number). */
export function blockNumberIn(result: unknown): number | null {
  return typeof result === "object" && result !== null ? quantityOf((result as { number?: unknown }).number) : null;
}

/** Whether two answers are one block: the same hash (a number alone, a provider may claim). */
export function sameBlock(a: unknown, b: unknown): boolean {
  const hashOf = (block: unknown) => (typeof block === "object" && block !== null ? (block as { hash?: unknown }).hash : undefined);
  const hash = hashOf(a);
  return typeof hash === "string" && hash === hashOf(b);
}

/** The block an answer to `method` shows its provider holds: eth_blockNumber's result, a receipt's block; else null. */
export function shownBlock(method: string, result: unknown, quantity: number | null): number | null {
  if (method === "eth_blockNumber") return quantity;
  if ((method !== "eth_getTransactionReceipt" && method !== "eth_sendRawTransactionSync") || typeof result !== "object" || result === null) return null;
  return quantityOf((result as { blockNumber?: unknown }).blockNumber);
}

/**
 * Per client address, per chain, the newest block the client was shown. Kept for `holdMs` after it
 * last rose (a chain reset or a reorganisation leaves one no provider reaches: it lapses), for at
 * most `maxClients` addresses (the oldest go first), as WriteAffinity keeps its own.
 */
export class ClientHeads {
  private readonly byClient = new Map<string, { heads: Map<number, number>; until: number }>();
  private readonly holdMs: number;
  private readonly maxClients: number;

  constructor(holdMs: number, maxClients = 65_536) {
    this.holdMs = holdMs;
    this.maxClients = maxClients;
  }

  /** The newest block `client` was shown on `chainId`; -1 when none (or long ago). */
  of(chainId: number, client: string, now: number): number {
    if (this.byClient.size === 0) return -1;
    const entry = this.byClient.get(client);
    return entry === undefined || entry.until <= now ? -1 : (entry.heads.get(chainId) ?? -1);
  }

  /**
   * `client`'s block on `chainId` was `from` and no provider is known to hold it (a liar's height, a
   * chain gone back): it comes down to `to`, unless another call showed the client a block since.
   */
  lower(chainId: number, client: string, from: number, to: number, now: number): void {
    const entry = this.byClient.get(client);
    if (entry !== undefined && entry.until > now && entry.heads.get(chainId) === from) entry.heads.set(chainId, to);
  }

  /** `client` was shown `block` on `chainId`. */
  shown(chainId: number, client: string, block: number, now: number): void {
    let entry = this.byClient.get(client);
    if (entry !== undefined && entry.until > now && block <= (entry.heads.get(chainId) ?? -1)) return;
    if (entry === undefined || entry.until <= now) entry = { heads: new Map(), until: 0 };
    entry.heads.set(chainId, block);
    entry.until = now + this.holdMs;
    renew(this.byClient, client, entry, now, this.maxClients);
  }
}
