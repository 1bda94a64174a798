import { decodeFunctionData, encodeFunctionData, keccak256, toBytes, type Address, type Hex } from "viem";
import { abis } from "./abis.ts";
import { formatDue, formatTime, formatTokens, parseAddress, parseId, parseProposalId } from "./amounts.ts";
import { caseStatusNames, existingCase, requireResolvableCase, type Case } from "./caseCommands.ts";
import { CliError, usageError } from "./cliError.ts";
import { chainTime, requireWallet, type CliContext } from "./context.ts";
import type { Outcome } from "./outcome.ts";
import { read, transact } from "./transact.ts";

export const proposalStateNames = ["pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed"] as const;
const supportValues = { against: 0, for: 1, abstain: 2 } as const;

type Proposal = { id: bigint; proposer: Address; targets: Address[]; values: bigint[]; calldatas: Hex[]; description: string; voteStart: bigint; voteEnd: bigint };

const governor = (ctx: CliContext) => ({ address: ctx.contracts.DinGovernor, abi: abis.governor });

export async function delegate(ctx: CliContext, flags: { to?: string }): Promise<Outcome> {
  const self = requireWallet(ctx).account.address;
  const to = flags.to ? parseAddress("--to", flags.to) : self;
  const token = { address: ctx.contracts.DinToken, abi: abis.token };
  // Delegating again to the same address would cost gas and change nothing.
  const current = await read<Address>(ctx, { ...token, functionName: "delegates", args: [self] });
  const hash = current.toLowerCase() === to.toLowerCase() ? null : await transact(ctx, { ...token, functionName: "delegate", args: [to] });
  const votes = await read<bigint>(ctx, { ...token, functionName: "getVotes", args: [to] });
  const whom = to === self ? "yourself" : to;
  return {
    message:
      hash === null
        ? `your votes are delegated to ${whom} already; ${to} has ${formatTokens(votes)} of votes (nothing sent)`
        : `delegated your votes to ${whom}; ${to} now has ${formatTokens(votes)} of votes (tx ${hash})`,
    data: { delegatee: to, votes, transaction: hash },
  };
}

export async function proposeSlash(ctx: CliContext, flags: { case?: string; reject?: boolean; jail?: boolean; description?: string }): Promise<Outcome> {
  const caseId = parseId("--case", flags.case);
  if (flags.reject && flags.jail) throw usageError("--jail goes with upholding a case, not with --reject");
  // A proposal on a case that cannot be resolved would pass and then fail at execution.
  const { provider: accused, expiresAt } = await requireResolvableCase(ctx, caseId);
  const earliest = await earliestExecution(ctx);
  if (earliest > expiresAt) {
    throw new CliError(
      `case ${caseId} expires at ${formatTime(expiresAt)}, before a proposal made now could be executed (${formatTime(earliest)}, after the voting delay, the vote and the timelock delay): it can only be expired then (din case expire --case ${caseId})`,
    );
  }
  const functionName = flags.reject ? "rejectCase" : "upholdCase";
  const targets: Address[] = [ctx.contracts.SlashingManager];
  const calldatas: Hex[] = [encodeFunctionData({ abi: abis.manager, functionName, args: [caseId] })];
  if (flags.jail) {
    // The same vote also jails the provider, so routers drop it at once.
    targets.push(ctx.contracts.ProviderRegistry);
    calldatas.push(encodeFunctionData({ abi: abis.registry, functionName: "jail", args: [accused] }));
  }
  const others = (await proposalsWithStateOn(ctx, caseId)).filter((p) => onItsWay(p.state));
  const made = await propose(ctx, targets, calldatas, flags.description ?? `${flags.reject ? "Reject" : "Uphold"} slashing case ${caseId}${flags.jail ? " and jail the provider" : ""}`);
  // Both may pass; the first to run closes the case, and the other then fails.
  const note = others.length === 0 ? "" : `\n  note: case ${caseId} has ${others.length === 1 ? "another proposal" : "other proposals"} on its way: ${listed(ctx, others)}; whichever runs first closes the case, and the other cannot run then`;
  return {
    message: `proposed to ${flags.reject ? "reject" : "uphold"} case ${caseId}${flags.jail ? " and jail the provider" : ""}: ${made.message}${note}`,
    data: { proposalId: made.proposalId, caseId, action: functionName, jail: flags.jail === true, voteStart: made.voteStart, voteEnd: made.voteEnd, otherProposalsOnCase: others.map((p) => p.id), transaction: made.transaction },
  };
}

