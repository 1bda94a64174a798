import { quantityOf } from "./blocks.ts";
import type { RpcCall } from "./jsonRpc.ts";
import { transactionHashOf } from "./transactionHash.ts";

// An answer of the right form may still not answer the call: block 5 for block 0, another
// transaction's receipt, a log of another contract or outside the blocks asked, a made-up hash for
// a transaction sent. What a call names and its answer repeats is compared here (failover.ts holds
// an answer that differs against its provider, `wrong_answer`, and asks another). Only what every
// node repeats as asked is compared. A tag names no block to compare, not even "earliest": a node
// whose history is pruned (geth since 1.15.10, reth) answers it with the first block it holds.

const hash = /^0x[0-9a-fA-F]{64}$/;
const hexQuantity = /^0x[0-9a-fA-F]{1,64}$/;

/** How `result` contradicts `call`, in words that follow "answered <method>" ("with block 5, …"); null: it does not, or nothing can be told. */
export function contradiction(call: RpcCall, result: unknown): string | null {
  const params = call.params;
  if (!Array.isArray(params)) return null;
  if (call.method === "eth_sendRawTransaction" || call.method === "eth_sendRawTransactionConditional") return sentHashDiffers(params[0], result);
  if (typeof result !== "object" || result === null) return null;
  const answer = result as Record<string, unknown>;
  switch (call.method) {
    case "eth_getBlockByNumber": {
      const asked = normalQuantity(params[0]);
      if (asked !== null) return differs("block", "number", answer.number, asked, normalQuantity);
      // A mined block (a tag but "pending") has a number to read: one that cannot be read could not
      // be held back as ahead of the others (failover.ts), yet viem reads 259 or " 0x103" all the same.
      return params[0] !== "pending" && normalQuantity(answer.number) === null ? `with a block of number ${shown(answer.number)}, not a hex quantity` : null;
    }
    case "eth_getBlockByHash":
      return differs("block", "hash", answer.hash, hashOf(params[0]), hashOf);
    case "eth_getTransactionByHash":
      return differs("transaction", "hash", answer.hash, hashOf(params[0]), hashOf);
    case "eth_getTransactionReceipt":
      return differs("receipt", "transactionHash", answer.transactionHash, hashOf(params[0]), hashOf);
    case "eth_sendRawTransactionSync":
      return differs("receipt", "transactionHash", answer.transactionHash, transactionHashOf(params[0]), hashOf);
    case "eth_getTransactionByBlockHashAndIndex":
      return differs("transaction", "blockHash", answer.blockHash, hashOf(params[0]), hashOf) ?? differs("transaction", "transactionIndex", answer.transactionIndex, normalQuantity(params[1]), normalQuantity);
    case "eth_getTransactionByBlockNumberAndIndex": {
      // A block named by a tag names nothing to compare, its index included ("pending": EDR gives a null one).
      const block = normalQuantity(params[0]);
      return block === null ? null : (differs("transaction", "blockNumber", answer.blockNumber, block, normalQuantity) ?? differs("transaction", "transactionIndex", answer.transactionIndex, normalQuantity(params[1]), normalQuantity));
    }
    case "eth_getTransactionBySenderAndNonce":
      return differs("transaction", "from", answer.from, addressOf(params[0]), addressOf) ?? differs("transaction", "nonce", answer.nonce, normalQuantity(params[1]), normalQuantity);
    case "eth_getProof":
      return differs("proof", "address", answer.address, addressOf(params[0]), addressOf);
    case "eth_getBlockReceipts":
      return Array.isArray(result) ? receiptsDiffer(result, params[0]) : null;
    case "eth_getLogs":
      return Array.isArray(result) ? logsDiffer(result, params[0]) : null;
    default:
      return null;
  }
}

/** A send's result must be its transaction's hash (a made-up one: the client waits for a receipt that never comes). */
function sentHashDiffers(raw: unknown, result: unknown): string | null {
  if (typeof result !== "string") return null; // judgeReply refused any other
  const sent = transactionHashOf(raw);
  return sent === null || result.toLowerCase() === sent ? null : `with ${result.slice(0, 80)}, not the hash of the transaction sent (${sent})`;
}

/**
 * Whether member `name` of the answer, read as `read` reads it (a hash or an address in lower
 * case, a quantity without leading zeros), differs from `asked`: in words, or null when it does
 * not or nothing was asked.
 */
function differs(what: string, name: string, given: unknown, asked: string | null, read: (value: unknown) => string | null): string | null {
  if (asked === null || read(given) === asked) return null;
  return `with a ${what} of ${name} ${shown(given)}, not ${asked} as asked`;
}

function shown(value: unknown): string {
  return typeof value === "string" ? value.slice(0, 80) : value === undefined ? "(none)" : JSON.stringify(value)?.slice(0, 80) ?? "(none)";
}

function hashOf(value: unknown): string | null {
  return typeof value === "string" && hash.test(value) ? value.toLowerCase() : null;
}

function addressOf(value: unknown): string | null {
  return typeof value === "string" && /^0x[0-9a-fA-F]{40}$/.test(value) ? value.toLowerCase() : null;
}

/** A quantity as `0x` and its digits without leading zeros, in lower case; null for anything else. */
function normalQuantity(value: unknown): string | null {
  if (typeof value !== "string" || !hexQuantity.test(value)) return null;
  const digits = value.slice(2).replace(/^0+/, "").toLowerCase();
  return `0x${digits === "" ? "0" : digits}`;
}

