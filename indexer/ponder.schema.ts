import { index, onchainEnum, onchainTable, primaryKey, relations } from "ponder";

// The registry as gateways and dashboards read it: everything here is projected from events,
// so nobody needs a chain read. Amounts are token wei (numeric), times unix seconds.

/** Where a provider stands: eligible for traffic only when "active". */
export const providerStatus = onchainEnum("provider_status", ["active", "below_minimum", "jailed", "deregistered"]);

export const provider = onchainTable(
  "provider",
  (t) => ({
    address: t.hex().primaryKey(),
    name: t.text().notNull(),
    metadataUri: t.text().notNull(),
    activeStake: t.bigint().notNull(),
    unbondingStake: t.bigint().notNull(),
    status: providerStatus("status").notNull(),
    registered: t.boolean().notNull(),
    jailed: t.boolean().notNull(),
    slashedTotal: t.bigint().notNull(),
    openCases: t.integer().notNull(),
    registeredBlock: t.bigint().notNull(),
    registeredAt: t.bigint().notNull(),
    updatedBlock: t.bigint().notNull(),
    updatedAt: t.bigint().notNull(),
  }),
  (table) => ({ statusIndex: index().on(table.status) }),
);

/** One URL per provider and chain id; the row is deleted when the endpoint is removed. */
export const endpoint = onchainTable(
  "endpoint",
  (t) => ({
    provider: t.hex().notNull(),
    chainId: t.bigint().notNull(),
    url: t.text().notNull(),
    updatedBlock: t.bigint().notNull(),
    updatedAt: t.bigint().notNull(),
  }),
  (table) => ({
    pk: primaryKey({ columns: [table.provider, table.chainId] }),
    chainIndex: index().on(table.chainId),
  }),
);

export const stakeEventKind = onchainEnum("stake_event_kind", ["stake", "unbond", "withdraw", "slash", "deregister"]);

/** Every change of a provider's stake, in chain order. */
export const stakeEvent = onchainTable(
  "stake_event",
  (t) => ({
    id: t.text().primaryKey(), // `${txHash}-${logIndex}`
    provider: t.hex().notNull(),
    kind: stakeEventKind("kind").notNull(),
    amount: t.bigint().notNull(),
    activeStake: t.bigint().notNull(), // after the change
    unbondingStake: t.bigint().notNull(), // after the change
    releaseAt: t.bigint(), // unbond and deregister: when the amount can be withdrawn
    caseId: t.bigint(), // slash: the case it executed
    blockNumber: t.bigint().notNull(),
    timestamp: t.bigint().notNull(),
    transactionHash: t.hex().notNull(),
    logIndex: t.integer().notNull(),
  }),
  (table) => ({ providerIndex: index().on(table.provider) }),
);

export const caseStatus = onchainEnum("case_status", ["open", "upheld", "rejected", "expired"]);

export const slashingCase = onchainTable(
  "slashing_case",
  (t) => ({
    id: t.bigint().primaryKey(),
    provider: t.hex().notNull(),
    watcher: t.hex().notNull(),
    amount: t.bigint().notNull(), // asked for
    bond: t.bigint().notNull(),
    evidence: t.hex().notNull(),
    evidenceHash: t.hex().notNull(),
    status: caseStatus("status").notNull(),
    expiresAt: t.bigint().notNull(),
    slashed: t.bigint(), // upheld: taken from the provider
    watcherReward: t.bigint(),
    toTreasury: t.bigint(),
    proposalId: t.bigint(), // the proposal that resolved it; while open (and once expired), the latest made for it
    openedBlock: t.bigint().notNull(),
    openedAt: t.bigint().notNull(),
    resolvedBlock: t.bigint(),
    resolvedAt: t.bigint(),
    transactionHash: t.hex().notNull(),
  }),
  (table) => ({ providerIndex: index().on(table.provider), statusIndex: index().on(table.status) }),
);

/**
 * Governor proposals. `state` follows the events (pending → queued → executed, or canceled);
 * whether a vote is active, succeeded or defeated also depends on the clock: compare `voteStart`
 * and `voteEnd` with the time, and the tallies with `quorum`.
 */
export const proposalState = onchainEnum("proposal_state", ["pending", "queued", "executed", "canceled"]);
export const proposalAction = onchainEnum("proposal_action", ["uphold_case", "reject_case", "other"]);

export const proposal = onchainTable("proposal", (t) => ({
  id: t.bigint().primaryKey(),
  proposer: t.hex().notNull(),
  description: t.text().notNull(),
  targets: t.json().$type<string[]>().notNull(),
  values: t.json().$type<string[]>().notNull(),
  calldatas: t.json().$type<string[]>().notNull(),
  action: proposalAction("action").notNull(),
  caseId: t.bigint(), // the slashing case it resolves, when it does
  jails: t.hex(), // the provider it jails (ProviderRegistry.jail), when it does: also beside a case's uphold
  unjails: t.hex(), // the provider it unjails, when it does
  state: proposalState("state").notNull(),
  voteStart: t.bigint().notNull(),
  voteEnd: t.bigint().notNull(),
  eta: t.bigint(), // queued: when the timelock lets it execute
  forVotes: t.bigint().notNull(),
  againstVotes: t.bigint().notNull(),
  abstainVotes: t.bigint().notNull(),
  createdBlock: t.bigint().notNull(),
  createdAt: t.bigint().notNull(),
  updatedAt: t.bigint().notNull(),
}));

export const vote = onchainTable(
  "vote",
  (t) => ({
    proposalId: t.bigint().notNull(),
    voter: t.hex().notNull(),
    support: t.integer().notNull(), // 0 against, 1 for, 2 abstain
    weight: t.bigint().notNull(),
    reason: t.text().notNull(),
    blockNumber: t.bigint().notNull(),
    timestamp: t.bigint().notNull(),
    transactionHash: t.hex().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.proposalId, table.voter] }) }),
);

/** Governance parameters as last set: minStake, unbondingPeriod, caseBond, caseTtl, maxSlashBps,
 * watcherRewardBps, votingDelay, votingPeriod, quorumNumerator, proposalThreshold, timelockDelay. */
export const parameter = onchainTable("parameter", (t) => ({
  name: t.text().primaryKey(),
  value: t.bigint().notNull(),
  updatedBlock: t.bigint().notNull(),
  updatedAt: t.bigint().notNull(),
}));

export const providerRelations = relations(provider, ({ many }) => ({
  endpoints: many(endpoint),
  stakeEvents: many(stakeEvent),
  cases: many(slashingCase),
}));
// Relations are named `operator` because the `provider` column already holds the address.
export const endpointRelations = relations(endpoint, ({ one }) => ({
  operator: one(provider, { fields: [endpoint.provider], references: [provider.address] }),
}));
export const stakeEventRelations = relations(stakeEvent, ({ one }) => ({
  operator: one(provider, { fields: [stakeEvent.provider], references: [provider.address] }),
}));
export const slashingCaseRelations = relations(slashingCase, ({ one }) => ({
  operator: one(provider, { fields: [slashingCase.provider], references: [provider.address] }),
  proposal: one(proposal, { fields: [slashingCase.proposalId], references: [proposal.id] }),
}));
export const proposalRelations = relations(proposal, ({ many }) => ({ votes: many(vote) }));
export const voteRelations = relations(vote, ({ one }) => ({
  proposal: one(proposal, { fields: [vote.proposalId], references: [proposal.id] }),
}));