export async function proposeUnjail(ctx: CliContext, flags: { provider?: string; description?: string }): Promise<Outcome> {
  const provider = parseAddress("--provider", flags.provider);
  const state = await read<{ registered: boolean; jailed: boolean }>(ctx, { address: ctx.contracts.ProviderRegistry, abi: abis.registry, functionName: "getProvider", args: [provider] });
  if (!state.jailed) throw new CliError(`${provider} is not jailed${state.registered ? "" : " (nor registered)"}: there is nothing to unjail`);
  const calldata = encodeFunctionData({ abi: abis.registry, functionName: "unjail", args: [provider] });
  const made = await propose(ctx, [ctx.contracts.ProviderRegistry], [calldata], flags.description ?? `Unjail provider ${provider}`);
  return {
    message: `proposed to unjail ${provider}: ${made.message}`,
    data: { proposalId: made.proposalId, provider, action: "unjail", voteStart: made.voteStart, voteEnd: made.voteEnd, transaction: made.transaction },
  };
}

/** Makes a proposal of `calls` under `text`; its id, when its vote runs, and that in words. */
async function propose(ctx: CliContext, targets: Address[], calldatas: Hex[], text: string) {
  if (text.trim() === "") throw usageError("--description is empty: say in words what the proposal does, or leave the flag out for the usual text");
  const values = targets.map(() => 0n);
  // The suffix lets only this account make the proposal (OpenZeppelin's Governor checks it): nobody
  // can make the same proposal first and cancel it, which would block this one.
  const proposer = requireWallet(ctx).account.address;
  const description = `${text} #proposer=${proposer}`;
  const proposalId = await read<bigint>(ctx, { ...governor(ctx), functionName: "hashProposal", args: [targets, values, calldatas, keccak256(toBytes(description))] });
  // A proposal is known by its action and description: the same one again (after a defeat, say) is refused.
  if ((await read<bigint>(ctx, { ...governor(ctx), functionName: "proposalSnapshot", args: [proposalId] })) !== 0n) {
    throw new CliError(
      `you made this proposal before (proposal ${proposalId}, ${await proposalState(ctx, proposalId)}): a proposal is known by its action and description, so give this one another --description to propose it again`,
    );
  }
  const transaction = await transact(ctx, { ...governor(ctx), functionName: "propose", args: [targets, values, calldatas, description] });
  const [voteStart, voteEnd, now] = await Promise.all([
    read<bigint>(ctx, { ...governor(ctx), functionName: "proposalSnapshot", args: [proposalId] }),
    read<bigint>(ctx, { ...governor(ctx), functionName: "proposalDeadline", args: [proposalId] }),
    chainTime(ctx),
  ]);
  const message = `proposal ${proposalId}\n  voting opens after ${formatDue(voteStart, now)} and closes at ${formatDue(voteEnd, now)} (tx ${transaction})`;
  return { proposalId, voteStart, voteEnd, transaction, message };
}

export async function vote(ctx: CliContext, flags: { proposal?: string; case?: string; support?: string; reason?: string }): Promise<Outcome> {
  const support = supportValues[flags.support as keyof typeof supportValues];
  if (support === undefined) throw usageError(`--support must be for, against or abstain, not "${flags.support ?? ""}"`);
  const voter = requireWallet(ctx).account.address;
  const proposal = await chosenProposal(ctx, flags, "vote");
  const proposalId = proposal.id;
  const snapshot = await requireStep(ctx, proposalId, "vote"); // when voting opens, or why it is over
  // The governor counts a vote of weight 0 without complaint; refuse it instead.
  const votes = await read<bigint>(ctx, { ...governor(ctx), functionName: "getVotes", args: [voter, snapshot] });
  if (votes === 0n) {
    throw new CliError(
      `${voter} had no votes at proposal ${proposalId}'s snapshot (${formatTime(snapshot)}): tokens count only when delegated before a proposal's snapshot, so this vote would weigh nothing; delegate now with din gov delegate to vote on future proposals`,
    );
  }
  const hash = await transact(ctx, {
    ...governor(ctx),
    functionName: flags.reason ? "castVoteWithReason" : "castVote",
    args: flags.reason ? [proposalId, support, flags.reason] : [proposalId, support],
  });
  const [against, forVotes, abstain] = await read<[bigint, bigint, bigint]>(ctx, { ...governor(ctx), functionName: "proposalVotes", args: [proposalId] });
  return {
    message: `voted ${flags.support} on proposal ${proposalId} (${actionOf(ctx, proposal)}); tally: for ${formatTokens(forVotes)}, against ${formatTokens(against)}, abstain ${formatTokens(abstain)} (tx ${hash})`,
    data: { proposalId, support: flags.support, forVotes, againstVotes: against, abstainVotes: abstain, transaction: hash },
  };
}