/** The block a call names (a number, a hash, EIP-1898's `{blockHash}` or `{blockNumber}`), as the member its answer repeats. */
function askedBlock(value: unknown): { name: "blockHash" | "blockNumber"; asked: string } | null {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const named = value as { blockHash?: unknown; blockNumber?: unknown };
    value = named.blockHash ?? named.blockNumber;
  }
  const byHash = hashOf(value);
  if (byHash !== null) return { name: "blockHash", asked: byHash };
  const byNumber = normalQuantity(value);
  return byNumber === null ? null : { name: "blockNumber", asked: byNumber };
}

function receiptsDiffer(receipts: unknown[], block: unknown): string | null {
  const named = askedBlock(block);
  if (named === null) return null;
  const read = named.name === "blockHash" ? hashOf : normalQuantity;
  // Receipts of one block share its hash, whichever way it was named (two forks' receipts do not).
  let blockHash: string | null = null;
  for (const receipt of receipts) {
    const r = typeof receipt === "object" && receipt !== null ? (receipt as Record<string, unknown>) : {};
    const wrong = differs("receipt", named.name, r[named.name], named.asked, read) ?? differs("receipt", "blockHash", r.blockHash, blockHash, hashOf);
    if (wrong !== null) return wrong;
    blockHash ??= hashOf(r.blockHash);
  }
  return null;
}

/** A log's members an eth_getLogs filter constrains. */
type Log = { address?: unknown; topics?: unknown; blockNumber?: unknown; blockHash?: unknown; transactionHash?: unknown; logIndex?: unknown };

/**
 * Whether a log lies outside what the filter asked: another block hash, a block number outside
 * fromBlock–toBlock (when they are numbers; "latest" and the like are not compared), an address
 * not asked for, a topic not asked for at its position; or is given twice (the hostile-provider
 * fuzz: a client's handler ran twice for one event). Their order is not checked: some chains'
 * nodes have given logs out of order (Moonbeam, Hedera's relay), as a bug or by design.
 */
function logsDiffer(logs: unknown[], filter: unknown): string | null {
  if (typeof filter !== "object" || filter === null || Array.isArray(filter)) return null;
  const f = filter as { blockHash?: unknown; fromBlock?: unknown; toBlock?: unknown; address?: unknown; topics?: unknown };
  const blockHash = hashOf(f.blockHash);
  const from = blockHash === null ? (quantityOf(f.fromBlock) ?? -1) : -1;
  const to = blockHash === null ? (quantityOf(f.toBlock) ?? -1) : -1;
  const addresses = acceptedSet(f.address, addressOf);
  const topics = Array.isArray(f.topics) ? f.topics.map((position) => acceptedSet(position, hashOf)) : [];
  const seen = new Set<string>();
  for (const entry of logs) {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return "with a log that is not an object";
    const log = entry as Log;
    if (blockHash !== null && hashOf(log.blockHash) !== blockHash) return `with a log of block ${shown(log.blockHash)}, not ${blockHash} as asked`;
    const at = quantityOf(log.blockNumber) ?? -1; // one past 2^53 reads as the largest, past any range asked
    // Up to a block named by number, every log is of a block named so (only "pending" gives null).
    if (at < 0 && to >= 0) return `with a log of block ${shown(log.blockNumber)}, not a block number up to ${to} as asked`;
    if (at >= 0 && ((from >= 0 && at < from) || (to >= 0 && at > to))) {
      return `with a log of block ${at}, outside blocks ${from >= 0 ? from : "…"} to ${to >= 0 ? to : "…"} asked`;
    }
    if (addresses !== null && !(typeof log.address === "string" && addresses.has(log.address.toLowerCase()))) {
      return `with a log of address ${shown(log.address)}, not one asked for`;
    }
    for (let i = 0; i < topics.length; i++) {
      const wanted = topics[i];
      if (wanted === null) continue;
      const topic = Array.isArray(log.topics) ? log.topics[i] : undefined;
      if (!(typeof topic === "string" && wanted.has(topic.toLowerCase()))) return `with a log whose topic ${i} is ${shown(topic)}, not one asked for`;
    }
    // A log is its transaction's and its index's (per block or per transaction, as chains count).
    if (typeof log.transactionHash === "string" && typeof log.logIndex === "string") {
      const key = `${String(log.blockHash).toLowerCase()}/${log.transactionHash.toLowerCase()}/${normalQuantity(log.logIndex) ?? log.logIndex}`;
      if (seen.has(key)) return `with log ${shown(log.logIndex)} of transaction ${shown(log.transactionHash)} twice`;
      seen.add(key);
    }
  }
  return null;
}

/**
 * What a filter takes at one place (its addresses, or one position's topics), read by `read`:
 * null for any (none given, an empty list, or one holding null or a value the node refuses).
 */
function acceptedSet(value: unknown, read: (value: unknown) => string | null): Set<string> | null {
  const list = typeof value === "string" ? [value] : Array.isArray(value) ? value : null;
  if (list === null || list.length === 0) return null;
  const set = new Set<string>();
  for (const entry of list) {
    const valid = read(entry);
    if (valid === null) return null;
    set.add(valid);
  }
  return set;
}
