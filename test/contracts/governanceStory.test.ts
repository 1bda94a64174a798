import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFunctionData, keccak256, parseEther, toBytes, type Address } from "viem";
import { advance, mined } from "../helpers/chainActions.ts";
import { startDeployedChain, type DeployedChain } from "../helpers/startDeployedChain.ts";

// The whole slashing story on a real Hardhat node with the Ignition deployment, through viem:
// an operator stakes, a watcher reports, holders vote, the timelock executes, and every balance
// ends exactly where the rules say.

const DIN = (amount: string) => parseEther(amount);
const CASE_BOND = DIN("10");
const WATCHER_REWARD_BPS = 1_000n;
const enum CaseStatus {
  Open = 1,
  Upheld = 2,
  Rejected = 3,
  Expired = 4,
}

let system: DeployedChain;
let deployer: Address, operatorA: Address, operatorB: Address, watcher: Address, voterA: Address, voterB: Address;
let stranger: Address;

async function balance(account: Address): Promise<bigint> {
  return await system.contracts.token.read.balanceOf([account]);
}

/** Proposes `call` on the SlashingManager, votes it through, queues and executes it. */
async function passProposal(functionName: "upholdCase" | "rejectCase", caseId: bigint): Promise<void> {
  const { governor, manager } = system.contracts;
  const calldata = encodeFunctionData({ abi: manager.abi, functionName, args: [caseId] });
  const description = `${functionName} ${caseId}`;
  const args = [[manager.address], [0n], [calldata]] as const;
  const descriptionHash = keccak256(toBytes(description));
  await mined(system, governor.write.propose([...args, description], { account: voterA }));
  const proposalId = await governor.read.hashProposal([...args, descriptionHash]);
  expect(await governor.read.state([proposalId])).toBe(0); // Pending

  await advance(system, Number(await governor.read.votingDelay()) + 1);
  expect(await governor.read.state([proposalId])).toBe(1); // Active
  await mined(system, governor.write.castVote([proposalId, 1], { account: voterA }));
  await mined(system, governor.write.castVote([proposalId, 0], { account: voterB }));

  await advance(system, Number(await governor.read.votingPeriod()) + 1);
  expect(await governor.read.state([proposalId])).toBe(4); // Succeeded
  await mined(system, governor.write.queue([...args, descriptionHash], { account: stranger }));
  expect(await governor.read.state([proposalId])).toBe(5); // Queued

  await advance(system, Number(await system.contracts.timelock.read.getMinDelay()) + 1);
  await mined(system, governor.write.execute([...args, descriptionHash], { account: stranger }));
  expect(await governor.read.state([proposalId])).toBe(7); // Executed
}

async function openCase(provider: Address, amount: bigint): Promise<bigint> {
  await mined(system, system.contracts.manager.write.openCase([provider, amount, "0xdeadbeef"], { account: watcher }));
  return await system.contracts.manager.read.caseCount();
}

beforeAll(async () => {
  system = await startDeployedChain();
  const wallets = await system.viem.getWalletClients();
  [deployer, operatorA, operatorB, watcher, voterA, voterB, stranger] = wallets.map((w) => w.account.address);
  const { token, registry, manager } = system.contracts;

  for (const [account, amount] of [
    [operatorA, DIN("10000")],
    [operatorB, DIN("10000")],
    [watcher, DIN("1000")],
    [voterA, DIN("10000000")],
    [voterB, DIN("3000000")],
  ] as const) {
    await mined(system, token.write.transfer([account, amount], { account: deployer }));
  }
  for (const operator of [operatorA, operatorB]) {
    await mined(system, token.write.approve([registry.address, DIN("10000")], { account: operator }));
    await mined(system, registry.write.registerAndStake(["node", "ipfs://meta", DIN("1000")], { account: operator }));
    await mined(system, registry.write.setEndpoint([31337n, "https://rpc.example.org"], { account: operator }));
  }
  await mined(system, token.write.approve([manager.address, DIN("1000")], { account: watcher }));
  await mined(system, token.write.delegate([voterA], { account: voterA }));
  await mined(system, token.write.delegate([voterB], { account: voterB }));
  await advance(system, 1);
});

afterAll(async () => {
  await system?.stop();
});

