import { fromRlp, keccak256, toRlp, type Hex } from "viem";

const hexBytes = /^0x(?:[0-9a-fA-F]{2})+$/;
/** Legacy transactions (an RLP list, 0xc0 and up) and types 1, 2 and 4, whose hash is the keccak of their bytes. */
const hashedWhole = /^0x(?:[c-fC-F][0-9a-fA-F]|0[124])/;

/**
 * The hash nodes give for a raw transaction (`eth_sendRawTransaction`'s parameter), told from its
 * bytes; null when they are not a transaction's, or of a type the router does not know (a chain's
 * own: zkSync's 0x71 hashes its signed message). A blob transaction sent in its network form
 * (type 3: the transaction, then its blobs, commitments and proofs) is hashed without them, as
 * nodes hash it.
 */
export function transactionHashOf(raw: unknown): Hex | null {
  if (typeof raw !== "string" || !hexBytes.test(raw)) return null;
  if (hashedWhole.test(raw)) return keccak256(raw as Hex);
  if (!raw.startsWith("0x03")) return null;
  try {
    const fields = fromRlp(`0x${raw.slice(4)}`);
    if (!Array.isArray(fields) || !Array.isArray(fields[0])) return keccak256(raw as Hex); // sent without its blobs
    return keccak256(`0x03${toRlp(fields[0]).slice(2)}`);
  } catch {
    return null; // not RLP: no node takes it
  }
}
