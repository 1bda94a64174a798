import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFunctionData, parseEther, type Address } from "viem";
import { mined, passProposal, passSlashingProposal } from "../helpers/chainActions.ts";
import { startFaultyUpstreams, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { startDeployedChain, type DeployedChain } from "../helpers/startDeployedChain.ts";
import { startIndexer, type TestIndexer } from "../helpers/startIndexer.ts";
import { startRouter, type TestRouter } from "../helpers/startRouter.ts";
import { createLogger } from "../../router/log.ts";
import { registryQuery, registryReader } from "../../router/registryView.ts";
import { waitFor } from "./support.ts";

// The whole path with nothing hand-fed: operators register on chain, the indexer projects the
// registry's events, the router's live query picks the set up and routes to it. A provider that
// registers starts receiving traffic; one that is jailed, or slashed below the minimum stake by a
// governance vote, stops. With the indexer gone the router keeps serving, and a router started
// while it is gone serves from the snapshot the first one wrote.

const CHAIN = 31337;
const DIN = (amount: string) => parseEther(amount);

let system: DeployedChain;
let nodes: ProviderNode[];
let indexer: TestIndexer;
let router: TestRouter;
let dir: string;
let indexerData: string;
let deployer: Address, opA: Address, opB: Address, opC: Address, opD: Address, watcher: Address;

const listed = () => (router.status().chains[0]?.providers ?? []).map((p) => p.address);
const servedBy = async (count: number): Promise<Set<string>> => {
  const who = new Set<string>();
  for (let id = 0; id < count; id++) {
    const answer = await router.post(CHAIN, { jsonrpc: "2.0", id, method: "eth_blockNumber" });
    expect((answer.json() as { result?: string }).result, answer.text).toMatch(/^0x/);
    who.add(answer.headers.get("x-din-provider")!);
  }
  return who;
};

async function register(operator: Address, name: string, stake: string, node: ProviderNode): Promise<void> {
  const { token, registry } = system.contracts;
  await mined(system, token.write.transfer([operator, DIN(stake)], { account: deployer }));
  await mined(system, token.write.approve([registry.address, DIN(stake)], { account: operator }));
  await mined(system, registry.write.registerAndStake([name, "ipfs://meta", DIN(stake)], { account: operator }));
  await mined(system, registry.write.setEndpoint([BigInt(CHAIN), node.url], { account: operator }));
}

/** Jails `provider` the only way there is: a governance proposal executed by the timelock. */
async function jailByVote(provider: Address): Promise<void> {
  const { registry } = system.contracts;
  const data = encodeFunctionData({ abi: registry.abi, functionName: "jail", args: [provider] });
  await passProposal(system, [{ target: registry.address, data }], `jail ${provider}`, deployer);
}

beforeAll(async () => {
  system = await startDeployedChain();
  [deployer, opA, opB, opC, watcher, opD] = (await system.viem.getWalletClients()).map((w) => w.account.address);
  const { token, manager } = system.contracts;
  await mined(system, token.write.delegate([deployer], { account: deployer })); // votes for the proposals
  await mined(system, token.write.transfer([watcher, DIN("100")], { account: deployer }));
  await mined(system, token.write.approve([manager.address, DIN("100")], { account: watcher }));
  nodes = await startFaultyUpstreams(system.chain.rpcUrl, 3);
  await register(opA, "alpha", "400", nodes[0]);
  await register(opB, "beta", "150", nodes[1]); // just above the devnet minimum of 100
  indexer = await startIndexer({ rpcUrl: system.chain.rpcUrl, deployment: system.deployment });
  indexerData = indexer.dataDir;
  dir = await mkdtemp(join(tmpdir(), "din-router-indexer-"));
  router = await startRouter({ indexerUrl: indexer.url, snapshotPath: join(dir, "providers.json") });
});

afterAll(async () => {
  await router?.stop();
  await indexer?.dispose();
  for (const node of nodes ?? []) await node.stop();
  await system?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (indexerData) await rm(indexerData, { recursive: true, force: true });
});

describe("the router on the indexer's live provider set", () => {
  it("routes to the providers registered on chain, by their stake", async () => {
    expect(router.status().providerSet).toMatchObject({ source: "indexer", state: "live", servingFrom: "indexer" });
    // Ready means the backfill is done; the last few blocks may still be on their way (realtime sync).
    await waitFor(() => listed().length === 2, "both registered providers in the router's set", 60_000);
    expect(listed().sort()).toEqual([opA, opB].map((a) => a.toLowerCase()).sort());
    const alpha = router.status().chains[0].providers.find((p) => p.address === opA.toLowerCase())!;
    expect(alpha).toMatchObject({ name: "alpha", url: nodes[0].url, stake: DIN("400").toString() });
    expect(alpha.parts.stake).toBeCloseTo(20, 6); // √400
    await waitFor(() => router.status().chains[0].eligibleProviders === 2, "both providers eligible");
    expect((await servedBy(60)).size).toBe(2);
  });

  it("sends traffic to a provider as soon as it registers", async () => {
    await register(opC, "gamma", "900", nodes[2]);
    await waitFor(() => listed().includes(opC.toLowerCase()), "the new provider in the router's set", 60_000);
    await waitFor(async () => (await servedBy(20)).has(opC.toLowerCase()), "traffic on the new provider", 60_000);
  });

  it("stops routing to a provider jailed by governance", async () => {
    expect(listed()).toContain(opA.toLowerCase());
    await jailByVote(opA);
    await waitFor(() => !listed().includes(opA.toLowerCase()), "the jailed provider to leave the set", 60_000);
    nodes[0].resetStats();
    const who = await servedBy(40);
    expect(who.has(opA.toLowerCase())).toBe(false);
    expect(nodes[0].stats().byMethod.eth_blockNumber ?? 0).toBeLessThanOrEqual(2); // probes in flight at most
  });

  it("stops routing to a provider slashed below the minimum stake", async () => {
    expect(listed()).toContain(opB.toLowerCase());
    const { manager } = system.contracts;
    await mined(system, manager.write.openCase([opB, DIN("100"), "0xdeadbeef"], { account: watcher }));
    const caseId = await manager.read.caseCount();
    await passSlashingProposal(system, "upholdCase", caseId, deployer); // takes 50% (maxSlashBps): 75 of 150
    expect((await system.contracts.registry.read.getProvider([opB])).activeStake).toBe(DIN("75"));
    await waitFor(() => !listed().includes(opB.toLowerCase()), "the slashed provider to leave the set", 60_000);
    const who = await servedBy(40);
    expect([...who]).toEqual([opC.toLowerCase()]);
  });

  it("serves the registry at GET /registry with one fixed query, read once for many clients, and relays no other GraphQL", async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(`${router.url}/registry`)));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    const bodies = await Promise.all(answers.map((a) => a.text()));
    expect(new Set(bodies).size).toBe(1);
    const registry = (JSON.parse(bodies[0]) as { data: { providers: { items: { address: string; status: string }[] }; _meta: unknown } }).data;
    // The same as the indexer answers, but for _meta: the chain mines a block a second, the indexer follows.
    const { _meta: routerMeta, ...routerRest } = registry;
    const { _meta: indexerMeta, ...indexerRest } = (await indexer.graphql(registryQuery)) as typeof registry;
    expect(routerRest).toEqual(indexerRest);
    expect(Object.keys(routerMeta as object)).toEqual(Object.keys(indexerMeta as object));
    expect(registry.providers.items.map((p) => p.address).sort()).toEqual([opA, opB, opC].map((a) => a.toLowerCase()).sort());
    const relay = await fetch(`${router.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"query":"{ providers { items { name } } }"}' });
    expect(relay.status).toBe(404);
  });

  it("reads the registry from the indexer once for many clients, then again when the answer is stale", async () => {
    // A pass-through in front of the real indexer, counting the queries that reach it.
    let reads = 0;
    const relay = createServer((req, res) => {
      reads++;
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        const answer = await fetch(`${indexer.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: Buffer.concat(chunks) });
        res.writeHead(answer.status, { "content-type": "application/json" });
        res.end(Buffer.from(await answer.arrayBuffer()));
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    try {
      const read = registryReader(`http://127.0.0.1:${(relay.address() as AddressInfo).port}/`, createLogger({ level: "silent" }), 300);
      const answers = await Promise.all(Array.from({ length: 20 }, () => read()));
      expect(reads).toBe(1);
      expect(answers.every((a) => a.status === 200 && a.body === answers[0].body)).toBe(true);
      await read();
      expect(reads).toBe(1); // fresh: served from the last read
      await new Promise((resolve) => setTimeout(resolve, 350));
      const later = await read();
      expect(reads).toBe(2);
      // (Not `_meta`: the indexed block moves on as the chain does.)
      const registry = ({ _meta, ...rest }: Record<string, unknown>) => rest;
      expect(registry((JSON.parse(later.body.toString()) as { data: Record<string, unknown> }).data)).toEqual(registry(await indexer.graphql(registryQuery)));
    } finally {
      relay.close();
    }
  });

  it("keeps serving the last set while the indexer is away, and a new router starts from the snapshot", async () => {
    const snapshotPath = join(dir, "providers.json");
    await waitFor(async () => (await readFile(snapshotPath, "utf8").catch(() => "")).includes(opC.toLowerCase()), "the snapshot on disk");
    const snapshot = JSON.parse(await readFile(snapshotPath, "utf8")) as { providers: { address: string }[] };
    expect(snapshot.providers.map((p) => p.address)).toEqual([opC.toLowerCase()]);

    await indexer.stop();
    await waitFor(() => router.status().providerSet.state === "unreachable", "the router to notice the indexer is gone");
    expect(router.status().providerSet.servingFrom).toBe("indexer"); // the last set it had
    expect([...(await servedBy(20))]).toEqual([opC.toLowerCase()]);

    const second = await startRouter({ indexerUrl: indexer.url, snapshotPath, startupWaitMs: 500 });
    try {
      expect(second.status().providerSet).toMatchObject({ state: "unreachable", servingFrom: "snapshot" });
      const answer = await second.post(CHAIN, { jsonrpc: "2.0", id: 1, method: "eth_blockNumber" });
      expect(answer.headers.get("x-din-provider")).toBe(opC.toLowerCase());
    } finally {
      await second.stop();
    }
  });

  it("keeps its set through an indexer restart, while the restarted indexer catches up from its last finalized block", async () => {
    // The indexer comes back on its data and port, then a fourth provider registers.
    const again = () => startIndexer({ rpcUrl: system.chain.rpcUrl, deployment: system.deployment, dataDir: indexerData, port: indexer.port });
    indexer = await again();
    await waitFor(() => router.status().providerSet.state === "live", "the router back on the indexer", 60_000);
    const [node] = await startFaultyUpstreams(system.chain.rpcUrl, 1);
    nodes.push(node);
    await register(opD, "delta", "500", node);
    await waitFor(() => listed().includes(opD.toLowerCase()), "the fourth provider in the router's set", 60_000);

    // Restarted, Ponder serves the state of its last finalized block (30 blocks back on this chain:
    // before delta registered) until it has indexed the blocks since. The router keeps its set.
    const seen: string[][] = [];
    const sampler = setInterval(() => seen.push(listed()), 10);
    try {
      await indexer.stop();
      indexer = await again();
      const head = Number(await (await system.viem.getPublicClient()).getBlockNumber());
      await waitFor(async () => {
        const status = (await (await fetch(`${indexer.url}/status`)).json()) as Record<string, { block: { number: number } }>;
        return Object.values(status).every((chain) => chain.block.number >= head) && router.status().providerSet.state === "live";
      }, "the restarted indexer to catch up", 60_000);
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // the router's next look
    } finally {
      clearInterval(sampler);
    }
    expect(seen.length).toBeGreaterThan(100);
    expect(seen.filter((set) => !set.includes(opD.toLowerCase()))).toEqual([]);
    expect(listed().sort()).toEqual([opC, opD].map((a) => a.toLowerCase()).sort());
    expect(router.status().providerSet.lastError).toBeNull();
  });
});
