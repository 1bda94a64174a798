import { describe, expect, it } from "vitest";
import { ProviderHealth } from "../../router/health.ts";
import { resolveRoutingOptions } from "../../router/options.ts";
import { signedTransactionOf } from "../../router/transactionHash.ts";
import { WriteAffinity } from "../../router/writeAffinity.ts";
import { privateKeyToAccount } from "viem/accounts";
import { DEV_KEY } from "./support.ts";

// Who took a client's last transaction, asked first about its transactions for a while (failover.ts).

const options = resolveRoutingOptions();
const provider = (i: number) =>
  new ProviderHealth({ address: `0x${(i + 1).toString(16).padStart(40, "0")}`, chainId: 1, url: `https://node-${i}.example`, stake: 1n, slashedTotal: 0n, name: `node-${i}` }, options.scoring, options.circuit);

describe("write affinity", () => {
  it("prefers the providers for the client's calls about its transactions, on that chain, until it ends", () => {
    const affinity = new WriteAffinity(30_000);
    const p = provider(0);
    affinity.took(1, "10.0.0.1", [p], null, 1_000);
    expect(affinity.preferred(1, "10.0.0.1", "eth_getTransactionCount", 2_000)).toEqual([p]);
    expect(affinity.preferred(1, "10.0.0.1", "eth_getTransactionReceipt", 2_000)).toEqual([p]);
    expect(affinity.preferred(1, "10.0.0.1", "eth_getBalance", 2_000)).toBeNull(); // not about its transactions
    expect(affinity.preferred(1, "10.0.0.2", "eth_getTransactionCount", 2_000)).toBeNull(); // another client
    expect(affinity.preferred(5, "10.0.0.1", "eth_getTransactionCount", 2_000)).toBeNull(); // another chain
    expect(affinity.preferred(1, "10.0.0.1", "eth_getTransactionCount", 31_000)).toBeNull(); // ended
    const q = provider(1);
    affinity.took(1, "10.0.0.1", [q], null, 20_000); // a later transaction: its provider, for 30 s from then
    expect(affinity.preferred(1, "10.0.0.1", "eth_getTransactionCount", 40_000)).toEqual([q]);
  });

  it("keeps at most maxClients, forgetting the oldest and the ended first", () => {
    const affinity = new WriteAffinity(30_000, 3);
    const p = provider(0);
    for (let i = 0; i < 5; i++) affinity.took(1, `10.0.0.${i}`, [p], null, i);
    const kept = [0, 1, 2, 3, 4].filter((i) => affinity.preferred(1, `10.0.0.${i}`, "eth_getTransactionCount", 10) !== null);
    expect(kept).toEqual([2, 3, 4]);
    affinity.took(1, "10.0.0.9", [p], null, 40_000); // the others ended by then
    expect([2, 3, 4, 9].filter((i) => affinity.preferred(1, `10.0.0.${i}`, "eth_getTransactionCount", 40_000) !== null)).toEqual([9]);
  });

  it("holds nothing with a hold of 0", () => {
    const affinity = new WriteAffinity(0);
    affinity.took(1, "10.0.0.1", [provider(0)], null, 0);
    expect(affinity.preferred(1, "10.0.0.1", "eth_getTransactionCount", 0)).toBeNull();
  });

  it("tells a nonce at pending that leaves out the client's last transaction of that sender, of each of its senders", async () => {
    const account = privateKeyToAccount(DEV_KEY);
    const sender = account.address.toLowerCase();
    const other = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
    const transfer = { to: other, value: 1n, gas: 21_000n } as const;
    // Typed (EIP-1559), legacy under EIP-155 (v = chainId · 2 + 35 + parity) and legacy without a chain id (v = 27 + parity).
    const signed = [
      await account.signTransaction({ ...transfer, chainId: 1, nonce: 7, maxFeePerGas: 10n, maxPriorityFeePerGas: 1n }),
      await account.signTransaction({ ...transfer, chainId: 1, nonce: 7, gasPrice: 10n, type: "legacy" }),
      await account.signTransaction({ ...transfer, nonce: 7, gasPrice: 10n, type: "legacy" }),
    ];
    for (const raw of signed) {
      const affinity = new WriteAffinity(30_000);
      const sent = signedTransactionOf(raw);
      expect(sent?.nonce).toBe(7);
      affinity.took(1, "10.0.0.1", [provider(0)], sent, 1_000);
      expect(affinity.missesTaken(1, "10.0.0.1", account.address, 7, 2_000)).toBe(true); // nonce 7 is taken: 7 leaves it out
      expect(affinity.missesTaken(1, "10.0.0.1", sender, 3, 2_000)).toBe(true);
      expect(affinity.missesTaken(1, "10.0.0.1", sender, 8, 2_000)).toBe(false);
      expect(affinity.missesTaken(1, "10.0.0.1", other, 7, 2_000)).toBe(false); // another sender
      expect(affinity.missesTaken(1, "10.0.0.2", sender, 7, 2_000)).toBe(false); // another client
      expect(affinity.missesTaken(5, "10.0.0.1", sender, 7, 2_000)).toBe(false); // another chain
      expect(affinity.missesTaken(1, "10.0.0.1", sender, 7, 31_000)).toBe(false); // ended
    }
    // Several wallets from one client (a relayer, a NAT): each one's own last transaction counts.
    const second = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
    const affinity = new WriteAffinity(30_000);
    affinity.took(1, "10.0.0.1", [provider(0)], signedTransactionOf(signed[0]), 1_000); // the first wallet's nonce 7
    affinity.took(1, "10.0.0.1", [provider(1)], signedTransactionOf(await second.signTransaction({ ...transfer, chainId: 1, nonce: 2, gasPrice: 10n, type: "legacy" })), 20_000);
    expect(affinity.missesTaken(1, "10.0.0.1", sender, 7, 21_000)).toBe(true);
    expect(affinity.missesTaken(1, "10.0.0.1", sender, 8, 21_000)).toBe(false);
    expect(affinity.missesTaken(1, "10.0.0.1", second.address, 2, 21_000)).toBe(true);
    expect(affinity.missesTaken(1, "10.0.0.1", second.address, 3, 21_000)).toBe(false);
    // Each counts for the hold from its own broadcast, not renewed by the client's later ones (a review).
    expect(affinity.missesTaken(1, "10.0.0.1", sender, 7, 32_000)).toBe(false);
    expect(affinity.missesTaken(1, "10.0.0.1", second.address, 2, 32_000)).toBe(true);
    expect(signedTransactionOf("0x1234")).toBeNull();
    expect(signedTransactionOf(42)).toBeNull();
  });
});
