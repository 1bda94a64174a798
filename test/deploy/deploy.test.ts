import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, http } from "viem";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { deployOpenDin } from "../../scripts/deploy.ts";

// The deployment file's startBlock is where the indexer starts reading: a block too late and it
// misses the events of the contracts deployed before (their parameters, the first stakes).

const journalName = `test-deploy-${process.pid}`;
const journalDir = fileURLToPath(new URL(`../../ignition/deployments/${journalName}`, import.meta.url));
let chain: Chain;

beforeAll(async () => {
  chain = await startChain();
});

afterAll(async () => {
  await chain?.stop();
  await rm(journalDir, { recursive: true, force: true });
});

describe("scripts/deploy.ts", () => {
  it("starts at the block before the first contract, also when a kept journal is run again blocks later", async () => {
    const client = createPublicClient({ transport: http(chain.rpcUrl) });
    await client.request({ method: "evm_mine" as never, params: [] as never }); // not from block 0
    const first = await deployOpenDin({ rpcUrl: chain.rpcUrl, parameters: "devnet", keepJournal: true, journalName });
    const addresses = Object.values(first.contracts);
    const codeAt = async (block: number) =>
      await Promise.all(addresses.map(async (address) => (await client.getCode({ address, blockNumber: BigInt(block) })) !== undefined));
    expect(await codeAt(first.startBlock)).toEqual(addresses.map(() => false));
    expect((await codeAt(first.startBlock + 1)).some(Boolean)).toBe(true);

    // Later, the same journal: Ignition finds everything deployed and sends nothing.
    for (let i = 0; i < 5; i++) await client.request({ method: "evm_mine" as never, params: [] as never });
    const sent = await client.getTransactionCount({ address: first.deployer });
    const again = await deployOpenDin({ rpcUrl: chain.rpcUrl, parameters: "devnet", keepJournal: true, journalName });
    expect(again.contracts).toEqual(first.contracts);
    expect(await client.getTransactionCount({ address: first.deployer })).toBe(sent);
    expect(again.startBlock).toBe(first.startBlock);
  });
});