describe("slashing governance on a deployed network", () => {
  it("gives the deployer no power after deployment", async () => {
    const { timelock, registry, manager } = system.contracts;
    const adminRole = await timelock.read.DEFAULT_ADMIN_ROLE();
    expect(await timelock.read.hasRole([adminRole, deployer])).toBe(false);
    expect(await timelock.read.hasRole([await timelock.read.PROPOSER_ROLE(), system.contracts.governor.address])).toBe(true);
    expect(await registry.read.governance()).toBe(timelock.address);
    expect(await registry.read.slashingManager()).toBe(manager.address);
    await expect(registry.write.bindSlashingManager([deployer], { account: deployer })).rejects.toThrow(
      /RegistryBindingClosed/,
    );
  });

  it("upholds a case through a full vote: the provider is slashed and the proceeds split exactly", async () => {
    const { registry, manager, timelock } = system.contracts;
    const watcherBefore = await balance(watcher);
    const treasuryBefore = await balance(timelock.address);
    const asked = DIN("300");

    const caseId = await openCase(operatorA, asked);
    expect(await registry.read.openCases([operatorA])).toBe(1n);
    await expect(registry.write.withdraw({ account: operatorA })).rejects.toThrow(/RegistryWithdrawalBlockedByOpenCases/);

    await passProposal("upholdCase", caseId);

    const reward = (asked * WATCHER_REWARD_BPS) / 10_000n;
    const provider = await registry.read.getProvider([operatorA]);
    expect(provider.activeStake).toBe(DIN("1000") - asked);
    expect(provider.openCases).toBe(0);
    expect((await manager.read.getCase([caseId])).status).toBe(CaseStatus.Upheld);
    expect(await balance(timelock.address)).toBe(treasuryBefore + asked - reward);
    expect(await manager.read.claimable([watcher])).toBe(CASE_BOND + reward);

    await mined(system, manager.write.claim({ account: watcher }));
    expect(await balance(watcher)).toBe(watcherBefore + reward);
    expect(await balance(registry.address)).toBe(
      (await registry.read.totalActiveStake()) + (await registry.read.totalUnbondingStake()),
    );
  });

  it("rejects a case through a full vote: the bond goes to the treasury and the stake is untouched", async () => {
    const { registry, manager, timelock } = system.contracts;
    const watcherBefore = await balance(watcher);
    const treasuryBefore = await balance(timelock.address);
    const stakeBefore = (await registry.read.getProvider([operatorB])).activeStake;

    const caseId = await openCase(operatorB, DIN("500"));
    await passProposal("rejectCase", caseId);

    expect((await manager.read.getCase([caseId])).status).toBe(CaseStatus.Rejected);
    expect((await registry.read.getProvider([operatorB])).activeStake).toBe(stakeBefore);
    expect(await balance(timelock.address)).toBe(treasuryBefore + CASE_BOND);
    expect(await balance(watcher)).toBe(watcherBefore - CASE_BOND);
    expect(await manager.read.claimable([watcher])).toBe(0n);
  });

  it("expires a case nobody resolved: anyone closes it, the watcher gets the bond back, a late vote fails", async () => {
    const { registry, manager, governor } = system.contracts;
    const watcherBefore = await balance(watcher);
    const stakeBefore = (await registry.read.getProvider([operatorB])).activeStake;

    const caseId = await openCase(operatorB, DIN("100"));
    await expect(manager.write.expireCase([caseId], { account: stranger })).rejects.toThrow(/ManagerCaseNotExpired/);

    // A vote starts, but the case outlives its TTL before the timelock can execute it.
    const calldata = encodeFunctionData({ abi: manager.abi, functionName: "upholdCase", args: [caseId] });
    const args = [[manager.address], [0n], [calldata]] as const;
    const description = `late uphold ${caseId}`;
    const descriptionHash = keccak256(toBytes(description));
    await mined(system, governor.write.propose([...args, description], { account: voterA }));
    const proposalId = await governor.read.hashProposal([...args, descriptionHash]);
    await advance(system, 2);
    await mined(system, governor.write.castVote([proposalId, 1], { account: voterA }));
    await advance(system, Number(await manager.read.caseTtl()) + 1);
    await mined(system, governor.write.queue([...args, descriptionHash], { account: stranger }));
    await advance(system, Number(await system.contracts.timelock.read.getMinDelay()) + 1);
    await expect(governor.write.execute([...args, descriptionHash], { account: stranger })).rejects.toThrow(
      /ManagerCaseExpired/,
    );

    await mined(system, manager.write.expireCase([caseId], { account: stranger }));
    expect((await manager.read.getCase([caseId])).status).toBe(CaseStatus.Expired);
    expect(await manager.read.claimable([watcher])).toBe(CASE_BOND);
    await mined(system, manager.write.claim({ account: watcher }));
    expect(await balance(watcher)).toBe(watcherBefore);
    expect((await registry.read.getProvider([operatorB])).activeStake).toBe(stakeBefore);
    expect(await registry.read.openCases([operatorB])).toBe(0n);
  });
});
