import type { RpcCall } from "./jsonRpc.ts";
import { transactionHashOf } from "./transactionHash.ts";

// An answer of the right form may still not answer the call: block 5 for block 0, another
// transaction's receipt, a log of another contract or outside the blocks asked, a made-up hash for
// a transaction sent. What a call names and its answer repeats is compared here (failover.ts holds
// an answer that differs against its provider, `wrong_answer`, and asks another). Only what every
// node repeats as asked is compared; a tag such as "latest" names nothing to compare.

const hash = /^0x[0-9a-fA-F]{64}$/;
const hexQuantity = /^0x[0-9a-fA-F]{1,64}$/;

/** How `result` contradicts `call`, in words that follow "answered <method>" ("with block 5, …"); null: it does not, or nothing can be told. */
export function contradiction(call: RpcCall, result: unknown): string | null {
  const params = call.params;
  if (!Array.isArray(params) || typeof result !== "object" || result === null) {
    return typeof result === "string" && sendsTransaction.has(call.method) ? sentHashDiffers(params, result) : null;
  }
  const answer = result as Record<string, unknown>;
  switch (call.method) {
    case "eth_getBlockByNumber":
      return differs("block", "number", answer.number, blockNumberOf(params[0]), quantityOf);
    case "eth_getBlockByHash":
      return differs("block", "hash", answer.hash, hashOf(params[0]), hashOf);
    case "eth_getTransactionByHash":
      return differs("transaction", "hash", answer.hash, hashOf(params[0]), hashOf);
    case "eth_getTransactionReceipt":
      return differs("receipt", "transactionHash", answer.transactionHash, hashOf(params[0]), hashOf);
    case "eth_sendRawTransactionSync":
      return differs("receipt", "transactionHash", answer.transactionHash, transactionHashOf(params[0]), hashOf);
    case "eth_getTransactionByBlockHashAndIndex":
      return differs("transaction", "blockHash", answer.blockHash, hashOf(params[0]), hashOf) ?? differs("transaction", "transactionIndex", answer.transactionIndex, quantityOf(params[1]), quantityOf);
    case "eth_getTransactionByBlockNumberAndIndex":
      return differs("transaction", "blockNumber", answer.blockNumber, blockNumberOf(params[0]), quantityOf) ?? differs("transaction", "transactionIndex", answer.transactionIndex, quantityOf(params[1]), quantityOf);
    case "eth_getTransactionBySenderAndNonce":
      return differs("transaction", "from", answer.from, addressOf(params[0]), addressOf) ?? differs("transaction", "nonce", answer.nonce, quantityOf(params[1]), quantityOf);
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

const sendsTransaction: ReadonlySet<string> = new Set(["eth_sendRawTransaction", "eth_sendRawTransactionConditional"]);

/** A send's result must be its transaction's hash (a made-up one: the client waits for a receipt that never comes). */
function sentHashDiffers(params: unknown, result: string): string | null {
  const sent = transactionHashOf(Array.isArray(params) ? params[0] : undefined);
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
function quantityOf(value: unknown): string | null {
  if (typeof value !== "string" || !hexQuantity.test(value)) return null;
  const digits = value.slice(2).replace(/^0+/, "").toLowerCase();
  return `0x${digits === "" ? "0" : digits}`;
}

/** A block asked by number ("earliest" is 0); null for another tag. */
function blockNumberOf(value: unknown): string | null {
  return value === "earliest" ? "0x0" : quantityOf(value);
}

/** The block a call names (a number, a hash, EIP-1898's `{blockHash}` or `{blockNumber}`), as the member its answer repeats. */
function namedBlock(value: unknown): { name: "blockHash" | "blockNumber"; asked: string } | null {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const named = value as { blockHash?: unknown; blockNumber?: unknown };
    value = named.blockHash ?? named.blockNumber;
  }
  const byHash = hashOf(value);
  if (byHash !== null) return { name: "blockHash", asked: byHash };
  const byNumber = blockNumberOf(value);
  return byNumber === null ? null : { name: "blockNumber", asked: byNumber };
}

function receiptsDiffer(receipts: unknown[], block: unknown): string | null {
  const named = namedBlock(block);
  if (named === null) return null;
  const read = named.name === "blockHash" ? hashOf : quantityOf;
  for (const receipt of receipts) {
    const given = typeof receipt === "object" && receipt !== null ? (receipt as Record<string, unknown>)[named.name] : undefined;
    const wrong = differs("receipt", named.name, given, named.asked, read);
    if (wrong !== null) return wrong;
  }
  return null;
}

/** A log's members an eth_getLogs filter constrains. */
type Log = { address?: unknown; topics?: unknown; blockNumber?: unknown; blockHash?: unknown };

/**
 * Whether a log lies outside what the filter asked: another block hash, a block number outside
 * fromBlock–toBlock (when they are numbers; "latest" and the like are not compared), an address
 * not asked for, a topic not asked for at its position.
 */
function logsDiffer(logs: unknown[], filter: unknown): string | null {
  if (typeof filter !== "object" || filter === null || Array.isArray(filter)) return null;
  const f = filter as { blockHash?: unknown; fromBlock?: unknown; toBlock?: unknown; address?: unknown; topics?: unknown };
  const blockHash = hashOf(f.blockHash);
  const from = blockHash === null ? numberOf(blockNumberOf(f.fromBlock)) : -1;
  const to = blockHash === null ? numberOf(blockNumberOf(f.toBlock)) : -1;
  const addresses = acceptedSet(f.address, addressOf);
  const topics = Array.isArray(f.topics) ? f.topics.map((position) => acceptedSet(position, hashOf)) : [];
  for (const entry of logs) {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return "with a log that is not an object";
    const log = entry as Log;
    if (blockHash !== null && hashOf(log.blockHash) !== blockHash) return `with a log of block ${shown(log.blockHash)}, not ${blockHash} as asked`;
    const at = numberOf(quantityOf(log.blockNumber));
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
  }
  return null;
}

/** A block number as a number (-1: none); a padded or huge one reads as a large number, outside any range asked. */
function numberOf(quantity: string | null): number {
  return quantity === null ? -1 : Number.parseInt(quantity, 16);
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
