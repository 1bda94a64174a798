import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContractFunctionRevertedError, encodeErrorResult, encodeFunctionData, getAddress, keccak256, parseEther, toBytes, toHex, type Address } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { explainRevert } from "../../scripts/cli/explainRevert.ts";
import { advance, mined } from "../helpers/chainActions.ts";
import { runDin } from "../helpers/runDin.ts";
import { startDeployedChain, type DeployedChain } from "../helpers/startDeployedChain.ts";

// The watcher's and governance's commands as a user meets them: two cases against one provider,
// the first voted through (with every step tried too early first), the second left to pass its
// deadline and expired. Each refusal must explain itself and send nothing.

const mnemonic = "test test test test test test test test test test test junk";
const keyOf = (index: number) => toHex(mnemonicToAccount(mnemonic, { addressIndex: index }).getHdKey().privateKey!);
const [operatorKey, watcherKey, voterKey, holderKey] = [keyOf(1), keyOf(2), keyOf(3), keyOf(4)];

let system: DeployedChain;
let cwd: string;
let operator: Address;
let watcher: Address;
let holder: Address;
let voter: Address;
let proposalId: string;

async function din(args: string[], key?: string) {
  return await runDin(args, { cwd, env: key ? { DIN_PRIVATE_KEY: key } : {} });
}

/** What `din gov propose-slash --case <caseId>` (uphold, or --reject) proposes, without the description's proposer suffix. */
function slashProposal(caseId: bigint, action: "upholdCase" | "rejectCase") {
  const { manager } = system.contracts;
  const data = encodeFunctionData({ abi: manager.abi, functionName: action, args: [caseId] });
  return { targets: [manager.address], values: [0n], calldatas: [data], description: `${action === "upholdCase" ? "Uphold" : "Reject"} slashing case ${caseId}` };
}

/** The id `din gov propose-slash --case <caseId>` by the voter would give its proposal. */
async function slashProposalId(caseId: bigint, action: "upholdCase" | "rejectCase"): Promise<bigint> {
  const { targets, values, calldatas, description } = slashProposal(caseId, action);
  return await system.contracts.governor.read.hashProposal([targets, values, calldatas, keccak256(toBytes(`${description} #proposer=${voter}`))]);
}

beforeAll(async () => {
  system = await startDeployedChain();
  cwd = await mkdtemp(join(tmpdir(), "din-cases-"));
  await mkdir(join(cwd, ".devnet"));
  const { chain, deployment, contracts } = system;
  await writeFile(
    join(cwd, ".devnet/devnet.json"),
    JSON.stringify({ chainId: deployment.chainId, rpcUrl: chain.rpcUrl, startBlock: deployment.startBlock, contracts: deployment.contracts }),
  );
  const [deployer, op, w, v, h] = (await system.viem.getWalletClients()).map((wallet) => getAddress(wallet.account.address));
  [operator, watcher, holder, voter] = [op, w, h, v];
  // The holder has as many tokens as the voter but never delegates them.
  for (const [to, amount] of [[op, "1000"], [w, "100"], [voter, "10000000"], [h, "10000000"]] as const) {
    await mined(system, contracts.token.write.transfer([to, parseEther(amount)], { account: deployer }));
  }
  await mined(system, contracts.token.write.delegate([voter], { account: voter }));
  await mined(system, contracts.token.write.approve([contracts.registry.address, parseEther("1000")], { account: op }));
  await mined(system, contracts.registry.write.registerAndStake(["alpha", "", parseEther("1000")], { account: op }));
  await mined(system, contracts.token.write.approve([contracts.manager.address, parseEther("20")], { account: w }));
  for (const evidence of ["0x01", "0x02"] as const) {
    await mined(system, contracts.manager.write.openCase([op, parseEther("100"), evidence], { account: w }));
  }
});