export async function queue(ctx: CliContext, flags: { proposal?: string; case?: string }): Promise<Outcome> {
  const proposal = await chosenProposal(ctx, flags, "queue");
  await requireStep(ctx, proposal.id, "queue");
  await requireCaseOpenAtExecution(ctx, proposal);
  const hash = await transact(ctx, { ...governor(ctx), functionName: "queue", args: proposalArgs(proposal) });
  const [eta, now] = await Promise.all([read<bigint>(ctx, { ...governor(ctx), functionName: "proposalEta", args: [proposal.id] }), chainTime(ctx)]);
  return {
    message: `queued proposal ${proposal.id} (${actionOf(ctx, proposal)}) in the timelock: executable from ${formatDue(eta, now)} (tx ${hash})`,
    data: { proposalId: proposal.id, eta, transaction: hash },
  };
}

export async function execute(ctx: CliContext, flags: { proposal?: string; case?: string }): Promise<Outcome> {
  const proposal = await chosenProposal(ctx, flags, "execute");
  await requireStep(ctx, proposal.id, "execute");
  const hash = await transact(ctx, { ...governor(ctx), functionName: "execute", args: proposalArgs(proposal) });
  return {
    message: `executed proposal ${proposal.id}: ${actionOf(ctx, proposal)} (tx ${hash})`,
    data: { proposalId: proposal.id, action: actionOf(ctx, proposal), description: proposal.description, transaction: hash },
  };
}

export async function status(ctx: CliContext, flags: { proposal?: string; case?: string }): Promise<Outcome> {
  if (flags.proposal !== undefined && flags.case !== undefined) throw usageError("give --proposal or --case, not both");
  const only = flags.proposal !== undefined ? parseProposalId(flags.proposal) : undefined;
  const onCase = flags.case !== undefined ? parseId("--case", flags.case) : undefined;
  const proposals = (await allProposals(ctx)).filter((p) => (only === undefined || p.id === only) && (onCase === undefined || caseOf(ctx, p) === onCase));
  if (only !== undefined && proposals.length === 0) throw new CliError(`there is no proposal ${only}`);
  if (onCase !== undefined && proposals.length === 0) {
    await existingCase(ctx, onCase); // a case that does not exist is said so, not offered a proposal
    return { message: `no proposal on case ${onCase} yet (din gov propose-slash --case ${onCase})`, data: { proposals: [] } };
  }
  const rows = [];
  const now = await chainTime(ctx);
  for (const p of proposals) {
    const [stateIndex, votes, eta] = await Promise.all([
      read<number>(ctx, { ...governor(ctx), functionName: "state", args: [p.id] }),
      read<[bigint, bigint, bigint]>(ctx, { ...governor(ctx), functionName: "proposalVotes", args: [p.id] }),
      read<bigint>(ctx, { ...governor(ctx), functionName: "proposalEta", args: [p.id] }),
    ]);
    // The quorum is a fraction of the supply at the snapshot: unknown (null) until voting opens.
    const quorum = await read<bigint>(ctx, { ...governor(ctx), functionName: "quorum", args: [p.voteStart] }).catch(() => null);
    const state = proposalStateNames[stateIndex] ?? "unknown";
    const deadEnd = state === "succeeded" || state === "queued" ? await cannotRun(ctx, p, state === "queued" ? eta : now + 1n + (await timelockDelay(ctx)), now) : null;
    rows.push({ ...p, action: actionOf(ctx, p), state, deadEnd, againstVotes: votes[0], forVotes: votes[1], abstainVotes: votes[2], quorum, eta });
  }
  const lines = rows.map(
    (r) =>
      `proposal ${r.id}\n  does: ${r.action}\n  described as "${readable(r.description)}" by ${r.proposer}\n  state ${r.state}${r.deadEnd === null ? "" : ` but can no longer run: ${r.deadEnd}`}; for ${formatTokens(r.forVotes)}, against ${formatTokens(r.againstVotes)}, abstain ${formatTokens(r.abstainVotes)}; quorum ${r.quorum === null ? "set when voting opens" : formatTokens(r.quorum)}\n  voting ${formatDue(r.voteStart, now)} to ${formatDue(r.voteEnd, now)}${r.eta > 0n ? `; executable from ${formatDue(r.eta, now)}` : ""}`,
  );
  return { message: lines.length === 0 ? "no proposals" : lines.join("\n"), data: { proposals: rows } };
}

