import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getAddress, parseEther, type Address } from "viem";
import { generatePrivateKey, mnemonicToAccount, privateKeyToAccount } from "viem/accounts";
import { toHex } from "viem";
import { startProviderNode } from "../../scripts/providerNode.ts";
import { runDin } from "../helpers/runDin.ts";
import { startRouter } from "../helpers/startRouter.ts";
import { waitFor } from "../router/support.ts";
import { startDeployedChain, type DeployedChain } from "../helpers/startDeployedChain.ts";

// The din CLI against a real node with the Ignition deployment, run as a child process the way a
// user runs it, finding the chain through .devnet/devnet.json in its working directory.

const mnemonic = "test test test test test test test test test test test junk";
const keyOf = (index: number) => toHex(mnemonicToAccount(mnemonic, { addressIndex: index }).getHdKey().privateKey!);

let system: DeployedChain;
let cwd: string;
const operatorKey = keyOf(1);
const watcherKey = keyOf(2);
const voterKey = keyOf(3);
let operator: Address;

async function din(args: string[], key?: string) {
  return await runDin(args, { cwd, env: key ? { DIN_PRIVATE_KEY: key } : {} });
}

async function advance(seconds: number): Promise<void> {
  const testClient = await system.viem.getTestClient();
  await testClient.increaseTime({ seconds });
  await testClient.mine({ blocks: 1 });
}

/** Jails `provider` as a vote would: through the timelock, the only account that may. */
async function jailAsAVoteWould(provider: Address): Promise<void> {
  const testClient = await system.viem.getTestClient();
  const timelock = system.contracts.timelock.address;
  await testClient.impersonateAccount({ address: timelock });
  await testClient.setBalance({ address: timelock, value: parseEther("1") });
  await system.contracts.registry.write.jail([provider], { account: timelock });
  await testClient.stopImpersonatingAccount({ address: timelock });
  expect((await system.contracts.registry.read.getProvider([provider])).jailed).toBe(true);
}

beforeAll(async () => {
  system = await startDeployedChain();
  cwd = await mkdtemp(join(tmpdir(), "din-cli-"));
  await mkdir(join(cwd, ".devnet"));
  const { chain, deployment } = system;
  await writeFile(
    join(cwd, ".devnet/devnet.json"),
    JSON.stringify({ chainId: deployment.chainId, rpcUrl: chain.rpcUrl, startBlock: deployment.startBlock, contracts: deployment.contracts }),
  );
  const [deployer, op, watcher, voter] = (await system.viem.getWalletClients()).map((w) => w.account.address);
  operator = getAddress(op);
  const publicClient = await system.viem.getPublicClient();
  for (const [to, amount] of [[op, "5000"], [watcher, "100"], [voter, "10000000"]] as const) {
    const hash = await system.contracts.token.write.transfer([to, parseEther(amount)], { account: deployer });
    await publicClient.waitForTransactionReceipt({ hash });
  }
});

