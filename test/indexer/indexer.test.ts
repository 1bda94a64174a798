import { createClient } from "@ponder/client";
import { networkInterfaces, tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { encodeFunctionData, getAddress, parseEther, type Address } from "viem";
import * as schema from "../../indexer/ponder.schema.ts";
import { freePort } from "../../scripts/freePort.ts";
import { startPostgres, type Postgres } from "../../scripts/postgres.ts";
import { advance, eventually, mined, passProposal, passSlashingProposal, propose, slashingCall } from "../helpers/chainActions.ts";
import { startDeployedChain, type DeployedChain } from "../helpers/startDeployedChain.ts";
import { startIndexer, type TestIndexer } from "../helpers/startIndexer.ts";

// The indexer as gateways see it: a real Hardhat node with the Ignition deployment, real Ponder,
// a scripted story of providers, stake, cases and votes, checked through GraphQL and through a
// @ponder/client live query. Once on PGlite, once on PostgreSQL; the indexer is stopped mid-story
// and started again on the same database.

const DIN = (amount: string) => parseEther(amount);

type ProviderRow = { address: string; name: string; activeStake: string; unbondingStake: string; status: string; slashedTotal: string; openCases: number };
type LiveProvider = typeof schema.provider.$inferSelect;

for (const database of ["pglite", "postgres"] as const) {
  describe(`indexer on ${database}`, () => {
    let system: DeployedChain;
    let postgres: Postgres | undefined;
    let indexer: TestIndexer;
    let dataDir: string;
    let operators: Address[];
    let watcher: Address, voter: Address, deployer: Address;
    let newcomer: Address; // jailed by governance before it ever registers
    let upheldCase: { caseId: bigint; proposalId: bigint }; // the case governance upholds, and by which proposal
    const liveSnapshots: LiveProvider[][] = [];
    let unsubscribe: (() => void) | undefined;

    const warnings: string[] = []; // Ponder's warnings and errors, as startIndexer passes them on
    const start = async (port?: number, host?: string) => {
      indexer = await startIndexer({
        host,
        rpcUrl: system.chain.rpcUrl,
        deployment: system.deployment,
        databaseUrl: postgres?.url,
        dataDir,
        schema: "opendin_test",
        port,
        onLine: (line) => warnings.push(line),
      });
      const client = createClient(`${indexer.url}/sql`, { schema });
      unsubscribe = client.live(
        (db) => db.select().from(schema.provider).orderBy(schema.provider.address),
        (rows) => liveSnapshots.push(rows),
      ).unsubscribe;
    };
    const stop = async () => {
      unsubscribe?.();
      await indexer.stop();
    };
    const providers = async () =>
      (await indexer.graphql<{ providers: { items: ProviderRow[] } }>(
        `{ providers(orderBy: "address") { items { address name activeStake unbondingStake status slashedTotal openCases } } }`,
      )).providers.items;
    const providerRow = async (address: Address) =>
      (await providers()).find((p) => p.address.toLowerCase() === address.toLowerCase());
    /** Waits until GraphQL shows `address` matching `expected`. */
    const expectProvider = async (address: Address, expected: Partial<ProviderRow>) =>
      await eventually(`provider ${address} to show ${JSON.stringify(expected)}`, async () => {
        const row = await providerRow(address);
        return row && Object.entries(expected).every(([k, v]) => row[k as keyof ProviderRow] === v) ? row : undefined;
      });
    /** Waits until the live subscriber has seen `address` matching `predicate`. */
    const liveSaw = async (what: string, address: Address, predicate: (p: LiveProvider) => boolean) =>
      await eventually(`the live query to show ${what}`, async () =>
        liveSnapshots.some((rows) => rows.some((p) => p.address.toLowerCase() === address.toLowerCase() && predicate(p))) ? true : undefined,
      );

    beforeAll(async () => {
      system = await startDeployedChain();
      if (database === "postgres") postgres = await startPostgres();
      dataDir = await mkdtemp(join(tmpdir(), `opendin-indexer-${database}-`));
      const wallets = await system.viem.getWalletClients();
      const addresses = wallets.map((w) => getAddress(w.account.address));
      deployer = addresses[0];
      operators = addresses.slice(1, 4);
      watcher = addresses[4];
      voter = addresses[5];
      newcomer = addresses[6];
      const { token, registry, manager } = system.contracts;
      for (const op of [...operators, newcomer]) {
        await mined(system, token.write.transfer([op, DIN("10000")], { account: deployer }));
        await mined(system, token.write.approve([registry.address, DIN("10000")], { account: op }));
      }
      await mined(system, token.write.transfer([watcher, DIN("1000")], { account: deployer }));
      await mined(system, token.write.approve([manager.address, DIN("1000")], { account: watcher }));
      await mined(system, token.write.transfer([voter, DIN("10000000")], { account: deployer }));
      await mined(system, token.write.delegate([voter], { account: voter }));
      await start();
    });

    afterAll(async () => {
      unsubscribe?.();
      await indexer?.dispose();
      await system?.stop();
      await postgres?.stop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it("projects registration, stake and endpoints, and the live subscriber sees them", async () => {
      const { registry } = system.contracts;
      const [a, b, c] = operators;
      await mined(system, registry.write.registerAndStake(["alpha", "ipfs://alpha", DIN("1000")], { account: a }));
      await mined(system, registry.write.registerAndStake(["beta", "ipfs://beta", DIN("2000")], { account: b }));
      await mined(system, registry.write.registerAndStake(["gamma", "", DIN("500")], { account: c }));
      await mined(system, registry.write.setEndpoint([1n, "https://alpha.example/eth"], { account: a }));
      await mined(system, registry.write.setEndpoint([1n, "https://alpha.example/eth-v2"], { account: a }));
      await mined(system, registry.write.setEndpoint([1n, "https://beta.example"], { account: b }));
      await mined(system, registry.write.setEndpoint([10n, "wss://beta.example/op"], { account: b }));
      await mined(system, registry.write.removeEndpoint([10n], { account: b }));
      await mined(system, registry.write.stake([DIN("250")], { account: c }));

      await expectProvider(a, { name: "alpha", activeStake: DIN("1000").toString(), status: "active" });
      await expectProvider(c, { activeStake: DIN("750").toString(), status: "active" });
      const { endpoints } = await indexer.graphql<{ endpoints: { items: { provider: string; chainId: string; url: string }[] } }>(
        `{ endpoints(orderBy: "provider") { items { provider chainId url } } }`,
      );
      expect(endpoints.items.map((e) => [e.provider.toLowerCase(), e.chainId, e.url]).sort()).toEqual(
        [
          [a.toLowerCase(), "1", "https://alpha.example/eth-v2"],
          [b.toLowerCase(), "1", "https://beta.example"],
        ].sort(),
      );
      await liveSaw("gamma with 750 DIN", c, (p) => p.activeStake === DIN("750"));
      await liveSaw("gamma with 500 DIN before its top-up", c, (p) => p.activeStake === DIN("500"));
    });

    it("resumes after a restart without losing or duplicating history", async () => {
      const { registry } = system.contracts;
      const c = operators[2];
      await stop();
      // While the indexer is down: an unbond, and time passes.
      await mined(system, registry.write.requestUnbond([DIN("200")], { account: c }));
      await advance(system, Number(await registry.read.unbondingPeriod()) + 1);
      // Its port and the next are taken (as by other processes between choosing it and Ponder
      // listening): Ponder moves past both, and the indexer's URL follows it there.
      const squatters = await twoPortsInARow();
      warnings.length = 0;
      try {
        await start(squatters[0].port, "0.0.0.0"); // and for routers on other machines
      } finally {
        for (const squatter of squatters) squatter.server.close();
      }
      expect(indexer.port).toBeGreaterThan(squatters[1].port);
      const external = Object.values(networkInterfaces()).flat().find((a) => a?.family === "IPv4" && !a.internal)?.address;
      if (external !== undefined) expect((await fetch(`http://${external}:${indexer.port}/health`)).status).toBe(200);
      // Stopped cleanly, it left its schema unlocked: the restart did not wait for the lock to expire.
      expect(warnings.filter((line) => line.includes("Schema is locked"))).toEqual([]);
      expect(indexer.url).toBe(`http://127.0.0.1:${indexer.port}`);
      await mined(system, registry.write.withdraw({ account: c }));

      await expectProvider(c, { activeStake: DIN("550").toString(), unbondingStake: "0" });
      const { stakeEvents } = await indexer.graphql<{ stakeEvents: { items: { provider: string; kind: string; amount: string }[] } }>(
        `{ stakeEvents(orderBy: "blockNumber", limit: 100) { items { provider kind amount } } }`,
      );
      const ofC = stakeEvents.items.filter((e) => e.provider.toLowerCase() === c.toLowerCase()).map((e) => `${e.kind} ${e.amount}`);
      expect(ofC).toEqual([`stake ${DIN("500")}`, `stake ${DIN("250")}`, `unbond ${DIN("200")}`, `withdraw ${DIN("200")}`]);
      expect(stakeEvents.items).toHaveLength(6); // three registrations, a top-up, the unbond and the withdrawal
      await liveSaw("gamma's withdrawal", c, (p) => p.activeStake === DIN("550") && p.unbondingStake === 0n);
    });

    it("follows cases and votes: one upheld, one rejected, one expired", async () => {
      const { manager } = system.contracts;
      const [a, b, c] = operators;
      const open = async (provider: Address, amount: string) => {
        await mined(system, manager.write.openCase([provider, DIN(amount), "0xc0ffee"], { account: watcher }));
        return await manager.read.caseCount();
      };
      const upheld = await open(a, "300");
      await expectProvider(a, { openCases: 1 });
      const upholdProposal = await passSlashingProposal(system, "upholdCase", upheld, voter);
      upheldCase = { caseId: upheld, proposalId: upholdProposal };
      const rejected = await open(b, "100");
      // The rejection passes while a rival proposal to uphold the same case, made during its vote,
      // gets no votes: the case keeps the proposal that resolved it, not the latest one.
      const rival = () => propose(system, [slashingCall(system, "upholdCase", rejected)], `upholdCase ${rejected}, a rival`, watcher);
      const rejectProposal = await passSlashingProposal(system, "rejectCase", rejected, voter, rival);
      const expired = await open(c, "50");
      await advance(system, Number(await manager.read.caseTtl()) + 1);
      await mined(system, manager.write.expireCase([expired], { account: deployer }));

      await expectProvider(a, { activeStake: DIN("700").toString(), slashedTotal: DIN("300").toString(), openCases: 0 });
      const { slashingCases } = await eventually("three closed cases", async () => {
        const data = await indexer.graphql<{ slashingCases: { items: { id: string; status: string; slashed: string | null; watcherReward: string | null; proposalId: string | null; evidence: string; watcher: string }[] } }>(
          `{ slashingCases(orderBy: "id") { items { id status slashed watcherReward proposalId evidence watcher } } }`,
        );
        return data.slashingCases.items.every((x) => x.status !== "open") && data.slashingCases.items.length === 3 ? data : undefined;
      });
      expect(slashingCases.items.map((x) => [x.id, x.status])).toEqual([
        [upheld.toString(), "upheld"],
        [rejected.toString(), "rejected"],
        [expired.toString(), "expired"],
      ]);
      expect(slashingCases.items[0]).toMatchObject({ slashed: DIN("300").toString(), watcherReward: DIN("30").toString(), proposalId: upholdProposal.toString(), evidence: "0xc0ffee" });
      expect(slashingCases.items[0].watcher.toLowerCase()).toBe(watcher.toLowerCase());
      expect(slashingCases.items[1].proposalId).toBe(rejectProposal.toString());

      const { proposal } = await indexer.graphql<{ proposal: { state: string; action: string; caseId: string; forVotes: string; votes: { items: { voter: string; support: number; weight: string }[] } } }>(
        `{ proposal(id: "${upholdProposal}") { state action caseId forVotes votes { items { voter support weight } } } }`,
      );
      expect(proposal).toMatchObject({ state: "executed", action: "uphold_case", caseId: upheld.toString(), forVotes: DIN("10000000").toString() });
      expect(proposal.votes.items).toEqual([{ voter: expect.stringMatching(new RegExp(voter.slice(2), "i")), support: 1, weight: DIN("10000000").toString() }]);
      await liveSaw("alpha slashed", a, (p) => p.slashedTotal === DIN("300"));
    });

    it("keeps a closed case's proposal when someone proposes for it again", async () => {
      // The governor takes any proposal (the threshold is 0); this one can never pass, the case is closed.
      const late = await propose(system, [slashingCall(system, "upholdCase", upheldCase.caseId)], `upholdCase ${upheldCase.caseId}, again`, watcher);
      const { slashingCase } = await eventually("the late proposal", async () => {
        const data = await indexer.graphql<{ proposal: { caseId: string } | null; slashingCase: { status: string; proposalId: string } }>(
          `{ proposal(id: "${late}") { caseId } slashingCase(id: "${upheldCase.caseId}") { status proposalId } }`,
        );
        return data.proposal ? data : undefined;
      });
      expect(slashingCase).toEqual({ status: "upheld", proposalId: upheldCase.proposalId.toString() });
    });

    it("answers the GraphQL examples of indexer/README.md as written", async () => {
      const readme = await readFile(new URL("../../indexer/README.md", import.meta.url), "utf8");
      const examples = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]);
      expect(examples.length).toBeGreaterThan(0);
      for (const example of examples) await indexer.graphql(example); // throws on any GraphQL error
      const active = await indexer.graphql<{ providers: { items: { address: string }[] } }>(examples[0]);
      expect(active.providers.items.map((p) => p.address).sort()).toEqual(
        (await providers()).filter((p) => p.status === "active").map((p) => p.address).sort(),
      );
    });

    // The path past one machine: read replicas on the indexer's PostgreSQL (PGlite has no replicas).
    if (database === "postgres") it("serves the same rows from a `ponder serve` replica on the same database", async () => {
      const replica = await startIndexer({
        rpcUrl: system.chain.rpcUrl,
        deployment: system.deployment,
        databaseUrl: postgres!.url,
        schema: "opendin_test",
        mode: "serve",
      });
      try {
        const query = `{ providers(orderBy: "address") { items { address activeStake status slashedTotal } } slashingCases(orderBy: "id") { items { id status } } }`;
        expect(await replica.graphql(query)).toEqual(await indexer.graphql(query));
        expect((await replica.graphql<{ providers: { items: unknown[] } }>(query)).providers.items).toHaveLength(3);
      } finally {
        await replica.dispose();
      }
      // Told to keep its port (as `din indexer` is), a replica on a taken one stops rather than move to the next.
      const serveOn = (port: number) => startIndexer({ rpcUrl: system.chain.rpcUrl, deployment: system.deployment, databaseUrl: postgres!.url, schema: "opendin_test", mode: "serve", port, exactPort: true });
      await expect(serveOn(indexer.port)).rejects.toThrow(`port ${indexer.port} on 127.0.0.1 is taken (by another indexer?): stop what holds it or give another --port`);
    });

    // Ponder retries a database it cannot use for about a minute and then says only "check your
    // database connection settings"; the indexer names the server and its answer before starting it.
    if (database === "postgres") it("says at once which PostgreSQL it cannot use and why: no such database, connection refused", async () => {
      const url = new URL(postgres!.url);
      const on = (databaseUrl: string) => startIndexer({ rpcUrl: system.chain.rpcUrl, deployment: system.deployment, databaseUrl, dataDir, schema: "opendin_test" });
      url.pathname = "/nosuchdb";
      await expect(on(url.href)).rejects.toThrow(`cannot use PostgreSQL at postgres@127.0.0.1:${postgres!.port}/nosuchdb: database "nosuchdb" does not exist`);
      const closed = await freePort();
      url.port = String(closed);
      url.password = "secret";
      const refused = on(url.href);
      await expect(refused).rejects.toThrow(`cannot use PostgreSQL at postgres@127.0.0.1:${closed}/nosuchdb: connect ECONNREFUSED 127.0.0.1:${closed}`);
      await expect(refused).rejects.not.toThrow("secret");
    });

    // Ponder retries an RPC it cannot reach for ever, and indexes a chain without the contracts as
    // an empty registry; the indexer says so before starting it.
    if (database === "pglite") it("says at once when the chain is unreachable, another chain, or without the deployment's contracts", async () => {
      const on = (rpcUrl: string, deployment = system.deployment) => startIndexer({ rpcUrl, deployment, dataDir, schema: "opendin_other" });
      const closed = await freePort();
      await expect(on(`http://127.0.0.1:${closed}`)).rejects.toThrow(`cannot reach the chain at http://127.0.0.1:${closed}: is the node running? (--rpc sets another URL)`);
      await expect(on(system.chain.rpcUrl, { ...system.deployment, chainId: 1 })).rejects.toThrow(`the node at ${system.chain.rpcUrl} is on chain 31337, but ${dataDir}/deployment.json is on chain 1`);
      const nowhere = { ...system.deployment, contracts: { ...system.deployment.contracts, ProviderRegistry: "0x00000000000000000000000000000000000000de" as Address } };
      await expect(on(system.chain.rpcUrl, nowhere)).rejects.toThrow(`names contracts the chain at ${system.chain.rpcUrl} does not have (ProviderRegistry 0x00000000000000000000000000000000000000de: no code there)`);
    });

    it("derives status from jail and the minimum stake", async () => {
      const { registry, timelock } = system.contracts;
      const b = operators[1];
      // Governance jails through the timelock; here the node impersonates it to keep the test short.
      const testClient = await system.viem.getTestClient();
      await testClient.impersonateAccount({ address: timelock.address });
      await testClient.setBalance({ address: timelock.address, value: DIN("10") });
      await mined(system, registry.write.jail([b], { account: timelock.address }));
      await expectProvider(b, { status: "jailed" });
      await mined(system, registry.write.unjail([b], { account: timelock.address }));
      await mined(system, registry.write.setMinStake([DIN("1000")], { account: timelock.address }));
      await expectProvider(operators[2], { status: "below_minimum" });
      await expectProvider(b, { status: "active" });
      await mined(system, registry.write.deregister({ account: operators[2] }));
      await expectProvider(operators[2], { status: "deregistered", activeStake: "0" });
      await testClient.stopImpersonatingAccount({ address: timelock.address });
    });

    it("keeps a jail made before registration: the provider registers jailed and is never active until unjailed", async () => {
      const { registry } = system.contracts;
      const byVote = (functionName: "jail" | "unjail") =>
        passProposal(system, [{ target: registry.address, data: encodeFunctionData({ abi: registry.abi, functionName, args: [newcomer] }) }], `${functionName} ${newcomer}`, voter);
      const jailing = await byVote("jail");
      await mined(system, registry.write.registerAndStake(["delta", "", DIN("1000")], { account: newcomer }));
      await mined(system, registry.write.setEndpoint([1n, "https://delta.example"], { account: newcomer }));
      expect(await registry.read.isEligible([newcomer])).toBe(false);

      await expectProvider(newcomer, { name: "delta", activeStake: DIN("1000").toString(), status: "jailed" });
      await liveSaw("delta jailed", newcomer, (p) => p.jailed && p.status === "jailed");
      const seenActive = liveSnapshots.some((rows) => rows.some((p) => p.address.toLowerCase() === newcomer.toLowerCase() && p.status === "active"));
      expect(seenActive).toBe(false); // a router following the live query never routed to it

      const unjailing = await byVote("unjail");
      await expectProvider(newcomer, { status: "active" });
      await liveSaw("delta active once unjailed", newcomer, (p) => !p.jailed && p.status === "active");
      // What each proposal did, read from its calls (a walkthrough: the dashboard showed an uphold that also jailed as "uphold (slash)").
      const both = await indexer.graphql<Record<"jailing" | "unjailing", { action: string; jails: string | null; unjails: string | null }>>(
        `{ jailing: proposal(id: "${jailing}") { action jails unjails } unjailing: proposal(id: "${unjailing}") { action jails unjails } }`,
      );
      expect(both).toEqual({
        jailing: { action: "other", jails: newcomer.toLowerCase(), unjails: null },
        unjailing: { action: "other", jails: null, unjails: newcomer.toLowerCase() },
      });
    });

    // Last: it stops the indexer.
    it("says what to do when its schema holds the tables of another deployment (or another build of the indexer)", async () => {
      await stop();
      const moved = { ...system.deployment, startBlock: system.deployment.startBlock + 1 }; // another build for Ponder
      const drop = database === "postgres" ? 'DROP SCHEMA "opendin_test" CASCADE' : "delete the --data-dir folder";
      await expect(startIndexer({ rpcUrl: system.chain.rpcUrl, deployment: moved, databaseUrl: postgres?.url, dataDir, schema: "opendin_test" })).rejects.toThrow(
        `schema "opendin_test" holds the tables of another build of the indexer (its code, its Ponder version or the deployment it indexes changed since), which Ponder does not migrate: index afresh into a new --schema${database === "postgres" ? "" : " (or a new --data-dir)"}, point the routers' --indexer at it once its /ready answers, then ${drop}`,
      );
    });
  });
}

/** Two servers on 127.0.0.1 listening on ports n and n + 1. */
async function twoPortsInARow(): Promise<{ server: Server; port: number }[]> {
  const listen = (port: number) =>
    new Promise<{ server: Server; port: number } | null>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(null));
      server.listen(port, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port }));
    });
  for (;;) {
    const first = (await listen(0))!;
    const second = first.port < 65_535 ? await listen(first.port + 1) : null;
    if (second) return [first, second];
    first.server.close();
  }
}
