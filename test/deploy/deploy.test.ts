import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

  it("refuses a kept journal whose contracts the chain does not have (a chain started afresh, same id), sending nothing", async () => {
    // The journal of the test above, on another chain with the same id: Ignition reported the
    // old addresses deployed, where nothing is.
    const fresh = await startChain();
    try {
      const client = createPublicClient({ transport: http(fresh.rpcUrl) });
      const [deployer] = await client.request({ method: "eth_accounts" as never, params: [] as never }) as `0x${string}`[];
      await expect(deployOpenDin({ rpcUrl: fresh.rpcUrl, parameters: "devnet", keepJournal: true, journalName })).rejects.toThrow(
        new RegExp(`^Ignition's journal \\S+${journalName} names contracts the chain at ${fresh.rpcUrl} does not have \\(OpenDIN#\\w+ 0x[0-9a-fA-F]{40}(, OpenDIN#\\w+ 0x[0-9a-fA-F]{40}){4}\\): it is another chain's with the same id, or this one was started afresh; move the journal aside to deploy anew$`),
      );
      expect(await client.getTransactionCount({ address: deployer })).toBe(0);
    } finally {
      await fresh.stop();
    }
  });

  it("refuses a parameter set or file that does not exist, naming the sets there are, before anything is sent", async () => {
    const client = createPublicClient({ transport: http(chain.rpcUrl) });
    const [deployer] = (await client.request({ method: "eth_accounts" as never, params: [] as never })) as `0x${string}`[];
    const sent = await client.getTransactionCount({ address: deployer });
    await expect(deployOpenDin({ rpcUrl: chain.rpcUrl, parameters: "prod" })).rejects.toThrow(
      'there is no parameter set "prod": give one of devnet, production (ignition/parameters/), or a JSON file\'s path',
    );
    const missing = join(tmpdir(), `opendin-no-such-parameters-${process.pid}.json`);
    await expect(deployOpenDin({ rpcUrl: chain.rpcUrl, parameters: missing })).rejects.toThrow(
      `the parameters file ${missing} does not exist: give one of devnet, production (ignition/parameters/), or a JSON file's path`,
    );
    expect(await client.getTransactionCount({ address: deployer })).toBe(sent);
  });

  it("refuses to deploy a second set over a deployment file whose contracts are on the chain, and keeps the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "opendin-deploy-"));
    const out = join(dir, "deployment.json");
    try {
      const first = await deployOpenDin({ rpcUrl: chain.rpcUrl, parameters: "devnet", out });
      const written = await readFile(out, "utf8");
      await expect(deployOpenDin({ rpcUrl: chain.rpcUrl, parameters: "devnet", out })).rejects.toThrow(
        `${out} names a deployment on this chain (ProviderRegistry ${first.contracts.ProviderRegistry}): deploying again would make a second set and replace it; give another --out, or --keep-journal to resume the one Ignition's journal records`,
      );
      expect(await readFile(out, "utf8")).toBe(written);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