/** The proposals resolving case `caseId`, with their state and what each does: for `din case show`. */
export async function proposalsOnCase(ctx: CliContext, caseId: bigint): Promise<{ id: bigint; state: string; action: string }[]> {
  return (await proposalsWithStateOn(ctx, caseId)).map((p) => ({ id: p.id, state: p.state, action: actionOf(ctx, p) }));
}

/** The chain time at which a proposal made now could be executed at the soonest. */
export async function earliestExecution(ctx: CliContext): Promise<bigint> {
  const [delay, period, minDelay, now] = await Promise.all([
    read<bigint>(ctx, { ...governor(ctx), functionName: "votingDelay" }),
    read<bigint>(ctx, { ...governor(ctx), functionName: "votingPeriod" }),
    timelockDelay(ctx),
    chainTime(ctx),
  ]);
  return now + delay + period + minDelay;
}

async function timelockDelay(ctx: CliContext): Promise<bigint> {
  const timelock = await read<Address>(ctx, { ...governor(ctx), functionName: "timelock" });
  return await read<bigint>(ctx, { address: timelock, abi: abis.timelock, functionName: "getMinDelay" });
}

/**
 * What a proposal does, read from its calls: its description is the proposer's own words, and may
 * say otherwise ("Reject case 7" over a call that upholds it).
 */
function actionOf(ctx: CliContext, p: Proposal): string {
  return p.targets.map((target, i) => callText(ctx, target, p.values[i], p.calldatas[i])).join(", then ");
}

function callText(ctx: CliContext, target: Address, value: bigint, data: Hex): string {
  const to = target.toLowerCase();
  const contract = to === ctx.contracts.SlashingManager.toLowerCase() ? "manager" : to === ctx.contracts.ProviderRegistry.toLowerCase() ? "registry" : null;
  if (contract !== null) {
    try {
      const call = decodeFunctionData({ abi: abis[contract], data });
      const [first] = (call.args ?? []) as unknown[];
      const known: Record<string, string> = {
        upholdCase: `uphold case ${String(first)} (slash its provider)`,
        rejectCase: `reject case ${String(first)} (its watcher's bond goes to the treasury)`,
        jail: `jail provider ${String(first)}`,
        unjail: `unjail provider ${String(first)}`,
      };
      return known[call.functionName] ?? `${contract === "manager" ? "SlashingManager" : "ProviderRegistry"}.${call.functionName}(${(call.args ?? []).map(String).join(", ")})`;
    } catch {
      // not one of its functions: said as an unknown call below
    }
  }
  return `call ${target} with data ${data.length > 74 ? `${data.slice(0, 74)}…` : data}${value > 0n ? `, sending ${value} wei` : ""}`;
}

/** The slashing case a proposal resolves (its call to upholdCase or rejectCase), or null. */
function caseOf(ctx: CliContext, p: Proposal): bigint | null {
  for (const [i, target] of p.targets.entries()) {
    if (target.toLowerCase() !== ctx.contracts.SlashingManager.toLowerCase()) continue;
    try {
      const call = decodeFunctionData({ abi: abis.manager, data: p.calldatas[i] });
      if (call.functionName === "upholdCase" || call.functionName === "rejectCase") return call.args?.[0] as bigint;
    } catch {
      // another call to the manager
    }
  }
  return null;
}

/**
 * Throws when a proposal resolving a case, queued now, could only run after the case's deadline:
 * its execution would fail, and queueing it would spend a transaction for nothing.
 */
async function requireCaseOpenAtExecution(ctx: CliContext, p: Proposal): Promise<void> {
  const [minDelay, now] = await Promise.all([timelockDelay(ctx), chainTime(ctx)]);
  const eta = now + 1n + minDelay; // the queueing transaction's block is a second later at the least
  const why = await cannotRun(ctx, p, eta, now);
  if (why !== null) throw new CliError(`proposal ${p.id} can no longer run: ${why}`);
}

/**
 * Why a proposal resolving a case, run at `runAt` (chain time), would fail: the case is closed, or
 * its deadline comes first. Null when it would not (or it resolves no case).
 */