afterAll(async () => {
  await system?.stop();
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

describe("din provider", () => {
  it("explains a stake below the minimum and changes nothing", async () => {
    const result = await din(["provider", "register", "--name", "alpha", "--stake", "50"], operatorKey);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe("din: stake 50 DIN is below the minimum 100 DIN");
    expect((await system.contracts.registry.read.getProvider([operator])).registered).toBe(false);
  });

  it("refuses a bad endpoint before sending anything", async () => {
    const balance = await system.contracts.token.read.balanceOf([operator]);
    const bad = await din(["provider", "register", "--name", "alpha", "--stake", "500", "--endpoint", "31337=ftp://x.example"], operatorKey);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe("din: --endpoint 31337=ftp://x.example: the URL must start with https://, http://, wss:// or ws://");
    const spaced = await din(["provider", "register", "--name", "alpha", "--stake", "500", "--endpoint", "31337=http://a b.example"], operatorKey);
    expect(spaced.code).toBe(2);
    expect(spaced.stderr.trim()).toBe("din: --endpoint 31337=http://a b.example: the URL must not contain spaces or control characters (there is one at byte 8)");
    // A node that answers as another chain (a mistyped chain id): asked before anything is sent.
    const mistyped = await din(["provider", "register", "--name", "alpha", "--stake", "500", "--endpoint", `1=${system.chain.rpcUrl}`], operatorKey);
    expect(mistyped.code).toBe(2);
    expect(mistyped.stderr.trim()).toBe(`din: --endpoint 1=${system.chain.rpcUrl}: the node there answers as chain 31337, not 1: routers would mark it "wrong chain" and send it nothing`);
    const mistypedSet = await din(["provider", "endpoint", "set", "5", system.chain.rpcUrl], operatorKey);
    expect(mistypedSet.stderr.trim()).toBe(`din: the node there answers as chain 31337, not 5: routers would mark it "wrong chain" and send it nothing`);
    const twice = await din(["provider", "register", "--name", "alpha", "--stake", "500", "--endpoint", "1=https://a.example", "--endpoint", "1=https://b.example"], operatorKey);
    expect(twice.stderr.trim()).toBe("din: --endpoint: give one URL per chain");
    expect((await system.contracts.registry.read.getProvider([operator])).registered).toBe(false);
    expect(await system.contracts.token.read.allowance([operator, system.contracts.registry.address])).toBe(0n);
    expect(await system.contracts.token.read.balanceOf([operator])).toBe(balance);
  });

  it("refuses a stake, a registration and a case the contracts would refuse before approving any token", async () => {
    const publicClient = await system.viem.getPublicClient();
    const watcher = privateKeyToAccount(watcherKey).address;
    const nonces = async () => [await publicClient.getTransactionCount({ address: operator }), await publicClient.getTransactionCount({ address: watcher })];
    const before = await nonces();
    const unregistered = await din(["provider", "stake", "500"], operatorKey);
    expect(unregistered.stderr.trim()).toBe(`din: ${operator} is not a registered provider: register first (din provider register)`);
    const tooMuch = await din(["provider", "stake", "6000"], operatorKey);
    expect(tooMuch.stderr.trim()).toBe(`din: ${operator} holds 5,000 DIN but 6,000 DIN is needed`);
    const longName = await din(["provider", "register", "--name", "a".repeat(65), "--stake", "500"], operatorKey);
    expect(longName.stderr.trim()).toBe("din: the name must be 1 to 64 bytes long (it is 65)");
    const evidence = join(cwd, "nobody.json");
    await writeFile(evidence, JSON.stringify({ method: "eth_blockNumber", returned: "0x0" }));
    const noStake = await din(["case", "open", "--provider", operator, "--amount", "10", "--evidence", evidence], watcherKey);
    expect(noStake.stderr.trim()).toBe(`din: ${operator} has no stake to slash, active or unbonding: is it a provider? (din provider status ${operator})`);
    expect([unregistered.code, tooMuch.code, longName.code, noStake.code]).toEqual([1, 1, 1, 1]);
    // Evidence about another provider than the one reported (a watcher walkthrough opened such a case without a word).
    const other = join(cwd, "other.json");
    await writeFile(other, JSON.stringify({ provider: watcher.toLowerCase(), request: { method: "eth_chainId" }, answer: "0x1" }));
    const mismatch = await din(["case", "open", "--provider", operator, "--amount", "10", "--evidence", other], watcherKey);
    expect([mismatch.code, mismatch.stderr.trim()]).toEqual([2, `din: --evidence names provider ${watcher.toLowerCase()} in its "provider" field, not --provider ${operator}: which one is reported?`]);
    // Not even the approval went out.
    expect(await nonces()).toEqual(before);
    expect(await system.contracts.token.read.allowance([operator, system.contracts.registry.address])).toBe(0n);
    expect(await system.contracts.token.read.allowance([watcher, system.contracts.manager.address])).toBe(0n);
  });

  it("registers with stake and an endpoint, approving the token itself", async () => {
    const result = await din(
      ["provider", "register", "--name", "alpha", "--stake", "1000", "--endpoint", "31337=https://alpha.example/rpc"],
      operatorKey,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^registered alpha \(0x[0-9a-fA-F]{40}\) with 1,000 DIN staked, serving chain 31337 at https:\/\/alpha.example\/rpc/);
    expect(result.stdout).toMatch(/transactions: (0x[0-9a-f]{64} ?){3}/);
    // Each transaction was named as it went out, while its block was awaited (seconds each on a real chain).
    const sent = [...result.stderr.matchAll(/^sent (\S+) \(tx (0x[0-9a-f]{64})\); waiting for it to be mined…$/gm)];
    expect(sent.map((m) => m[1])).toEqual(["DinToken.approve", "ProviderRegistry.registerAndStake", "ProviderRegistry.setEndpoint"]);
    expect(result.stdout).toContain(`transactions: ${sent.map((m) => m[2]).join(" ")}`);
    expect(result.stderr.split("\n").filter(Boolean)).toHaveLength(3);
    const provider = await system.contracts.registry.read.getProvider([operator]);
    expect(provider.activeStake).toBe(parseEther("1000"));
    expect(provider.endpointCount).toBe(1);
    const again = await din(["provider", "register", "--name", "alpha", "--stake", "100"], operatorKey);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`din: ${operator} is already registered: add stake with din provider stake, endpoints with din provider endpoint set`);
    expect((await system.contracts.registry.read.getProvider([operator])).activeStake).toBe(parseEther("1000"));
  });

  it("tops up, unbonds, refuses an early withdrawal and withdraws after the period", async () => {
    expect((await din(["provider", "stake", "500"], operatorKey)).stdout).toMatch(/active stake is now 1,500 DIN/);
    const unbond = await din(["provider", "unbond", "200", "--json"], operatorKey);
    expect(unbond.code).toBe(0);
    const unbonded = JSON.parse(unbond.stdout) as { amount: string; releaseAt: string };
    expect(unbonded.amount).toBe(parseEther("200").toString());

    const early = await din(["provider", "withdraw"], operatorKey);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/^din: nothing is released yet: the next unbonding entry is released at \d{4}-\d\d-\d\dT\S+ \(chain time now \d{4}-\d\d-\d\dT\S+\)\n$/);

    // The standing says when each entry is released, and once it is, that it waits to be withdrawn.
    expect((await din(["provider", "status", operator])).stdout).toMatch(/\n {4}200 DIN released at \S+ \(in \d+ (min \d+ )?s\)\n/);
    await advance(Number(await system.contracts.registry.read.unbondingPeriod()) + 1);
    expect((await din(["provider", "status", operator])).stdout).toMatch(/\n {4}200 DIN released \(\d+ s ago\): din provider withdraw\n/);
    const withdrawn = await din(["provider", "withdraw"], operatorKey);
    expect(withdrawn.stdout).toMatch(/^withdrew 200 DIN; 0 DIN still unbonding/);
  });

  it("shows a provider's standing with its endpoints", async () => {
    const result = await din(["provider", "status", operator]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`provider ${operator}: eligible`);
    expect(result.stdout).toMatch(/active stake\s+1,300 DIN/);
    expect(result.stdout).toContain("chain 31337 https://alpha.example/rpc");
    expect(result.stdout).toMatch(/slashed\s+never/);
    const json = JSON.parse((await din(["provider", "status", operator, "--json"])).stdout) as { eligible: boolean; endpoints: unknown[] };
    expect(json.eligible).toBe(true);
    expect(json.endpoints).toHaveLength(1);
  });

  it("shows how a router given with --router sees the provider", async () => {
    // A gateway's router (not the devnet's), routing to the operator through a node in front of the chain.
    const node = await startProviderNode({ upstreamUrl: system.chain.rpcUrl });
    const record = { address: operator, chainId: 31337, url: node.url, stake: 1_300n * 10n ** 18n, slashedTotal: 0n, name: "alpha" };
    const router = await startRouter({ records: [record] });
    try {
      await waitFor(() => router.status().chains[0]?.providers[0]?.state === "healthy", "the operator healthy in the router");
      const seen = await din(["provider", "status", operator, "--router", `${router.url}/`]);
      expect(seen.code).toBe(0);
      expect(seen.stdout).toMatch(/\n {2}router {11}chain 31337: healthy, score \d\.\d{3}, \d+\.\d% of traffic$/m);
      const json = JSON.parse((await din(["provider", "status", operator, "--router", router.url, "--json"])).stdout) as { router: { state: string }[] };
      expect(json.router.map((p) => p.state)).toEqual(["healthy"]);
      // The URL dapps are given names the router too; another server's (a provider node's) is said to be no router.
      expect((await din(["provider", "status", operator, "--router", router.rpcUrl(31337)])).stdout).toMatch(/\n {2}router {11}chain 31337: healthy/);
      const other = await din(["provider", "status", operator, "--router", node.url]);
      expect(other.code).toBe(0);
      expect(other.stdout).toMatch(/\n {2}router {11}\S+\/status is not a router's status page \(HTTP \d+\): give the router's URL, such as http:\/\/127\.0\.0\.1:8080$/m);
      // --json says why there is no reading, as the text does (a walkthrough got a bare null).
      const otherJson = JSON.parse((await din(["provider", "status", operator, "--router", node.url, "--json"])).stdout) as { router: unknown; routerProblem: string };
      expect(otherJson.router).toBe(null);
      expect(otherJson.routerProblem).toMatch(/\/status is not a router's status page \(HTTP \d+\)/);
    } finally {
      await router.stop();
      await node.stop();
    }
    const bad = await din(["provider", "status", operator, "--router", "gateway.example"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('din: --router must be a router\'s http:// or https:// URL, such as https://gateway.example, not "gateway.example"');
  });

  it("sets and removes endpoints, and explains a bad URL", async () => {
    const bad = await din(["provider", "endpoint", "set", "1", "ftp://x.example"], operatorKey);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe("din: the URL must start with https://, http://, wss:// or ws://");
    const injected = await din(["provider", "endpoint", "set", "1", "http://x\r\nHost: y"], operatorKey);
    expect(injected.code).toBe(2);
    expect(injected.stderr.trim()).toBe("din: the URL must not contain spaces or control characters (there is one at byte 8)");
    // What the registry takes but no router would use: said, and not sent.
    const secret = await din(["provider", "endpoint", "set", "1", "https://user:key@x.example"], operatorKey);
    expect(secret.stderr.trim()).toBe("din: the URL must not hold a user name or password: the registry is public (a key may go in the path)");
    const zoned = await din(["provider", "register", "--name", "beta", "--stake", "100", "--endpoint", "137=http://[fe80::1%25eth0]:8545"], operatorKey);
    expect(zoned.stderr.trim()).toBe("din: --endpoint 137=http://[fe80::1%25eth0]:8545: routers cannot read it as a URL");
    const huge = await din(["provider", "endpoint", "set", "99999999999999999999", "https://x.example"], operatorKey);
    expect(huge.stderr.trim()).toBe("din: chain id 99999999999999999999 is not one routers read (1 to 2^53 − 1)");
    expect([secret.code, zoned.code, huge.code]).toEqual([2, 2, 2]);
    // The registry takes a WebSocket URL; the operator hears that routers send it nothing.
    const socket = await din(["provider", "endpoint", "set", "1", "wss://one.example"], operatorKey);
    expect(socket.code).toBe(0);
    expect(socket.stdout).toContain("note: OpenDIN routers send JSON-RPC over http(s) only, so wss://one.example gets no traffic from them: register the node's https:// URL");
    // A loopback or private address is taken too (a devnet's are), and the operator hears that other routers refuse it.
    for (const [url, kind] of [["http://127.0.0.1:8545", "loopback"], ["http://localhost.:8545", "loopback"], ["https://10.1.2.3/rpc", "private"], ["http://[::1]:8545", "loopback"]]) {
      const local = await din(["provider", "endpoint", "set", "1", url], operatorKey);
      expect(local.stdout).toContain(`note: ${url} is an address routers refuse unless they run in devnet mode (${kind}): register the address the internet reaches the node at`);
    }
    // A node that does not answer from here is taken (it may not be up yet), and the operator hears so.
    const unresolved = await din(["provider", "endpoint", "set", "1", "https://one.example"], operatorKey);
    expect(unresolved.stdout).toMatch(/note: https:\/\/one\.example did not answer eth_chainId from here \(its host name does not resolve\): routers send it traffic once it answers their probes$/m);
    expect(unresolved.stdout).not.toContain("routers refuse");
    const refused = await din(["provider", "endpoint", "set", "1", "http://127.0.0.1:9/rpc", "--json"], operatorKey);
    expect((JSON.parse(refused.stdout) as { notes: string[] }).notes).toEqual([
      "http://127.0.0.1:9/rpc is an address routers refuse unless they run in devnet mode (loopback): register the address the internet reaches the node at",
      "http://127.0.0.1:9/rpc did not answer eth_chainId from here (bad port): routers send it traffic once it answers their probes",
    ]);
    const answering = await din(["provider", "endpoint", "set", "31337", system.chain.rpcUrl, "--json"], operatorKey);
    expect((JSON.parse(answering.stdout) as { notes: string[] }).notes).toEqual([expect.stringContaining("(loopback)")]);
    expect((await din(["provider", "endpoint", "set", "31337", "https://alpha.example/rpc"], operatorKey)).code).toBe(0); // as before
    expect((await system.contracts.registry.read.endpointChainIds([operator])).map(Number).sort()).toEqual([1, 31337]);
    expect((await din(["provider", "endpoint", "remove", "1"], operatorKey)).stdout).toMatch(/endpoint for chain 1 removed/);
    const missing = await din(["provider", "endpoint", "remove", "1"], operatorKey);
    expect(missing.stderr).toContain("has no endpoint for chain 1");
  });
});

describe("din case and din gov", () => {
  it("opens a case, votes it through and executes the slash", async () => {
    const evidence = join(cwd, "evidence.json");
    await writeFile(evidence, JSON.stringify({ method: "eth_getBalance", returned: "0xdead" }));
    const opened = await din(["case", "open", "--provider", operator, "--amount", "100", "--evidence", evidence, "--json"], watcherKey);
    expect(opened.code).toBe(0);
    const caseId = (JSON.parse(opened.stdout) as { caseId: string }).caseId;
    expect((await din(["case", "list"])).stdout).toMatch(new RegExp(`case ${caseId}\\s+open\\s+provider ${operator}`));
    // What a voter reads before voting: the case, and its evidence as the watcher gave it.
    const shown = (await din(["case", "show", "--case", caseId])).stdout;
    expect(shown).toMatch(new RegExp(`^case ${caseId}: open, open until \\S+ \\(chain time now \\S+\\)\n  provider  ${operator}\n`));
    expect(shown).toContain("  asks      100 DIN; would slash 100 DIN if upheld\n");
    expect(shown).toContain(`  proposal  none yet (din gov propose-slash --case ${caseId})\n`);
    expect(shown.trim().split("\n").at(-1)).toBe(JSON.stringify({ method: "eth_getBalance", returned: "0xdead" }));

    expect((await din(["gov", "delegate"], voterKey)).stdout).toMatch(/delegated your votes to yourself; .* now has 10,000,000 DIN of votes/);
    expect((await din(["gov", "delegate"], voterKey)).stdout).toMatch(/your votes are delegated to yourself already; .* has 10,000,000 DIN of votes \(nothing sent\)/);
    await advance(1);
    // No block of the chain's own until the early vote: on a slow machine one would open the vote
    // (delay 1 s) while the CLI starts, and the vote would pass.
    const testClient = await system.viem.getTestClient();
    await testClient.setIntervalMining({ interval: 0 });
    const proposed = await din(["gov", "propose-slash", "--case", caseId, "--json"], voterKey);
    expect(proposed.code).toBe(0);
    const proposalId = (JSON.parse(proposed.stdout) as { proposalId: string }).proposalId;

    const tooEarly = await din(["gov", "vote", "--proposal", proposalId, "--support", "for"], voterKey);
    await testClient.setIntervalMining({ interval: 1_000 });
    expect(tooEarly.stderr).toMatch(/^din: voting on proposal \d+ opens after \S+ \((in \d+ s|now)\) and closes at \S+ \(in \d+ (min \d+ )?s\); vote then\n$/);
    await advance(2);
    expect((await din(["gov", "vote", "--proposal", proposalId, "--support", "for"], voterKey)).stdout).toMatch(
      /voted for on proposal \d+ \(uphold case \d+ \(slash its provider\)\); tally: for 10,000,000 DIN/,
    );
    await advance(Number(await system.contracts.governor.read.votingPeriod()) + 1);
    expect((await din(["gov", "status", "--proposal", proposalId])).stdout).toContain("state succeeded");
    expect((await din(["gov", "queue", "--proposal", proposalId], voterKey)).stdout).toMatch(/queued proposal \d+ \(uphold case \d+ \(slash its provider\)\) in the timelock/);
    await advance(Number(await system.contracts.timelock.read.getMinDelay()) + 1);
    expect((await din(["gov", "execute", "--proposal", proposalId], voterKey)).stdout).toMatch(/executed proposal \d+: uphold case \d+ \(slash its provider\)/);

    expect((await system.contracts.registry.read.getProvider([operator])).activeStake).toBe(parseEther("1200"));
    // The operator sees what was slashed, and for which case.
    expect((await din(["provider", "status", operator])).stdout).toMatch(new RegExp(`slashed\\s+100 DIN in all \\(case ${caseId}: 100 DIN\\)`));
    expect((await din(["case", "list"])).stdout).toMatch(new RegExp(`case ${caseId}\\s+upheld`));
    // The case whole once resolved: what it came to, and the proposal that did it (a walkthrough found neither).
    const resolved = (await din(["case", "show", "--case", caseId])).stdout;
    expect(resolved).toContain("\n  slashed   100 DIN (10 DIN of it to the watcher, with the bond)\n");
    expect(resolved).toContain(`\n  proposal  ${proposalId}: executed; uphold case ${caseId} (slash its provider)\n`);
    const json = JSON.parse((await din(["case", "show", "--case", caseId, "--json"])).stdout) as { status: string; slashed: string; proposals: { id: string; state: string }[] };
    expect(json).toMatchObject({ status: "upheld", slashed: parseEther("100").toString(), proposals: [{ id: proposalId, state: "executed" }] }); // status by name, as case list gives it
    expect((await din(["case", "claim"], watcherKey)).stdout).toMatch(/^claimed 20 DIN/);
  });

  it("unjails a jailed provider through a vote, and refuses to propose it for one not jailed", async () => {
    const notJailed = await din(["gov", "propose-unjail", "--provider", operator], voterKey);
    expect(notJailed.code).toBe(1);
    expect(notJailed.stderr).toBe(`din: ${operator} is not jailed: there is nothing to unjail\n`);

    await jailAsAVoteWould(operator);
    expect((await din(["provider", "status", operator])).stdout).toContain(
      `provider ${operator}: jailed: routers send it no traffic until governance unjails it (din gov propose-unjail --provider ${operator}, then a vote)\n`,
    );

    const blank = await din(["gov", "propose-unjail", "--provider", operator, "--description", " "], voterKey);
    expect([blank.code, blank.stderr.trim()]).toEqual([2, "din: --description is empty: say in words what the proposal does, or leave the flag out for the usual text"]);
    const proposed = await din(["gov", "propose-unjail", "--provider", operator, "--json"], voterKey);
    expect(proposed.stderr).toBe("");
    const proposalId = (JSON.parse(proposed.stdout) as { proposalId: string }).proposalId;
    await advance(Number(await system.contracts.governor.read.votingDelay()) + 1);
    expect((await din(["gov", "vote", "--proposal", proposalId, "--support", "for"], voterKey)).code).toBe(0);
    await advance(Number(await system.contracts.governor.read.votingPeriod()) + 1);
    expect((await din(["gov", "queue", "--proposal", proposalId], voterKey)).code).toBe(0);
    await advance(Number(await system.contracts.timelock.read.getMinDelay()) + 1);
    expect((await din(["gov", "execute", "--proposal", proposalId], voterKey)).stdout).toMatch(new RegExp(`^executed proposal \\d+: unjail provider ${operator} \\(tx 0x`));
    expect((await system.contracts.registry.read.getProvider([operator])).jailed).toBe(false);
  });

  it("refuses an unbond that would leave the provider below the minimum stake unless told, and warns when told", async () => {
    // An operator walkthrough: the warning came after the transaction.
    const refused = await din(["provider", "unbond", "1150"], operatorKey);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      "din: unbonding 1,150 DIN would leave 50 DIN of active stake, below the minimum 100 DIN: routers would send you no traffic. Unbond 1,100 DIN at most to stay eligible, all 1,200 DIN to leave (or din provider deregister), or give --below-minimum to unbond it anyway\n",
    );
    expect((await system.contracts.registry.read.getProvider([operator])).activeStake).toBe(parseEther("1200")); // nothing sent
    const unbond = await din(["provider", "unbond", "1,150", "--below-minimum"], operatorKey); // as the CLI writes amounts
    expect(unbond.code).toBe(0);
    expect(unbond.stdout).toContain("active stake 50 DIN is now below the minimum 100 DIN: routers send you no traffic until you top up (din provider stake)");
    const short = await din(["provider", "stake", "10"], operatorKey);
    expect(short.stdout).toContain("active stake is now 60 DIN");
    expect(short.stdout).toContain("active stake is still below the minimum 100 DIN: routers send you no traffic until it reaches it");
    // --json says the same standing (a walkthrough: the note was in the text only).
    const json = JSON.parse((await din(["provider", "stake", "1", "--json"], operatorKey)).stdout) as { activeStake: string; jailed: boolean; eligible: boolean };
    expect(json).toMatchObject({ activeStake: parseEther("61").toString(), jailed: false, eligible: false });
  });
});

describe("din's errors", () => {
  it("names an unknown flag and exits 2", async () => {
    const result = await din(["provider", "stake", "--amount", "5"], operatorKey);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe("din: provider stake: unknown option '--amount' (din provider stake --help lists its flags)");
    // A flag whose value was forgotten, followed by another flag or by nothing.
    const forgotten = await din(["case", "open", "--provider", "--amount", "10"], watcherKey);
    expect(forgotten.stderr.trim()).toBe("din: case open: --provider needs a value (one that starts with a dash is written --provider=-…)");
    const last = await din(["case", "show", "--case"]);
    expect(last.stderr.trim()).toBe("din: case show: --case needs a value (one that starts with a dash is written --case=-…)");
    const notUrl = await din(["provider", "status", operator, "--rpc", "notaurl"]);
    expect(notUrl.stderr.trim()).toBe('din: --rpc must be a node\'s http:// or https:// URL, such as http://127.0.0.1:8545, not "notaurl"');
    const tooLong = join(cwd, "long-evidence.json");
    await writeFile(tooLong, "x".repeat(16_385));
    const long = await din(["case", "open", "--provider", operator, "--amount", "1", "--evidence", tooLong], watcherKey);
    expect(long.stderr.trim()).toBe(`din: --evidence: ${tooLong} holds 16385 bytes; a case takes at most 16384 (keep the proof, link the rest)`);
    expect([forgotten.code, last.code, notUrl.code, long.code]).toEqual([2, 2, 2, 2]);
    // A flag every command takes, written before the command (a walkthrough: `unknown command "din --json"`).
    const early = await din(["--json", "case", "list"]);
    expect([early.code, JSON.parse(early.stderr)]).toEqual([2, { error: "--json goes after the command, such as din <group> <command> --json (din --help lists the commands)" }]);
    const between = await din(["gov", "--key", "0x1"]);
    expect([between.code, between.stderr.trim()]).toEqual([2, "din: --key goes after the command, such as din gov <command> --key (din --help lists the commands)"]);
    const huge = await din(["case", "show", "--case", `1${"0".repeat(80)}`]);
    expect([huge.code, huge.stderr.trim()]).toEqual([2, `din: --case 1${"0".repeat(80)} is more than any id can be (256 bits)`]);
    const notHex = await din(["gov", "status", "--proposal", "0xzz"]);
    expect([notHex.code, notHex.stderr.trim()]).toEqual([2, 'din: --proposal must be a whole number or 0x hex, not "0xzz"']);
    const none = await din(["--version"]); // taken by no command: not sent after one
    expect([none.code, none.stderr.trim()]).toEqual([2, "din: unknown option --version (din --help lists the commands)"]);
  });

  it("says what a command does and what its flags mean with --help", async () => {
    const help = await din(["case", "open", "--help"]);
    expect(help.code).toBe(0);
    const [usageLine, , what] = help.stdout.split("\n");
    expect(usageLine).toBe("usage: din case open --provider <address> --amount <DIN> --evidence <file> [--again]"); // no group label before it
    expect(what).toMatch(/^ {2}Reports --provider to governance/);
    expect(help.stdout).toContain("The case bond is taken from the key");
    expect(help.stdout).toContain("--json                            a machine-readable object on stdout: amounts in wei and times in unix");
    const vote = await din(["gov", "vote", "-h"]);
    expect(vote.stdout).toMatch(/^usage: din gov vote \(--proposal <id> \| --case <id>\) --support for\|against\|abstain \[--reason <text>\]\n\n {2}Votes on --proposal <id> \(decimal, or 0x hex\), or on the proposal on --case <id> open for votes\.\n/);
  });

  it("needs a well-formed key only for a command that sends", async () => {
    const reading = await din(["case", "list"], "0xabc");
    expect([reading.code, reading.stderr]).toEqual([0, ""]);
    const sending = await din(["provider", "withdraw"], "0xabc");
    expect([sending.code, sending.stderr.trim()]).toEqual([2, "din: --key (or DIN_PRIVATE_KEY) must be a 0x-prefixed 32-byte hex private key"]);
    const own = await din(["provider", "status"], "0xabc");
    expect([own.code, own.stderr.trim()]).toEqual([2, "din: --key (or DIN_PRIVATE_KEY) must be a 0x-prefixed 32-byte hex private key"]);
    // Before anything else a sending command does (a review: "there is no proposal 5", exit 1).
    const first = await din(["gov", "execute", "--proposal", "5"], "0x1234");
    expect([first.code, first.stderr.trim()]).toEqual([2, "din: --key (or DIN_PRIVATE_KEY) must be a 0x-prefixed 32-byte hex private key"]);
  });

  it("rejects a malformed amount", async () => {
    const result = await din(["provider", "unbond", "1.2.3"], operatorKey);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe('din: <amount> must be an amount of DIN like 1000 or 0.5, not "1.2.3"');
    for (const args of [["provider", "stake", "-1"], ["provider", "register", "--name", "x", "--stake", "-5"]]) {
      const negative = await din(args, operatorKey);
      expect(negative.code).toBe(2);
      expect(negative.stderr.trim()).toBe(`din: ${args[0]} ${args[1]}: "${args.at(-1)}" is negative: amounts, ids and chain ids are above zero`);
    }
    const refusals: [string, string][] = [
      ["0", "din: <amount> must be above zero"],
      ["1,00", 'din: <amount> must be an amount of DIN like 1000 or 0.5, not "1,00"'], // commas only between thousands
      ["0.0000000000000000001", "din: <amount> 0.0000000000000000001 has more than 18 decimals: DIN is counted to 18"],
      ["9".repeat(80), `din: <amount> ${"9".repeat(80)} DIN is more than any balance can be (at most 115792089237316195423570985008687907853269984665640564039457.584007913129639935)`],
    ];
    for (const [amount, message] of refusals) {
      const refused = await din(["provider", "stake", amount], operatorKey);
      expect(refused.code).toBe(2);
      expect(refused.stderr.trim()).toBe(message);
    }
  });

  it("names a mistyped address as such, not as something that is no address", async () => {
    const typo = "0xBcd4042DE499D14e55001CcbB24a551F3b954097"; // one letter's case changed from its checksum
    const result = await din(["case", "open", "--provider", typo, "--amount", "1", "--evidence", "x"], watcherKey);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(`din: --provider ${typo} has mixed case that is not its checksum (EIP-55): a typo? Check it, or write it all in lower case`);
  });

  it("says when the key's account has no ETH for gas, and sends nothing", async () => {
    const key = generatePrivateKey();
    const account = privateKeyToAccount(key).address;
    const result = await din(["gov", "delegate"], key);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(`din: ${account} has no ETH to pay for gas: send it some first`);
    expect(await system.contracts.token.read.delegates([account])).toBe("0x0000000000000000000000000000000000000000");
  });

  it("asks for a key before sending a transaction", async () => {
    const result = await din(["provider", "withdraw"]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe("din: this command sends a transaction: give --key <0x…> or set DIN_PRIVATE_KEY");
    // Reading a standing sends nothing: without a key it needs the address instead.
    const status = await din(["provider", "status"]);
    expect(status.code).toBe(2);
    expect(status.stderr.trim()).toBe("din: provider status: give the provider's address, or --key (or DIN_PRIVATE_KEY) for your own");
  });

  it("says which chain URL it cannot reach", async () => {
    const result = await din(["provider", "status", operator, "--rpc", "http://127.0.0.1:9"]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe("din: cannot reach the chain at http://127.0.0.1:9: is the node running? (--rpc sets another URL)");
  });

  it("stops the indexer at once when its port is taken, rather than let it move to another", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const result = await din(["indexer", "--port", String(port)]);
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(`indexer: port ${port} on 127.0.0.1 is taken (by another indexer?): stop what holds it or give another --port`);
      expect(result.stdout).not.toContain("indexing chain"); // nothing was started
    } finally {
      taken.close();
    }
  });

  it("says when there is no devnet and no deployment, and finds one named by DIN_DEVNET", async () => {
    const empty = await mkdtemp(join(tmpdir(), "din-empty-"));
    try {
      const result = await runDin(["case", "list"], { cwd: empty });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/no devnet is running .* start one with "npm start", set DIN_DEVNET to the folder of one started with --dir, or give --rpc and --deployment/);
      // A devnet started with `npm start -- --dir <dir>` (its summary's commands set DIN_DEVNET).
      const named = await runDin(["provider", "status", operator, "--json"], { cwd: empty, env: { DIN_DEVNET: join(cwd, ".devnet") } });
      expect(named.stderr).toBe("");
      expect(JSON.parse(named.stdout)).toMatchObject({ address: operator });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it("refuses a deployment file whose contracts are not on the chain (a chain started afresh), and sends nothing", async () => {
    // Same chain id, addresses where nothing is: a transaction there succeeds doing nothing.
    const stale = join(cwd, "stale-deployment.json");
    const nowhere = (i: number) => `0x${"de".repeat(19)}${i.toString(16).padStart(2, "0")}`;
    const contracts = Object.fromEntries(Object.keys(system.deployment.contracts).map((name, i) => [name, nowhere(i)]));
    await writeFile(stale, JSON.stringify({ ...system.deployment, contracts }));
    const nonceBefore = await (await system.viem.getPublicClient()).getTransactionCount({ address: operator });
    const result = await din(["provider", "endpoint", "remove", "31337", "--rpc", system.chain.rpcUrl, "--deployment", stale], operatorKey);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      `din: ${stale} names contracts the chain at ${system.chain.rpcUrl} does not have (${Object.keys(contracts).map((name, i) => `${name} ${nowhere(i)}`).join(", ")}: no code there): the chain was started afresh since, or the file is another chain's; deploy again, or give the right --deployment`,
    );
    expect(await (await system.viem.getPublicClient()).getTransactionCount({ address: operator })).toBe(nonceBefore);
  });

  it("prints errors as JSON with --json", async () => {
    const result = await din(["provider", "unbond", "1000000", "--json"], operatorKey);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stderr)).toEqual({ error: expect.stringMatching(/^cannot unbond 1,000,000 DIN: only [0-9,]+ DIN is actively staked$/) as unknown });
    const usage = await din(["provider", "stake", "0", "--json"], operatorKey);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr)).toEqual({ error: "<amount> must be above zero" });
  });
});

