import { ponder, type Context } from "ponder:registry";
import { endpoint, parameter, proposal, provider, slashingCase, stakeEvent, vote } from "ponder:schema";
import { decodeFunctionData, type Abi, type Address, type Hex } from "viem";
import { ProviderRegistryAbi, SlashingManagerAbi } from "../abis.generated.ts";

// Every row here comes from event arguments: the contracts emit the values after each change,
// so no handler reads the chain.

type Block = { number: bigint; timestamp: bigint };
type ProviderStatus = "active" | "below_minimum" | "jailed" | "deregistered";
type ProviderRow = typeof provider.$inferSelect;

function statusOf(p: Pick<ProviderRow, "registered" | "jailed" | "activeStake">, minStake: bigint): ProviderStatus {
  if (!p.registered) return "deregistered";
  if (p.jailed) return "jailed";
  return p.activeStake >= minStake ? "active" : "below_minimum";
}

async function minStake(context: Context): Promise<bigint> {
  const row = await context.db.find(parameter, { name: "minStake" });
  return row?.value ?? 0n;
}

/** Applies `change` to a provider row and re-derives its status. */
async function updateProvider(
  context: Context,
  address: Address,
  block: Block,
  change: Partial<Pick<ProviderRow, "activeStake" | "unbondingStake" | "registered" | "jailed" | "openCases" | "slashedTotal" | "name" | "metadataUri">>,
): Promise<void> {
  const current = await context.db.find(provider, { address });
  if (!current) return; // no row before the first registration; a jail made then comes with ProviderRegistered
  const next = { ...current, ...change };
  await context.db
    .update(provider, { address })
    .set({ ...change, status: statusOf(next, await minStake(context)), updatedBlock: block.number, updatedAt: block.timestamp });
}

async function recordStakeEvent(
  context: Context,
  event: { block: Block; transaction: { hash: Hex }; log: { logIndex: number } },
  row: { provider: Address; kind: "stake" | "unbond" | "withdraw" | "slash" | "deregister"; amount: bigint; activeStake: bigint; unbondingStake: bigint; releaseAt?: bigint; caseId?: bigint },
): Promise<void> {
  await context.db
    .insert(stakeEvent)
    .values({
      id: `${event.transaction.hash}-${event.log.logIndex}`,
      ...row,
      blockNumber: event.block.number,
      timestamp: event.block.timestamp,
      transactionHash: event.transaction.hash,
      logIndex: event.log.logIndex,
    })
    .onConflictDoNothing();
}

async function setParameter(context: Context, name: string, value: bigint, block: Block): Promise<void> {
  await context.db
    .insert(parameter)
    .values({ name, value, updatedBlock: block.number, updatedAt: block.timestamp })
    .onConflictDoUpdate({ value, updatedBlock: block.number, updatedAt: block.timestamp });
}

// ------------------------------------------------------------------ registry

ponder.on("ProviderRegistry:ProviderRegistered", async ({ event, context }) => {
  // `jailed`: a jail carries into registration, even one made before the address had a row here.
  const { provider: address, name, metadataURI, jailed } = event.args;
  const min = await minStake(context);
  const existing = await context.db.find(provider, { address });
  if (existing) {
    // Registering again after deregistering: stake history carries over.
    await context.db.update(provider, { address }).set({
      name,
      metadataUri: metadataURI,
      registered: true,
      jailed,
      status: statusOf({ ...existing, registered: true, jailed }, min),
      registeredBlock: event.block.number,
      registeredAt: event.block.timestamp,
      updatedBlock: event.block.number,
      updatedAt: event.block.timestamp,
    });
    return;
  }
  await context.db.insert(provider).values({
    address,
    name,
    metadataUri: metadataURI,
    activeStake: 0n,
    unbondingStake: 0n,
    status: statusOf({ registered: true, jailed, activeStake: 0n }, min),
    registered: true,
    jailed,
    slashedTotal: 0n,
    openCases: 0,
    registeredBlock: event.block.number,
    registeredAt: event.block.timestamp,
    updatedBlock: event.block.number,
    updatedAt: event.block.timestamp,
  });
});