async function cannotRun(ctx: CliContext, p: Proposal, runAt: bigint, now: bigint): Promise<string | null> {
  const caseId = caseOf(ctx, p);
  if (caseId === null) return null;
  const c = await read<Case>(ctx, { address: ctx.contracts.SlashingManager, abi: abis.manager, functionName: "getCase", args: [caseId] });
  if (c.status !== 1) return `case ${caseId} is ${caseStatusNames[c.status] ?? "closed"} already`;
  if (now > c.expiresAt) return `case ${caseId} passed its deadline at ${formatTime(c.expiresAt)} (chain time now ${formatTime(now)}); anyone may expire it: din case expire --case ${caseId}`;
  if (runAt > c.expiresAt) {
    return `case ${caseId} expires at ${formatTime(c.expiresAt)}, before the proposal could run (${formatTime(runAt)}, after the timelock delay; chain time now ${formatTime(now)}); it can only be expired then (din case expire --case ${caseId})`;
  }
  return null;
}

async function proposalState(ctx: CliContext, id: bigint): Promise<(typeof proposalStateNames)[number]> {
  return proposalStateNames[await read<number>(ctx, { ...governor(ctx), functionName: "state", args: [id] })];
}

/**
 * Throws, saying what comes first or why it is too late, unless proposal `id` can be voted on,
 * queued or executed now by its state and the chain's clock; returns its snapshot (when votes count).
 */
async function requireStep(ctx: CliContext, id: bigint, step: "vote" | "queue" | "execute"): Promise<bigint> {
  const [state, snapshot, deadline, eta, now] = await Promise.all([
    proposalState(ctx, id),
    read<bigint>(ctx, { ...governor(ctx), functionName: "proposalSnapshot", args: [id] }),
    read<bigint>(ctx, { ...governor(ctx), functionName: "proposalDeadline", args: [id] }),
    read<bigint>(ctx, { ...governor(ctx), functionName: "proposalEta", args: [id] }),
    chainTime(ctx),
  ]);
  const then = {
    vote: "vote then",
    queue: "it can be queued after that, if it passes",
    execute: "if it passes, queue it after that (din gov queue), then execute it once the timelock delay has passed",
  }[step];
  const votingOver = `voting on proposal ${id} closed at ${formatDue(deadline, now)}`;
  const cannot = step === "vote" ? "voted on" : `${step}d`;
  const problem = {
    // (Voting opens after its snapshot: at it, the proposal is still pending.)
    pending: `voting on proposal ${id} opens after ${formatDue(snapshot, now)} and closes at ${formatDue(deadline, now)}; ${then}`,
    active: step === "vote" ? undefined : `voting on proposal ${id} is open until ${formatDue(deadline, now)}: ${then}`,
    canceled: `proposal ${id} was canceled: it cannot be ${cannot}`,
    defeated: `${step === "vote" ? `${votingOver}: ` : ""}proposal ${id} was defeated (it missed quorum, or had no more votes for than against): it cannot be ${cannot}`,
    succeeded:
      step === "vote"
        ? `${votingOver}: proposal ${id} passed; queue it with din gov queue --proposal ${id}`
        : step === "queue"
          ? undefined
          : `proposal ${id} passed but is not queued yet: queue it first with din gov queue --proposal ${id}`,
    // The timelock runs the operation from eta on, by the chain's clock.
    queued:
      step === "execute"
        ? now < eta
          ? `proposal ${id} is queued; executable from ${formatDue(eta, now)}`
          : undefined
        : `${step === "vote" ? `${votingOver}: ` : ""}proposal ${id} is already queued; executable from ${formatDue(eta, now)} (din gov execute --proposal ${id})`,
    expired: `proposal ${id} expired: it cannot be ${cannot}`,
    executed: `proposal ${id} was already executed`,
  }[state];
  if (problem) throw new CliError(problem);
  return snapshot;
}