afterAll(async () => {
  await system?.stop();
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

describe("din case and din gov, from report to slash or expiry", () => {
  it("refuses to propose a slash on a case that does not exist", async () => {
    const result = await din(["gov", "propose-slash", "--case", "99", "--json"], voterKey);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stderr)).toEqual({ error: "there is no case 99 (the latest is case 2): din case list shows them" });
    expect(await system.contracts.governor.read.proposalSnapshot([await slashProposalId(99n, "upholdCase")])).toBe(0n);
  });

  it("refuses to expire a case before its deadline", async () => {
    const result = await din(["case", "expire", "--case", "2"], watcherKey);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^din: case 2 is open until \S+ \(chain time now \S+\): governance may still resolve it; it can be expired only after that\n$/);
    expect((await system.contracts.manager.read.getCase([2n])).status).toBe(1);
  });

  it("cannot be blocked by a copy proposed first and cancelled; counts only delegated votes, and says when a proposal can be queued and executed", async () => {
    const { governor } = system.contracts;
    // The accused's friend makes the proposal the CLI would make, under its usual words, and
    // cancels it while pending: a governor refuses a proposal with the id of a cancelled one.
    const copy = slashProposal(1n, "upholdCase");
    // No block of the chain's own from here until the pending status is read: one would open the
    // vote (delay 1 s) and forbid the cancel, or show the honest proposal active already.
    const testClient = await system.viem.getTestClient();
    await testClient.setIntervalMining({ interval: 0 });
    await mined(system, governor.write.propose([copy.targets, copy.values, copy.calldatas, copy.description], { account: holder }));
    await mined(system, governor.write.cancel([copy.targets, copy.values, copy.calldatas, keccak256(toBytes(copy.description))], { account: holder }));
    // The CLI's description names its proposer, and nobody else may make that proposal.
    await expect(governor.simulate.propose([copy.targets, copy.values, copy.calldatas, `${copy.description} #proposer=${voter}`], { account: holder })).rejects.toThrow(
      /GovernorRestrictedProposer/,
    );
    const proposed = await din(["gov", "propose-slash", "--case", "1", "--json"], voterKey);
    expect(proposed.stderr).toBe("");
    proposalId = (JSON.parse(proposed.stdout) as { proposalId: string }).proposalId;
    const id = BigInt(proposalId);
    // The same proposal again (as after a defeat) is refused by the governor: said, with the way out.
    const again = await din(["gov", "propose-slash", "--case", "1"], voterKey);
    expect(again.stderr).toBe(
      `din: you made this proposal before (proposal ${proposalId}, pending): a proposal is known by its action and description, so give this one another --description to propose it again\n`,
    );
    // Voting before it opens is told when it does, by the chain's clock (a walkthrough: "is pending, so this step is not possible now").
    const tooEarly = await din(["gov", "vote", "--proposal", proposalId, "--support", "for"], voterKey);
    expect(tooEarly.stderr).toMatch(new RegExp(`^din: voting on proposal ${proposalId} opens after \\S+ \\((in \\d+ s|now)\\) and closes at \\S+ \\(in \\d+ (min \\d+ )?s\\); vote then\n$`));
    const pending = await din(["gov", "status", "--proposal", proposalId]);
    await testClient.setIntervalMining({ interval: 1_000 });
    expect(pending.stdout).toContain("state pending; for 0 DIN, against 0 DIN, abstain 0 DIN; quorum set when voting opens");
    // The description as people read it: the proposer suffix is for the governor only.
    expect(pending.stdout).toMatch(new RegExp(`^proposal \\d+\n  does: uphold case 1 \\(slash its provider\\)\n  described as "Uphold slashing case 1" by ${voter}\n  state pending`));
    // A voter who knows only the case finds its proposals by it (the cancelled copy among them).
    const byCase = await din(["gov", "status", "--case", "1", "--json"]);
    const copyId = String(await governor.read.hashProposal([copy.targets, copy.values, copy.calldatas, keccak256(toBytes(copy.description))]));
    const listed = (JSON.parse(byCase.stdout) as { proposals: { id: string; state: string }[] }).proposals;
    expect(listed.map((p) => p.id).sort()).toEqual([proposalId, copyId].sort());
    expect(listed.find((p) => p.id === copyId)?.state).toBe("canceled");
    expect((await din(["gov", "status", "--case", "2"])).stdout).toBe("no proposal on case 2 yet (din gov propose-slash --case 2)\n");
    const none = await din(["gov", "vote", "--case", "2", "--support", "for"], voterKey);
    expect([none.code, none.stderr]).toEqual([1, "din: case 2 has no proposal on its way: din gov propose-slash --case 2 makes one\n"]);
    // A case that does not exist is said so, not offered a proposal (a walkthrough: exit 0, and a command that then failed).
    const noCase = await din(["gov", "status", "--case", "99"]);
    expect([noCase.code, noCase.stderr]).toEqual([1, "din: there is no case 99 (the latest is case 2): din case list shows them\n"]);
    await advance(system, Number(await governor.read.votingDelay()) + 1);
    expect((await din(["gov", "status", "--proposal", proposalId])).stdout).toMatch(/state active; .*; quorum [1-9][0-9,]* DIN/);

    const weightless = await din(["gov", "vote", "--proposal", proposalId, "--support", "against"], holderKey);
    expect(weightless.code).toBe(1);
    expect(weightless.stderr).toContain(`din: ${holder} had no votes at proposal ${proposalId}'s snapshot (`);
    expect(weightless.stderr).toContain("tokens count only when delegated before a proposal's snapshot");
    expect(weightless.stderr).toContain("delegate now with din gov delegate to vote on future proposals");
    expect(await governor.read.hasVoted([id, holder])).toBe(false);
    // By the case, not the 77-digit id (the cancelled copy on case 1 is not on its way); each
    // transaction is named on stderr as it goes out.
    const voted = await din(["gov", "vote", "--case", "1", "--support", "for"], voterKey);
    expect(voted.stdout).toMatch(new RegExp(`^voted for on proposal ${proposalId} \\(uphold case 1`));
    expect(voted.stderr).toMatch(/^sent DinGovernor\.castVote \(tx 0x[0-9a-f]{64}\); waiting for it to be mined…\n$/);
    expect(await governor.read.hasVoted([id, voter])).toBe(true);

    const tooSoon = await din(["gov", "queue", "--proposal", proposalId], voterKey);
    expect(tooSoon.code).toBe(1);
    expect(tooSoon.stderr).toMatch(/^din: voting on proposal \d+ is open until \S+ \(in \d+ (min \d+ )?s\): it can be queued after that, if it passes\n$/);

    await advance(system, Number(await governor.read.votingPeriod()) + 1);
    const notQueued = await din(["gov", "execute", "--proposal", proposalId], voterKey);
    expect(notQueued.stderr).toBe(`din: proposal ${proposalId} passed but is not queued yet: queue it first with din gov queue --proposal ${proposalId}\n`);
    // The id as Governor tools show it, in hex.
    const hexId = `0x${id.toString(16)}`;
    expect((await din(["gov", "queue", "--proposal", hexId], voterKey)).stdout).toMatch(new RegExp(`^queued proposal ${proposalId} \\(uphold case 1 \\(slash its provider\\)\\) in the timelock: executable from \\S+ \\(in \\d+ s\\) \\(tx 0x`));
    const late = await din(["gov", "vote", "--proposal", proposalId, "--support", "against"], voterKey);
    expect(late.stderr).toMatch(/^din: voting on proposal \d+ closed at \S+ \(\d+ s ago\): proposal \d+ is already queued; executable from /);

    const early = await din(["gov", "execute", "--proposal", proposalId], voterKey);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/^din: proposal \d+ is queued; executable from \S+ \(in \d+ s\)\n$/);
    expect(await governor.read.state([id])).toBe(5); // still queued

    await advance(system, Number(await system.contracts.timelock.read.getMinDelay()) + 1);
    expect((await din(["gov", "execute", "--case", "1"], voterKey)).stdout).toMatch(new RegExp(`^executed proposal ${proposalId}: uphold case 1 \\(slash its provider\\)`));
    expect((await din(["gov", "execute", "--proposal", proposalId], voterKey)).stderr).toBe(`din: proposal ${proposalId} was already executed\n`);
    const done = await din(["gov", "execute", "--case", "1"], voterKey);
    expect([done.code, done.stderr]).toEqual([1, "din: case 1 is upheld already: no proposal on it can run (din gov status --case 1)\n"]);
  });

  it("refuses to propose on a case already resolved", async () => {
    const result = await din(["gov", "propose-slash", "--case", "1", "--reject"], voterKey);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("din: case 1 is already upheld: only an open case can be voted on\n");
    expect(await system.contracts.governor.read.proposalSnapshot([await slashProposalId(1n, "rejectCase")])).toBe(0n);
    // Each case's part of the sum, which the contract keeps alone.
    expect((await din(["case", "claim"], watcherKey)).stdout).toMatch(/^claimed 20 DIN \(case 1 upheld: bond 10 DIN \+ reward 10 DIN\) \(tx 0x/); // bond + 10% of the slash
  });

  it("shows a case past its deadline as such, and expires it so its bond can be claimed", async () => {
    const { manager, registry } = system.contracts;
    const before = (await din(["case", "list"])).stdout;
    expect(before).toMatch(/case 2\s+open\s+.*open until \S+ \(in [^)]+\), would slash 100 DIN/);
    expect(before).toMatch(/case 1\s+upheld\s+.*slashed 100 DIN/);

    // Five seconds before its deadline: open, but no proposal made now could be executed in time.
    const { expiresAt } = await manager.read.getCase([2n]);
    const now = (await (await system.viem.getPublicClient()).getBlock()).timestamp;
    // (The tests before use most of the case's lifetime: on a slow machine less than five seconds may be left.)
    const ahead = Number(expiresAt - now) - 5;
    if (ahead > 0) await advance(system, ahead);
    const late = await din(["gov", "propose-slash", "--case", "2"], voterKey);
    expect(late.code).toBe(1);
    // Nor do the case's view and a vote by it send the user there (a walkthrough was sent so 33 s before a deadline).
    expect((await din(["case", "show", "--case", "2"])).stdout).toContain("\n  proposal  none yet (none made now could run before its deadline: din case expire --case 2 after it)\n");
    expect((await din(["gov", "vote", "--case", "2", "--support", "for"], voterKey)).stderr).toMatch(
      /^din: case 2 has no proposal on its way, and one made now could not run before its deadline at \S+: it can only be expired then \(din case expire --case 2\)\n$/,
    );
    expect(late.stderr).toMatch(
      /^din: case 2 expires at \S+, before a proposal made now could be executed \(\S+, after the voting delay, the vote and the timelock delay\): it can only be expired then \(din case expire --case 2\)\n$/,
    );

    await advance(system, 6);
    expect((await din(["case", "list"])).stdout).toMatch(/case 2\s+open\s+.*past its deadline \S+ \(\d+ s ago\): din case expire --case 2\n/);
    // The operator's withdrawal names the case that blocks it, and how it closes (it said only how many).
    const blocked = await din(["provider", "withdraw"], operatorKey);
    expect(blocked.stderr).toMatch(/^din: withdrawal is blocked while 1 slashing case\(s\) against you are open: case 2, past its deadline \S+: anyone may expire it \(din case expire --case 2\)\n$/);
    const propose = await din(["gov", "propose-slash", "--case", "2"], voterKey);
    expect(propose.code).toBe(1);
    expect(propose.stderr).toMatch(/^din: case 2 passed its deadline at \S+: governance can no longer resolve it, it can only be expired \(din case expire --case 2\)\n$/);
    expect(await system.contracts.governor.read.proposalSnapshot([await slashProposalId(2n, "upholdCase")])).toBe(0n);
    expect((await din(["case", "claim"], watcherKey)).stderr).toBe(
      `din: ${watcher} has nothing to claim: your case 2 passed its deadline; expire it with din case expire --case 2 and its bond becomes claimable\n`,
    );

    const expired = await din(["case", "expire", "--case", "2"], voterKey); // anyone may expire a case
    expect(expired.stderr).toMatch(/^sent SlashingManager\.expireCase \(tx 0x[0-9a-f]{64}\); waiting for it to be mined…\n$/);
    expect(expired.stdout).toMatch(
      new RegExp(
        `^expired case 2: the 10 DIN bond is claimable by the watcher ${watcher} with din case claim; provider ${operator} has no open case left, so its withdrawals are unblocked \\(tx 0x[0-9a-f]{64}\\)\n$`,
      ),
    );
    expect((await manager.read.getCase([2n])).status).toBe(4);
    expect(await registry.read.openCases([operator])).toBe(0n);
    expect((await din(["case", "expire", "--case", "2"], voterKey)).stderr).toBe("din: case 2 is already expired: only an open case can be expired\n");
    expect((await din(["case", "claim"], watcherKey)).stdout).toMatch(/^claimed 10 DIN \(case 2 expired: bond 10 DIN\) \(tx 0x/); // not case 1's again
  });

  it("refuses to queue a proposal that could run only after its case's deadline", async () => {
    const { governor, manager, timelock, token } = system.contracts;
    await mined(system, token.write.approve([manager.address, parseEther("10")], { account: watcher }));
    await mined(system, manager.write.openCase([operator, parseEther("50"), "0x03"], { account: watcher }));
    const proposed = await din(["gov", "propose-slash", "--case", "3", "--json"], voterKey);
    expect(proposed.stderr).toBe("");
    const id = (JSON.parse(proposed.stdout) as { proposalId: string }).proposalId;
    await advance(system, Number(await governor.read.votingDelay()) + 1);
    expect((await din(["gov", "vote", "--proposal", id, "--support", "for"], voterKey)).code).toBe(0);
    await advance(system, Number(await governor.read.votingPeriod()) + 1);
    // The vote passed, but the case's deadline now comes before the timelock delay would end.
    const { expiresAt } = await manager.read.getCase([3n]);
    const now = (await (await system.viem.getPublicClient()).getBlock()).timestamp;
    await advance(system, Number(expiresAt - now - (await timelock.read.getMinDelay())) + 1);
    const late = await din(["gov", "queue", "--proposal", id], voterKey);
    expect(late.code).toBe(1);
    const tooLate = `case 3 expires at \\S+, before the proposal could run \\(\\S+, after the timelock delay; chain time now \\S+\\); it can only be expired then \\(din case expire --case 3\\)`;
    expect(late.stderr).toMatch(new RegExp(`^din: proposal ${id} can no longer run: ${tooLate}\n$`));
    expect(await governor.read.state([BigInt(id)])).toBe(4); // succeeded, not queued
    // A voter reading the status learns it too (a walkthrough saw "succeeded" only), and once the
    // deadline has passed the way out is said in the past tense.
    expect((await din(["gov", "status", "--proposal", id])).stdout).toMatch(new RegExp(`\n  state succeeded but can no longer run: ${tooLate}; for `));
    await advance(system, Number((await manager.read.getCase([3n])).expiresAt - (await (await system.viem.getPublicClient()).getBlock()).timestamp) + 1);
    expect((await din(["gov", "queue", "--proposal", id], voterKey)).stderr).toMatch(
      new RegExp(`^din: proposal ${id} can no longer run: case 3 passed its deadline at \\S+ \\(chain time now \\S+\\); anyone may expire it: din case expire --case 3\n$`),
    );
    await din(["case", "expire", "--case", "3"], voterKey);
    expect((await din(["gov", "status", "--proposal", id])).stdout).toContain("\n  state succeeded but can no longer run: case 3 is expired already; for ");
  });

  it("shows what a proposal does beside what its proposer says it does", async () => {
    // A walkthrough: a proposal described as "Reject slashing case 7" upheld the case and jailed
    // its provider, and the status showed only the description.
    const { manager, token } = system.contracts;
    await mined(system, token.write.approve([manager.address, parseEther("10")], { account: watcher }));
    await mined(system, manager.write.openCase([operator, parseEther("50"), "0x04"], { account: watcher }));
    const caseId = String(await manager.read.caseCount());
    const proposed = await din(["gov", "propose-slash", "--case", caseId, "--jail", "--description", `Reject slashing case ${caseId}`, "--json"], voterKey);
    expect(proposed.stderr).toBe("");
    const shown = (await din(["gov", "status", "--case", caseId])).stdout;
    expect(shown).toContain(`\n  does: uphold case ${caseId} (slash its provider), then jail provider ${operator}\n  described as "Reject slashing case ${caseId}" by ${voter}\n`);
    const json = JSON.parse((await din(["gov", "status", "--case", caseId, "--json"])).stdout) as { proposals: { id: string; action: string }[] };
    expect(json.proposals.map((p) => p.action)).toEqual([`uphold case ${caseId} (slash its provider), then jail provider ${operator}`]);
    // A second proposal on the case is taken, and said beside the first (a walkthrough: both passed, and the second to run failed).
    const second = await din(["gov", "propose-slash", "--case", caseId, "--reject"], voterKey);
    const rejecting = { proposalId: /^proposed to reject case \d+: proposal (\d+)\n/.exec(second.stdout)![1] };
    expect(second.stdout).toMatch(
      new RegExp(`\n  note: case ${caseId} has another proposal on its way: ${json.proposals[0].id} \\(uphold case ${caseId} .*, (pending|active)\\); whichever runs first closes the case, and the other cannot run then\n$`),
    );
    // With two proposals on their way, the case does not say which one a vote is for.
    const which = await din(["gov", "vote", "--case", caseId, "--support", "for"], voterKey);
    expect(which.code).toBe(1);
    const queueing = await din(["gov", "queue", "--case", caseId], voterKey);
    expect(queueing.stderr).toMatch(new RegExp(`^din: case ${caseId} has 2 proposals on their way, none of which can be queued now: .*\\(din gov status --case ${caseId} says when\\)\n$`));
    expect(which.stderr).toMatch(
      new RegExp(`^din: case ${caseId} has 2 proposals that can be voted on: ${json.proposals[0].id} \\(uphold case ${caseId} .*, (pending|active)\\); ${rejecting.proposalId} \\(reject case ${caseId} .*, (pending|active)\\); choose one with --proposal <id>\n$`),
    );
  });

  it("refuses a second open case on the same evidence unless --again, and says a capped slash before the vote", async () => {
    // A walkthrough filed one evidence file as several cases (each upheld would slash again) and
    // asked 1,000,000 DIN of a stake that allows far less, both without a word.
    const { manager, token } = system.contracts;
    const evidence = join(cwd, "evidence-04.bin");
    await writeFile(evidence, Buffer.from([0x04])); // the evidence of the case the test above opened
    const open = String(await manager.read.caseCount());
    const twice = await din(["case", "open", "--provider", operator, "--amount", "1000000", "--evidence", evidence], watcherKey);
    expect(twice.stderr).toBe(`din: case ${open} against ${operator} is open with the same evidence: each case upheld slashes on its own, so a second one could punish one fault twice; give --again to open it anyway\n`);
    expect(String(await manager.read.caseCount())).toBe(open);
    await mined(system, token.write.approve([manager.address, parseEther("10")], { account: watcher }));
    const again = await din(["case", "open", "--provider", operator, "--amount", "1000000", "--evidence", evidence, "--again"], watcherKey);
    expect(again.stderr).toMatch(/^sent SlashingManager\.openCase \(tx 0x[0-9a-f]{64}\); waiting for it to be mined…\n$/);
    expect(again.stdout).toMatch(/^opened case \d+ against \S+ asking 1,000,000 DIN; if upheld it would slash [\d,.]+ DIN, the most it may take of this provider's stake, bond 10 DIN posted/);
  });

  it("tells a watcher with nothing to claim where its bonds are: cases open, a case rejected", async () => {
    // A walkthrough heard only "nothing to claim", its case still open, or rejected.
    const { governor, manager, timelock } = system.contracts;
    // The watcher's own cases, and what waits to be claimed, before claiming it.
    const mine = await din(["case", "list", "--watcher", watcher]);
    expect(mine.stdout).toMatch(new RegExp(`\nclaimable by ${watcher}: 10 DIN \\(din case claim, with its key\\)\n$`));
    expect(mine.stdout.split("\n").filter((line) => line.startsWith("case "))).toHaveLength(Number(await manager.read.caseCount())); // all the watcher's
    expect((await din(["case", "list", "--watcher", operator])).stdout).toBe(`claimable by ${operator}: 0 DIN\n`);
    const claimed = JSON.parse((await din(["case", "claim", "--json"], watcherKey)).stdout) as { amount: string; cases: { caseId: string; ended: string; bond: string; reward: string }[] };
    expect(claimed).toMatchObject({ amount: parseEther("10").toString(), cases: [{ caseId: "3", ended: "expired", bond: parseEther("10").toString(), reward: "0" }] });
    const [four, five] = [String((await manager.read.caseCount()) - 1n), String(await manager.read.caseCount())];
    const open = `open, governance may resolve your case ${four} until \\S+ \\(in [^)]+\\), case ${five} until \\S+ \\(in [^)]+\\): a bond comes back, with a reward, once its case is upheld, or once it is expired after its deadline`;
    expect((await din(["case", "claim"], watcherKey)).stderr).toMatch(new RegExp(`^din: ${watcher} has nothing to claim: ${open}\n$`));
    // Case five rejected by a vote through the CLI by the case alone, an uphold proposed later still
    // open for votes: each step takes the proposal it can act on (a review: "2 proposals on their way").
    const reject = (JSON.parse((await din(["gov", "propose-slash", "--case", five, "--reject", "--json"], voterKey)).stdout) as { proposalId: string }).proposalId;
    await advance(system, Number(await governor.read.votingDelay()) + 1);
    expect((await din(["gov", "vote", "--case", five, "--support", "for"], voterKey)).stdout).toMatch(new RegExp(`^voted for on proposal ${reject} `));
    const uphold = (JSON.parse((await din(["gov", "propose-slash", "--case", five, "--json"], voterKey)).stdout) as { proposalId: string }).proposalId;
    const chainNow = async () => (await (await system.viem.getPublicClient()).getBlock()).timestamp;
    await advance(system, Number((await governor.read.proposalDeadline([BigInt(reject)])) - (await chainNow())) + 1);
    expect([await governor.read.state([BigInt(reject)]), await governor.read.state([BigInt(uphold)])]).toEqual([4, 1]); // succeeded, active
    expect((await din(["gov", "queue", "--case", five], voterKey)).stdout).toMatch(new RegExp(`^queued proposal ${reject} \\(reject case ${five} `));
    // The uphold passes too, after the reject was queued: queueing by case does not take it past the
    // queued one unawares (a walkthrough queued the other proposal so, and was told only its id).
    expect((await din(["gov", "vote", "--case", five, "--support", "for"], voterKey)).stdout).toMatch(new RegExp(`^voted for on proposal ${uphold} `));
    await advance(system, Number((await governor.read.proposalDeadline([BigInt(uphold)])) - (await chainNow())) + 1);
    expect([await governor.read.state([BigInt(reject)]), await governor.read.state([BigInt(uphold)])]).toEqual([5, 4]); // queued, succeeded
    expect((await din(["gov", "queue", "--case", five], voterKey)).stderr).toMatch(
      new RegExp(`^din: case ${five} has a proposal further along, ${reject} \\(reject case ${five} .*, queued\\), than ${uphold} \\(uphold case ${five} .*, succeeded\\): to queue that one anyway, give --proposal ${uphold}\n$`),
    );
    await advance(system, Number(await timelock.read.getMinDelay()) + 1);
    expect((await din(["gov", "execute", "--case", five], voterKey)).stdout).toMatch(new RegExp(`^executed proposal ${reject}: reject case ${five}`));
    expect((await manager.read.getCase([BigInt(five)])).status).toBe(3);
    // The uphold may still be open for votes, but its case is closed: the case says so.
    expect((await din(["gov", "vote", "--case", five, "--support", "for"], voterKey)).stderr).toBe(`din: case ${five} is rejected already: no proposal on it can run (din gov status --case ${five})\n`);
    const left = `open, governance may resolve your case ${four} until \\S+ \\(in [^)]+\\): a bond comes back, with a reward, once its case is upheld, or once it is expired after its deadline; your case ${five} was rejected: the bond went to the treasury`;
    expect((await din(["case", "claim"], watcherKey)).stderr).toMatch(new RegExp(`^din: ${watcher} has nothing to claim: ${left}\n$`));
  });
});

describe("din <group> --help", () => {
  it("prints the group's commands, and for a bare din <group> the same as a usage error", async () => {
    for (const [group, flag] of [["provider", "--help"], ["case", "-h"], ["gov", "--help"]]) {
      const result = await din([group, flag]);
      expect(result.code).toBe(0);
      const lines = result.stdout.trim().split("\n");
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) expect(line).toContain(`din ${group} `);
    }
    const bare = await din(["case"]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toContain("din case expire --case <id>");
  });
});

describe("explainRevert", () => {
  it("explains the timelock's refusal of an operation that is not ready", () => {
    const abi = system.contracts.timelock.abi;
    const operation = keccak256(toBytes("operation"));
    const readyOnly = toHex(1n << 2n, { size: 32 });
    const data = encodeErrorResult({ abi, errorName: "TimelockUnexpectedOperationState", args: [operation, readyOnly] });
    expect(explainRevert(new ContractFunctionRevertedError({ abi, data, functionName: "execute" }))).toBe(
      `the timelock refused: operation ${operation} must be ready, and it is not; a proposal runs once queued and past the timelock delay, and only once (din gov status shows when)`,
    );
  });
});
