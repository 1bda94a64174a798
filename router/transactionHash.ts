import { Secp256k1 } from "ox";
import { fromRlp, keccak256, parseTransaction, serializeTransaction, toRlp, type Hex, type TransactionSerializable, type TransactionSerialized } from "viem";

// What the router reads of a raw transaction (eth_sendRawTransaction's parameter): the hash nodes
// give for it (a provider's made-up hash is a wrong answer), and its nonce and sender (a nonce at
// "pending" that leaves it out is asked elsewhere: writeAffinity.ts).

const hexBytes = /^0x(?:[0-9a-fA-F]{2})+$/;
/** Legacy transactions (an RLP list, 0xc0 and up) and types 1, 2 and 4, whose hash is the keccak of their bytes. */
const hashedWhole = /^0x(?:[c-fC-F][0-9a-fA-F]|0[124])/;

/**
 * The hash nodes give for a raw transaction (`eth_sendRawTransaction`'s parameter), told from its
 * bytes; null when they are not a transaction's, or of a type the router does not know (a chain's
 * own: zkSync's 0x71 hashes its signed message), or followed by bytes of no use (some nodes take
 * the transaction and hash it alone, others refuse it). A blob transaction sent in its network
 * form (type 3: the transaction, then its blobs, commitments and proofs) is hashed without them,
 * as nodes hash it.
 */
export function transactionHashOf(raw: unknown): Hex | null {
  if (typeof raw !== "string" || !hexBytes.test(raw)) return null;
  const typed = !/^0x[c-fC-F]/.test(raw);
  if (!endsWithOneList(raw, typed ? 4 : 2)) return null;
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

/** Whether the hex digits of `raw` from `at` hold one RLP list and nothing after it. */
function endsWithOneList(raw: string, at: number): boolean {
  const byte = (i: number) => Number.parseInt(raw.slice(at + 2 * i, at + 2 * i + 2), 16);
  const bytes = (raw.length - at) / 2;
  const prefix = byte(0);
  if (!(prefix >= 0xc0)) return false;
  if (prefix <= 0xf7) return 1 + prefix - 0xc0 === bytes;
  const lengthBytes = prefix - 0xf7;
  let length = 0;
  for (let i = 1; i <= lengthBytes; i++) length = length * 256 + byte(i);
  return 1 + lengthBytes + length === bytes;
}

/** A signed transaction as its sender is recovered from it (senderOf), with its nonce. */
export type SignedTransaction = { nonce: number; payload: Hex; signature: { r: bigint; s: bigint; yParity: number } };

/** A raw transaction's nonce and what its signature signed (some 20–110 µs); null when viem cannot read it. */
export function signedTransactionOf(raw: unknown): SignedTransaction | null {
  if (typeof raw !== "string" || !hexBytes.test(raw)) return null;
  try {
    const tx = parseTransaction(raw as TransactionSerialized);
    // (viem reads a legacy transaction's parity from its v, EIP-155's too.)
    if (tx.nonce === undefined || tx.r === undefined || tx.s === undefined || tx.yParity === undefined) return null;
    const unsigned = { ...tx, r: undefined, s: undefined, v: undefined, yParity: undefined, sidecars: undefined } as TransactionSerializable;
    return { nonce: tx.nonce, payload: keccak256(serializeTransaction(unsigned)), signature: { r: BigInt(tx.r), s: BigInt(tx.s), yParity: tx.yParity } };
  } catch {
    return null;
  }
}

/** Who signed the transaction (in lower case): about 2 ms of CPU, so recovered only when asked. */
export function senderOf(signed: SignedTransaction): string | null {
  try {
    return Secp256k1.recoverAddress(signed).toLowerCase();
  } catch {
    return null;
  }
}
