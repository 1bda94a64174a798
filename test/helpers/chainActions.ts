import { expect } from "vitest";
import { encodeFunctionData, keccak256, toBytes, type Address, type Hash, type Hex } from "viem";
import type { DeployedChain } from "./startDeployedChain.ts";

// Small steps the stories repeat: wait for a transaction, move chain time, pass a proposal.

export async function mined(system: DeployedChain, hash: Promise<Hash>): Promise<void> {
  const publicClient = await system.viem.getPublicClient();
  const receipt = await publicClient.waitForTransactionReceipt({ hash: await hash });
  expect(receipt.status).toBe("success");
}

export async function advance(system: DeployedChain, seconds: number): Promise<void> {
  const testClient = await system.viem.getTestClient();
  await testClient.increaseTime({ seconds });
  await testClient.mine({ blocks: 1 });
}

type Call = { target: Address; data: Hex };
const proposalArgs = (calls: readonly Call[]) => [calls.map((c) => c.target), calls.map(() => 0n), calls.map((c) => c.data)] as const;

/** Proposes `calls` from `account`; returns the proposal's id. */
export async function propose(system: DeployedChain, calls: readonly Call[], description: string, account: Address): Promise<bigint> {
  const { governor } = system.contracts;
  const args = proposalArgs(calls);
  await mined(system, governor.write.propose([...args, description], { account }));
  return await governor.read.hashProposal([...args, keccak256(toBytes(description))]);
}

/**
 * Proposes `calls`, votes them through with `voter`'s votes, queues and executes them.
 * `duringVote` runs once voting is open, before the vote.
 */
export async function passProposal(
  system: DeployedChain,
  calls: readonly Call[],
  description: string,
  voter: Address,
  duringVote?: () => Promise<unknown>,
): Promise<bigint> {
  const { governor, timelock } = system.contracts;
  const args = proposalArgs(calls);
  const descriptionHash = keccak256(toBytes(description));
  const proposalId = await propose(system, calls, description, voter);
  await advance(system, Number(await governor.read.votingDelay()) + 1);
  await duringVote?.();
  await mined(system, governor.write.castVote([proposalId, 1], { account: voter }));
  await advance(system, Number(await governor.read.votingPeriod()) + 1);
  await mined(system, governor.write.queue([...args, descriptionHash], { account: voter }));
  await advance(system, Number(await timelock.read.getMinDelay()) + 1);
  await mined(system, governor.write.execute([...args, descriptionHash], { account: voter }));
  return proposalId;
}

/** The call `functionName(caseId)` on the SlashingManager. */
export function slashingCall(system: DeployedChain, functionName: "upholdCase" | "rejectCase", caseId: bigint): Call {
  const { manager } = system.contracts;
  return { target: manager.address, data: encodeFunctionData({ abi: manager.abi, functionName, args: [caseId] }) };
}

/** Proposes `functionName(caseId)` on the SlashingManager and passes it. */
export async function passSlashingProposal(
  system: DeployedChain,
  functionName: "upholdCase" | "rejectCase",
  caseId: bigint,
  voter: Address,
  duringVote?: () => Promise<unknown>,
): Promise<bigint> {
  return await passProposal(system, [slashingCall(system, functionName, caseId)], `${functionName} ${caseId}`, voter, duringVote);
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}