ponder.on("ProviderRegistry:ProviderUpdated", async ({ event, context }) => {
  await updateProvider(context, event.args.provider, event.block, { name: event.args.name, metadataUri: event.args.metadataURI });
});

ponder.on("ProviderRegistry:Staked", async ({ event, context }) => {
  const { provider: address, amount, activeStake } = event.args;
  await updateProvider(context, address, event.block, { activeStake });
  const row = await context.db.find(provider, { address });
  await recordStakeEvent(context, event, { provider: address, kind: "stake", amount, activeStake, unbondingStake: row?.unbondingStake ?? 0n });
});

ponder.on("ProviderRegistry:UnbondRequested", async ({ event, context }) => {
  const { provider: address, amount, releaseAt, activeStake, unbondingStake } = event.args;
  await updateProvider(context, address, event.block, { activeStake, unbondingStake });
  await recordStakeEvent(context, event, { provider: address, kind: "unbond", amount, activeStake, unbondingStake, releaseAt });
});

ponder.on("ProviderRegistry:Withdrawn", async ({ event, context }) => {
  const { provider: address, amount, unbondingStake } = event.args;
  await updateProvider(context, address, event.block, { unbondingStake });
  const row = await context.db.find(provider, { address });
  await recordStakeEvent(context, event, { provider: address, kind: "withdraw", amount, activeStake: row?.activeStake ?? 0n, unbondingStake });
});

ponder.on("ProviderRegistry:ProviderDeregistered", async ({ event, context }) => {
  const { provider: address, movedToUnbonding, releaseAt, unbondingStake } = event.args;
  await updateProvider(context, address, event.block, { registered: false, activeStake: 0n, unbondingStake });
  await recordStakeEvent(context, event, {
    provider: address,
    kind: "deregister",
    amount: movedToUnbonding,
    activeStake: 0n,
    unbondingStake,
    releaseAt,
  });
});

ponder.on("ProviderRegistry:Slashed", async ({ event, context }) => {
  const { provider: address, caseId, amount, activeStake, unbondingStake } = event.args;
  const current = await context.db.find(provider, { address });
  await updateProvider(context, address, event.block, {
    activeStake,
    unbondingStake,
    slashedTotal: (current?.slashedTotal ?? 0n) + amount,
  });
  await recordStakeEvent(context, event, { provider: address, kind: "slash", amount, activeStake, unbondingStake, caseId });
});

ponder.on("ProviderRegistry:EndpointSet", async ({ event, context }) => {
  const { provider: address, chainId, url } = event.args;
  await context.db
    .insert(endpoint)
    .values({ provider: address, chainId, url, updatedBlock: event.block.number, updatedAt: event.block.timestamp })
    .onConflictDoUpdate({ url, updatedBlock: event.block.number, updatedAt: event.block.timestamp });
  await updateProvider(context, address, event.block, {});
});

ponder.on("ProviderRegistry:EndpointRemoved", async ({ event, context }) => {
  const { provider: address, chainId } = event.args;
  await context.db.delete(endpoint, { provider: address, chainId });
  await updateProvider(context, address, event.block, {});
});

ponder.on("ProviderRegistry:ProviderJailed", async ({ event, context }) => {
  await updateProvider(context, event.args.provider, event.block, { jailed: true });
});

ponder.on("ProviderRegistry:ProviderUnjailed", async ({ event, context }) => {
  await updateProvider(context, event.args.provider, event.block, { jailed: false });
});

ponder.on("ProviderRegistry:OpenCasesChanged", async ({ event, context }) => {
  await updateProvider(context, event.args.provider, event.block, { openCases: Number(event.args.openCases) });
});

ponder.on("ProviderRegistry:MinStakeChanged", async ({ event, context }) => {
  const min = event.args.newMinStake;
  await setParameter(context, "minStake", min, event.block);
  // Eligibility of every provider depends on the minimum.
  for (const row of await context.db.sql.select().from(provider)) {
    const status = statusOf(row, min);
    if (status !== row.status) await context.db.update(provider, { address: row.address }).set({ status });
  }
});