// Last: it leaves the operator unregistered.
describe("din provider deregister", () => {
  it("deregisters: endpoints removed, the active stake unbonding", async () => {
    const result = await din(["provider", "deregister"], operatorKey);
    expect(result.stderr).toMatch(/^sent ProviderRegistry\.deregister \(tx 0x[0-9a-f]{64}\); waiting for it to be mined…\n$/);
    expect(result.stdout).toMatch(/^deregistered 0x[0-9a-fA-F]{40}: its 1 endpoint\(s\) are removed and routers drop it; its 61 DIN of active stake unbonds, withdrawable from \S+ \(in [^)]+\) \(tx 0x[0-9a-f]{64}\)\n$/);
    const provider = await system.contracts.registry.read.getProvider([operator]);
    expect(provider).toMatchObject({ registered: false, activeStake: 0n, endpointCount: 0 });
    expect(provider.unbondingStake).toBe(parseEther("1211"));
    expect((await din(["provider", "deregister"], operatorKey)).stderr).toContain("is not a registered provider");
  });

  it("tells an operator jailed after leaving that it still is: in its standing, and when it registers again", async () => {
    // An operator walkthrough: the standing said only "not registered", and registering again
    // staked 500 DIN with no word that routers would send nothing.
    await jailAsAVoteWould(operator);
    const jailNote = `routers send it no traffic until governance unjails it (din gov propose-unjail --provider ${operator}, then a vote)`;
    expect((await din(["provider", "status", operator])).stdout).toContain(`provider ${operator}: not registered; jailed: ${jailNote}\n`);
    const again = await din(["provider", "register", "--name", "again", "--stake", "100"], operatorKey);
    expect(again.stderr).not.toContain("din:"); // no error: the approval and the registration went out
    expect(again.stdout).toContain(`\n  note: you are jailed: routers send you no traffic until governance unjails you, whatever the stake (din gov propose-unjail --provider ${operator}, then a vote)\n`);
    const out = await din(["provider", "unbond", "100"], operatorKey); // all of it: leaving, and jailed
    expect(out.stdout).toMatch(/withdrawable from \S+ \(in [^)]+\) \(tx 0x[0-9a-f]{64}\)\n  you are jailed: routers send you no traffic until governance unjails you/);
  });
});
