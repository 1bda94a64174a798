import { describe, expect, it } from "vitest";
import { ProviderHealth } from "../../router/health.ts";
import { resolveRoutingOptions } from "../../router/options.ts";
import { WriteAffinity } from "../../router/writeAffinity.ts";

// Who took a client's last transaction, asked first about its transactions for a while (failover.ts).

const options = resolveRoutingOptions();
const provider = (i: number) =>
  new ProviderHealth({ address: `0x${(i + 1).toString(16).padStart(40, "0")}`, chainId: 1, url: `https://node-${i}.example`, stake: 1n, slashedTotal: 0n, name: `node-${i}` }, options.scoring, options.circuit);

describe("write affinity", () => {
  it("prefers the providers for the client's calls about its transactions, on that chain, until it ends", () => {
    const affinity = new WriteAffinity(30_000);
    const p = provider(0);
    affinity.took(1, "10.0.0.1", [p], 1_000);
    expect(affinity.preferred(1, "10.0.0.1", "eth_getTransactionCount", 2_000)).toEqual([p]);
    expect(affinity.preferred(1, "10.0.0.1", "eth_getTransactionReceipt", 2_000)).toEqual([p]);
    expect(affinity.preferred(1, "10.0.0.1", "eth_getBalance", 2_000)).toBeNull(); // not about its transactions
    expect(affinity.preferred(1, "10.0.0.2", "eth_getTransactionCount", 2_000)).toBeNull(); // another client
    expect(affinity.preferred(5, "10.0.0.1", "eth_getTransactionCount", 2_000)).toBeNull(); // another chain
    expect(affinity.preferred(1, "10.0.0.1", "eth_getTransactionCount", 31_000)).toBeNull(); // ended
    const q = provider(1);
    affinity.took(1, "10.0.0.1", [q], 20_000); // a later transaction: its provider, for 30 s from then
    expect(affinity.preferred(1, "10.0.0.1", "eth_getTransactionCount", 40_000)).toEqual([q]);
  });

  it("keeps at most maxClients, forgetting the oldest and the ended first", () => {
    const affinity = new WriteAffinity(30_000, 3);
    const p = provider(0);
    for (let i = 0; i < 5; i++) affinity.took(1, `10.0.0.${i}`, [p], i);
    const kept = [0, 1, 2, 3, 4].filter((i) => affinity.preferred(1, `10.0.0.${i}`, "eth_getTransactionCount", 10) !== null);
    expect(kept).toEqual([2, 3, 4]);
    affinity.took(1, "10.0.0.9", [p], 40_000); // the others ended by then
    expect([2, 3, 4, 9].filter((i) => affinity.preferred(1, `10.0.0.${i}`, "eth_getTransactionCount", 40_000) !== null)).toEqual([9]);
  });

  it("holds nothing with a hold of 0", () => {
    const affinity = new WriteAffinity(0);
    affinity.took(1, "10.0.0.1", [provider(0)], 0);
    expect(affinity.preferred(1, "10.0.0.1", "eth_getTransactionCount", 0)).toBeNull();
  });
});