ponder.on("ProviderRegistry:UnbondingPeriodChanged", async ({ event, context }) => {
  await setParameter(context, "unbondingPeriod", event.args.newPeriod, event.block);
});

// ------------------------------------------------------------------ slashing manager

ponder.on("SlashingManager:CaseOpened", async ({ event, context }) => {
  const { caseId, provider: address, watcher, amount, bond, expiresAt, evidenceHash, evidence } = event.args;
  await context.db
    .insert(slashingCase)
    .values({
      id: caseId,
      provider: address,
      watcher,
      amount,
      bond,
      evidence,
      evidenceHash,
      status: "open",
      expiresAt,
      openedBlock: event.block.number,
      openedAt: event.block.timestamp,
      transactionHash: event.transaction.hash,
    })
    .onConflictDoNothing();
});

ponder.on("SlashingManager:CaseUpheld", async ({ event, context }) => {
  const { caseId, slashed, watcherReward, toTreasury } = event.args;
  await context.db.update(slashingCase, { id: caseId }).set({
    status: "upheld",
    slashed,
    watcherReward,
    toTreasury,
    resolvedBlock: event.block.number,
    resolvedAt: event.block.timestamp,
  });
});

ponder.on("SlashingManager:CaseRejected", async ({ event, context }) => {
  await context.db.update(slashingCase, { id: event.args.caseId }).set({
    status: "rejected",
    resolvedBlock: event.block.number,
    resolvedAt: event.block.timestamp,
  });
});

ponder.on("SlashingManager:CaseExpired", async ({ event, context }) => {
  await context.db.update(slashingCase, { id: event.args.caseId }).set({
    status: "expired",
    resolvedBlock: event.block.number,
    resolvedAt: event.block.timestamp,
  });
});

ponder.on("SlashingManager:CaseBondChanged", async ({ event, context }) => {
  await setParameter(context, "caseBond", event.args.newBond, event.block);
});
ponder.on("SlashingManager:CaseTtlChanged", async ({ event, context }) => {
  await setParameter(context, "caseTtl", event.args.newTtl, event.block);
});
ponder.on("SlashingManager:MaxSlashBpsChanged", async ({ event, context }) => {
  await setParameter(context, "maxSlashBps", BigInt(event.args.newBps), event.block);
});
ponder.on("SlashingManager:WatcherRewardBpsChanged", async ({ event, context }) => {
  await setParameter(context, "watcherRewardBps", BigInt(event.args.newBps), event.block);
});

// ------------------------------------------------------------------ governance

/** A proposal's calls to `target`, decoded with `abi`; calls it cannot decode (another contract's functions) are left out. */
function callsTo<const A extends Abi>(targets: readonly Address[], calldatas: readonly Hex[], target: Address, abi: A) {
  return targets.flatMap((to, i) => {
    if (to.toLowerCase() !== target.toLowerCase()) return [];
    try {
      return [decodeFunctionData({ abi, data: calldatas[i] })];
    } catch {
      return [];
    }
  });
}

/** Whether a proposal resolves a slashing case (its first call to upholdCase or rejectCase), and which. */
function slashingAction(
  targets: readonly Address[],
  calldatas: readonly Hex[],
  manager: Address,
): { action: "uphold_case" | "reject_case" | "other"; caseId: bigint | null } {
  for (const call of callsTo(targets, calldatas, manager, SlashingManagerAbi)) {
    if (call.functionName === "upholdCase") return { action: "uphold_case", caseId: call.args[0] };
    if (call.functionName === "rejectCase") return { action: "reject_case", caseId: call.args[0] };
  }
  return { action: "other", caseId: null };
}

/** The providers a proposal jails and unjails: calls to jail/unjail on the registry (a description may not say). */
function jailings(targets: readonly Address[], calldatas: readonly Hex[], registry: Address): { jails: Address | null; unjails: Address | null } {
  let jails: Address | null = null;
  let unjails: Address | null = null;
  for (const call of callsTo(targets, calldatas, registry, ProviderRegistryAbi)) {
    if (call.functionName === "jail") jails = call.args[0];
    if (call.functionName === "unjail") unjails = call.args[0];
  }
  return { jails, unjails };
}

