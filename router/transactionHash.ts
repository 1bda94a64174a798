import { fromRlp, keccak256, toRlp, type Hex } from "viem";

const hexBytes = /^0x(?:[0-9a-fA-F]{2})+$/;

/**
 * The hash nodes give for a raw transaction (`eth_sendRawTransaction`'s parameter), told from its
 * bytes; null when they are not a transaction's. A blob transaction sent in its network form
 * (type 3: the transaction, then its blobs, commitments and proofs) is hashed without them, as
 * nodes hash it.
 */
export function transactionHashOf(raw: unknown): Hex | null {
  if (typeof raw !== "string" || !hexBytes.test(raw)) return null;
  if (!raw.startsWith("0x03")) return keccak256(raw as Hex);
  try {
    const fields = fromRlp(`0x${raw.slice(4)}`);
    if (!Array.isArray(fields) || !Array.isArray(fields[0])) return keccak256(raw as Hex); // sent without its blobs
    return keccak256(`0x03${toRlp(fields[0]).slice(2)}`);
  } catch {
    return null; // not RLP: no node takes it
  }
}
