import { describe, expect, it } from "vitest";
import { keccak256, toRlp, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { transactionHashOf } from "../../router/transactionHash.ts";
import { DEV_KEY } from "./support.ts";

// The hash the router expects back from a send: what a node computes from the raw bytes.

describe("the hash of a raw transaction", () => {
  it("is the keccak of the bytes for legacy and typed transactions", async () => {
    const account = privateKeyToAccount(DEV_KEY);
    const to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    const legacy = await account.signTransaction({ chainId: 31337, nonce: 0, to, value: 1n, gas: 21_000n, gasPrice: 1n, type: "legacy" });
    const eip1559 = await account.signTransaction({ chainId: 31337, nonce: 1, to, value: 1n, gas: 21_000n, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n });
    expect(transactionHashOf(legacy)).toBe(keccak256(legacy));
    expect(transactionHashOf(eip1559)).toBe(keccak256(eip1559));
  });

  it("leaves out a blob transaction's blobs, commitments and proofs, as nodes do", () => {
    // The fields of a type-3 transaction (values do not matter to the hash's rule), then its sidecar.
    const fields: Hex[] = ["0x7a69", "0x01", "0x01", "0x02", "0x5208", `0x${"11".repeat(20)}`, "0x", "0x", "0x01"];
    const body = toRlp([...fields, [], "0x01", [`0x01${"22".repeat(31)}`], "0x01", "0x01", "0x01"]);
    const canonical = `0x03${body.slice(2)}` as Hex;
    const sidecar = [[`0x${"33".repeat(1024)}`], [`0x${"44".repeat(48)}`], [`0x${"55".repeat(48)}`]] as const;
    const network = `0x03${toRlp([[...fields, [], "0x01", [`0x01${"22".repeat(31)}`], "0x01", "0x01", "0x01"], ...sidecar]).slice(2)}` as Hex;
    expect(transactionHashOf(network)).toBe(keccak256(canonical));
    expect(transactionHashOf(canonical)).toBe(keccak256(canonical));
  });

  it("is null for bytes no node takes as a transaction, and for a chain's own types (unchecked)", () => {
    for (const raw of [null, 7, "", "0x", "0x0", "f86b", "0xzz", "0x03ff"]) expect(transactionHashOf(raw)).toBeNull();
    // zkSync's EIP-712 transactions (0x71) hash their signed message, not their bytes (the review).
    expect(transactionHashOf(`0x71f8${"00".repeat(40)}`)).toBeNull();
  });

  it("is null for a transaction followed by other bytes: nodes that take it hash it alone", async () => {
    // The review: Hardhat took a transaction with 00 after it and answered the hash of the
    // transaction alone, which the router, hashing all the bytes, took for a lie.
    const account = privateKeyToAccount(DEV_KEY);
    const to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    for (const type of ["legacy", "eip1559"] as const) {
      const signed = await account.signTransaction({ chainId: 31337, nonce: 0, to, value: 1n, gas: 21_000n, ...(type === "legacy" ? { gasPrice: 1n, type } : { maxFeePerGas: 2n, maxPriorityFeePerGas: 1n }) });
      expect(transactionHashOf(`${signed}00`)).toBeNull();
      expect(transactionHashOf(signed.slice(0, -2))).toBeNull(); // and one cut short
    }
  });
});