ponder.on("DinGovernor:ProposalCreated", async ({ event, context }) => {
  const { proposalId, proposer, targets, values, calldatas, voteStart, voteEnd, description } = event.args;
  const { action, caseId } = slashingAction(targets, calldatas, context.contracts.SlashingManager.address as Address);
  const { jails, unjails } = jailings(targets, calldatas, context.contracts.ProviderRegistry.address as Address);
  await context.db
    .insert(proposal)
    .values({
      id: proposalId,
      proposer,
      description,
      targets: [...targets],
      values: values.map(String),
      calldatas: [...calldatas],
      action,
      caseId,
      jails,
      unjails,
      state: "pending",
      voteStart,
      voteEnd,
      forVotes: 0n,
      againstVotes: 0n,
      abstainVotes: 0n,
      createdBlock: event.block.number,
      createdAt: event.block.timestamp,
      updatedAt: event.block.timestamp,
    })
    .onConflictDoNothing();
  // A case points to the proposal that matters for it: the latest one made while governance could
  // still resolve it (open, not past its expiry, as the manager checks), so a new proposal after a
  // defeated one replaces it; then the one that executed (below), which beats a rival made during its
  // vote. A proposal made after the case closed can never pass and changes nothing.
  const resolving = caseId === null ? undefined : await context.db.find(slashingCase, { id: caseId });
  if (resolving && resolving.status === "open" && event.block.timestamp <= resolving.expiresAt) {
    await context.db.update(slashingCase, { id: resolving.id }).set({ proposalId });
  }
});

ponder.on("DinGovernor:ProposalQueued", async ({ event, context }) => {
  await context.db
    .update(proposal, { id: event.args.proposalId })
    .set({ state: "queued", eta: event.args.etaSeconds, updatedAt: event.block.timestamp });
});

ponder.on("DinGovernor:ProposalExecuted", async ({ event, context }) => {
  const { proposalId } = event.args;
  const executed = await context.db.update(proposal, { id: proposalId }).set({ state: "executed", updatedAt: event.block.timestamp });
  // Its upholdCase/rejectCase succeeded (the CaseUpheld/CaseRejected came just before): it resolved the case.
  if (executed.caseId !== null && (await context.db.find(slashingCase, { id: executed.caseId }))) {
    await context.db.update(slashingCase, { id: executed.caseId }).set({ proposalId });
  }
});

ponder.on("DinGovernor:ProposalCanceled", async ({ event, context }) => {
  await context.db.update(proposal, { id: event.args.proposalId }).set({ state: "canceled", updatedAt: event.block.timestamp });
});

ponder.on("DinGovernor:VoteCast", async ({ event, context }) => {
  const { voter, proposalId, support, weight, reason } = event.args;
  await context.db
    .insert(vote)
    .values({
      proposalId,
      voter,
      support,
      weight,
      reason,
      blockNumber: event.block.number,
      timestamp: event.block.timestamp,
      transactionHash: event.transaction.hash,
    })
    .onConflictDoNothing();
  const tally = support === 1 ? "forVotes" : support === 0 ? "againstVotes" : "abstainVotes";
  await context.db
    .update(proposal, { id: proposalId })
    .set((row) => ({ [tally]: row[tally] + weight, updatedAt: event.block.timestamp }));
});

ponder.on("DinGovernor:VotingDelaySet", async ({ event, context }) => {
  await setParameter(context, "votingDelay", event.args.newVotingDelay, event.block);
});
ponder.on("DinGovernor:VotingPeriodSet", async ({ event, context }) => {
  await setParameter(context, "votingPeriod", event.args.newVotingPeriod, event.block);
});
ponder.on("DinGovernor:ProposalThresholdSet", async ({ event, context }) => {
  await setParameter(context, "proposalThreshold", event.args.newProposalThreshold, event.block);
});
ponder.on("DinGovernor:QuorumNumeratorUpdated", async ({ event, context }) => {
  await setParameter(context, "quorumNumerator", event.args.newQuorumNumerator, event.block);
});
ponder.on("TimelockController:MinDelayChange", async ({ event, context }) => {
  await setParameter(context, "timelockDelay", event.args.newDuration, event.block);
});
