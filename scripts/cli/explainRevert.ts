import { BaseError, ContractFunctionRevertedError } from "viem";
import { formatTime, formatTokens } from "./amounts.ts";

type Args = readonly unknown[];
const tokens = (value: unknown): string => formatTokens(value as bigint);
const seconds = (value: unknown): string => `${String(value)} s`;
const caseStatus = ["unknown", "open", "upheld", "rejected", "expired"];
const proposalStates = ["pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed"];
/** TimelockController.OperationState, the bits of its `expectedStates` bitmap from the lowest. */
const operationStates = ["not yet queued", "waiting for its delay", "ready", "done"];

/** What each custom error means, in words, with its values. */
const explanations: Record<string, (args: Args) => string> = {
  RegistryStakeBelowMinimum: ([have, need]) => `stake ${tokens(have)} is below the minimum ${tokens(need)}`,
  RegistryAlreadyRegistered: ([p]) => `${String(p)} is already registered`,
  RegistryNotRegistered: ([p]) => `${String(p)} is not a registered provider: register first (din provider register)`,
  RegistryInvalidName: ([length, max]) => `the name must be 1 to ${String(max)} bytes long (it is ${String(length)})`,
  RegistryMetadataTooLong: ([length, max]) => `the metadata URI is ${String(length)} bytes; at most ${String(max)} are allowed`,
  RegistryZeroAmount: () => "the amount must be above zero",
  RegistryInsufficientStake: ([requested, available]) =>
    `cannot unbond ${tokens(requested)}: only ${tokens(available)} is actively staked`,
  RegistryInvalidChainId: () => "chain id 0 is not a chain",
  RegistryInvalidUrlLength: ([length, max]) => `the URL must be 1 to ${String(max)} bytes long (it is ${String(length)})`,
  RegistryUrlSchemeNotAllowed: () => "the URL must start with https://, http://, wss:// or ws://",
  RegistryUrlInvalidCharacter: ([index]) =>
    `the URL must not contain spaces or control characters (there is one at byte ${String(index)})`,
  RegistryEndpointNotSet: ([p, chainId]) => `${String(p)} has no endpoint for chain ${String(chainId)}`,
  RegistryTooManyEndpoints: ([max]) => `a provider may serve at most ${String(max)} chains`,
  RegistryTooManyUnbondingEntries: ([max]) =>
    `${String(max)} unbonding requests are pending already: withdraw released ones first`,
  RegistryNothingToWithdraw: ([next]) =>
    (next as bigint) === 0n
      ? "nothing to withdraw: no stake is unbonding"
      : `nothing is released yet: the next unbonding entry is released at ${formatTime(next as bigint)}`,
  RegistryWithdrawalBlockedByOpenCases: ([open]) =>
    `withdrawal is blocked while ${String(open)} slashing case(s) against you are open`,
  RegistryNotGovernance: ([caller]) => `only governance (the timelock) may do this, not ${String(caller)}`,
  RegistryNotSlashingManager: ([caller]) => `only the SlashingManager may do this, not ${String(caller)}`,
  RegistryParameterOutOfBounds: ([value, min, max]) =>
    `${String(value)} is outside the allowed range ${String(min)} to ${String(max)}`,
  RegistryUnbondingPeriodTooShort: ([period, ttl]) =>
    `the unbonding period ${seconds(period)} must exceed the case lifetime ${seconds(ttl)}`,
  ManagerZeroAmount: () => "the slash asked for must be above zero",
  ManagerInvalidEvidenceLength: ([length, max]) => `evidence must be 1 to ${String(max)} bytes (it is ${String(length)})`,
  ManagerNothingAtStake: ([p]) => `${String(p)} has no stake to slash, active or unbonding: is it a provider? (din provider status ${String(p)})`,
  ManagerUnknownCase: ([id]) => `there is no case ${String(id)}`,
  ManagerCaseNotOpen: ([id, status]) => `case ${String(id)} is not open: it is ${caseStatus[Number(status)] ?? "closed"}`,
  ManagerCaseExpired: ([id, at]) =>
    `case ${String(id)} expired at ${formatTime(at as bigint)}: it can no longer be resolved, only expired`,
  ManagerCaseNotExpired: ([id, at]) => `case ${String(id)} is open until ${formatTime(at as bigint)}`,
  ManagerNothingToClaim: ([account]) => `${String(account)} has nothing to claim`,
  ManagerNotGovernance: ([caller]) => `only governance (the timelock) may do this, not ${String(caller)}`,
  ManagerParameterOutOfBounds: ([value, min, max]) =>
    `${String(value)} is outside the allowed range ${String(min)} to ${String(max)}`,
  ManagerCaseTtlTooLong: ([ttl, period]) =>
    `the case lifetime ${seconds(ttl)} must stay below the unbonding period ${seconds(period)}`,
  ERC20InsufficientBalance: ([sender, balance, needed]) =>
    `${String(sender)} holds ${tokens(balance)} but ${tokens(needed)} is needed`,
  ERC20InsufficientAllowance: ([, allowance, needed]) =>
    `the token allowance ${tokens(allowance)} is below the ${tokens(needed)} needed`,
  GovernorInsufficientProposerVotes: ([, votes, threshold]) =>
    `you have ${tokens(votes)} of votes; proposing needs ${tokens(threshold)} (delegate first: din gov delegate)`,
  GovernorAlreadyCastVote: ([voter]) => `${String(voter)} has already voted on this proposal`,
  GovernorNonexistentProposal: ([id]) => `there is no proposal ${String(id)}`,
  GovernorUnexpectedProposalState: ([id, current]) =>
    `proposal ${String(id)} is ${proposalStates[Number(current)] ?? "in another state"}, so this step is not possible now`,
  TimelockUnexpectedOperationState: ([id, expected]) => {
    const names = operationStates.filter((_, bit) => (BigInt(expected as string) >> BigInt(bit)) & 1n);
    return (
      `the timelock refused: operation ${String(id)} must be ${names.join(" or ")}, and it is not` +
      (names.length === 1 && names[0] === "ready" ? "; a proposal runs once queued and past the timelock delay, and only once (din gov status shows when)" : "")
    );
  },
  GovernorOnlyExecutor: ([account]) => `only the timelock may do this, not ${String(account)}`,
  GovernorParameterOutOfBounds: ([value, min, max]) =>
    `${String(value)} is outside the allowed range ${String(min)} to ${String(max)}`,
};

/** Whether a failed call is the contract's refusal (a revert), not the node's or the network's. */
export function isRevert(error: unknown): boolean {
  return error instanceof BaseError && error.walk((e) => e instanceof ContractFunctionRevertedError) instanceof ContractFunctionRevertedError;
}

/** The custom error a failed call reverted with ("ERC20InsufficientAllowance"), if it names one. */
export function revertName(error: unknown): string | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
  return reverted instanceof ContractFunctionRevertedError ? reverted.data?.errorName : undefined;
}

/** Turns a failed call into one sentence: the decoded custom error in words when there is one. */
export function explainRevert(error: unknown): string {
  if (error instanceof BaseError) {
    const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (reverted instanceof ContractFunctionRevertedError) {
      const name = reverted.data?.errorName;
      if (name && explanations[name]) return explanations[name](reverted.data?.args ?? []);
      if (name) return `the contract refused: ${name}(${(reverted.data?.args ?? []).map(String).join(", ")})`;
      if (reverted.reason) return `the contract refused: ${reverted.reason}`;
    }
    return error.shortMessage;
  }
  return error instanceof Error ? error.message : String(error);
}