/** A description as people read it: without the proposer suffix that only the governor needs (see proposeSlash). */
function readable(description: string): string {
  return description.replace(/ #proposer=0x[0-9a-fA-F]{40}$/, "");
}

function proposalArgs(p: Proposal): readonly unknown[] {
  return [p.targets, p.values, p.calldatas, keccak256(toBytes(p.description))];
}

/** Proposals live in ProposalCreated events; the governor keeps only their hash. */
async function allProposals(ctx: CliContext): Promise<Proposal[]> {
  const logs = await ctx.publicClient.getContractEvents({
    address: ctx.contracts.DinGovernor,
    abi: abis.governor,
    eventName: "ProposalCreated",
    fromBlock: ctx.startBlock,
  });
  return (logs as unknown as { args: Omit<Proposal, "id"> & { proposalId: bigint } }[]).map(({ args }) => ({
    id: args.proposalId,
    proposer: args.proposer,
    targets: [...args.targets],
    values: [...args.values],
    calldatas: [...args.calldatas],
    description: args.description,
    voteStart: args.voteStart,
    voteEnd: args.voteEnd,
  }));
}

/**
 * The proposal `--proposal` names, or the one on `--case` that can take `step` (proposal ids are 77
 * digits long). Two proposals on a case (an uphold and a reject) are usual: the one the step can
 * act on is taken; with none, the one still on its way, whose step the caller then says when.
 */
async function chosenProposal(ctx: CliContext, flags: { proposal?: string; case?: string }, step: keyof typeof stepAt): Promise<Proposal> {
  if (flags.proposal !== undefined && flags.case !== undefined) throw usageError("give --proposal or --case, not both");
  if (flags.proposal !== undefined) return await findProposal(ctx, parseProposalId(flags.proposal));
  if (flags.case === undefined) throw usageError("give --proposal <id>, or --case <id> for the proposal on a case");
  const caseId = parseId("--case", flags.case);
  const { status, expiresAt } = await existingCase(ctx, caseId);
  if (status !== 1) throw new CliError(`case ${caseId} is ${caseStatusNames[status] ?? "closed"} already: no proposal on it can run (din gov status --case ${caseId})`);
  const onCase = await proposalsWithStateOn(ctx, caseId);
  const ready = onCase.filter((p) => stepOrder[p.state] === stepAt[step]);
  const live = onCase.filter((p) => onItsWay(p.state));
  const stepped = step === "vote" ? "voted on" : `${step}d`;
  if (ready.length === 1) {
    // Not queued or run past one further along (an uphold queued, a reject passed): the user may not know of it.
    const further = step === "vote" ? [] : live.filter((p) => stepOrder[p.state] > stepAt[step]);
    if (further.length === 0) return ready[0];
    throw new CliError(`case ${caseId} has a proposal further along, ${listed(ctx, further)}, than ${listed(ctx, ready)}: to ${step} that one anyway, give --proposal ${ready[0].id}`);
  }
  if (ready.length > 1) throw new CliError(`case ${caseId} has ${ready.length} proposals that can be ${stepped}: ${listed(ctx, ready)}; choose one with --proposal <id>`);
  if (live.length === 1) return live[0]; // the step is said when (requireStep)
  if (live.length > 1) throw new CliError(`case ${caseId} has ${live.length} proposals on their way, none of which can be ${stepped} now: ${listed(ctx, live)} (din gov status --case ${caseId} says when)`);
  const ended = onCase.map((p) => `${p.id} (${p.state})`).join("; ");
  const next =
    (await earliestExecution(ctx)) > expiresAt
      ? `, and one made now could not run before its deadline at ${formatTime(expiresAt)}: it can only be expired then (din case expire --case ${caseId})`
      : `: din gov propose-slash --case ${caseId} makes one`;
  throw new CliError(`case ${caseId} has no proposal on its way${ended === "" ? "" : ` (its proposals: ${ended})`}${next}`);
}

/** How far along each state of a proposal on its way (one that may still run) is: the step it can take, by stepAt. */
const stepOrder: Record<string, number> = { pending: 0, active: 0, succeeded: 1, queued: 2 };
const stepAt = { vote: 0, queue: 1, execute: 2 } as const;

/** The proposals resolving case `caseId`, oldest first, each with its state. */
async function proposalsWithStateOn(ctx: CliContext, caseId: bigint): Promise<(Proposal & { state: string })[]> {
  const onCase = (await allProposals(ctx)).filter((p) => caseOf(ctx, p) === caseId);
  return await Promise.all(onCase.map(async (p) => ({ ...p, state: await proposalState(ctx, p.id) })));
}

/** A proposal that may still run: not yet voted, being voted, passed, or queued. */
const onItsWay = (state: string) => state in stepOrder;

const listed = (ctx: CliContext, proposals: (Proposal & { state: string })[]) => proposals.map((p) => `${p.id} (${actionOf(ctx, p)}, ${p.state})`).join("; ");

async function findProposal(ctx: CliContext, id: bigint): Promise<Proposal> {
  const found = (await allProposals(ctx)).find((p) => p.id === id);
  if (!found) throw new CliError(`there is no proposal ${id} (din gov status lists them)`);
  return found;
}
