import { isUtf8 } from "node:buffer";
import { isAddress, keccak256, type Address, type Hex } from "viem";
import { abis } from "./abis.ts";
import { formatDue, formatTime, formatTokens, parseAddress, parseId, parseTokens } from "./amounts.ts";
import { CliError, usageError } from "./cliError.ts";
import { earliestExecution, proposalsOnCase } from "./govCommands.ts";
import { chainTime, requireWallet, type CliContext } from "./context.ts";
import type { Outcome } from "./outcome.ts";
import { readEvidence } from "./providerCommands.ts";
import { read, transact, transactSpending } from "./transact.ts";

export type Case = {
  provider: `0x${string}`;
  expiresAt: bigint;
  status: number;
  watcher: `0x${string}`;
  bond: bigint;
  amount: bigint;
  evidenceHash: `0x${string}`;
};

export const caseStatusNames = ["unknown", "open", "upheld", "rejected", "expired"] as const;
const manager = (ctx: CliContext) => ({ address: ctx.contracts.SlashingManager, abi: abis.manager });

/** Case `id`; a CliError if there is none. */
export async function existingCase(ctx: CliContext, id: bigint): Promise<Case> {
  const c = await read<Case>(ctx, { ...manager(ctx), functionName: "getCase", args: [id] });
  if (c.status === 0) {
    const count = await read<bigint>(ctx, { ...manager(ctx), functionName: "caseCount" });
    throw new CliError(`there is no case ${id} (${count === 0n ? "no case has been opened yet" : `the latest is case ${count}`}): din case list shows them`);
  }
  return c;
}

/** Case `id` if it is open; otherwise a CliError saying what it is. `action` completes "only an open case can be …". */
async function requireOpenCase(ctx: CliContext, id: bigint, action: string): Promise<Case> {
  const c = await existingCase(ctx, id);
  if (c.status !== 1) throw new CliError(`case ${id} is already ${caseStatusNames[c.status]}: only an open case can be ${action}`);
  return c;
}

/** One case whole, with its evidence (kept on chain only in the CaseOpened event): what a voter reads before voting. */
export async function showCase(ctx: CliContext, flags: { case?: string }): Promise<Outcome> {
  const id = parseId("--case", flags.case);
  const c = await existingCase(ctx, id);
  const [opened, now] = await Promise.all([
    ctx.publicClient.getContractEvents({ ...manager(ctx), eventName: "CaseOpened", args: { caseId: id }, fromBlock: ctx.startBlock }),
    chainTime(ctx),
  ]);
  const evidence = (opened[0] as { args?: { evidence?: Hex } } | undefined)?.args?.evidence ?? null;
  const bytes = evidence === null ? null : Buffer.from(evidence.slice(2), "hex");
  // Shown as text when it is text (JSON, a log), else as hex.
  const text = bytes !== null && isUtf8(bytes) && !/[\u0000-\u0008\u000e-\u001f\u007f]/.test(bytes.toString("utf8")) ? bytes.toString("utf8") : null;
  const statusName = caseStatusNames[c.status] ?? "unknown";
  const pastDeadline = statusName === "open" && now > c.expiresAt;
  const deadline = statusName !== "open" ? "" : pastDeadline ? `, past its deadline ${formatTime(c.expiresAt)}: din case expire --case ${id}` : `, open until ${formatTime(c.expiresAt)} (chain time now ${formatTime(now)})`;
  // What voters weigh (the slash it would take, capped by the stake), or what it came to; and the proposals to vote on.
  const [slashIfUpheld, upheld, proposals] = await Promise.all([
    statusName === "open" && !pastDeadline ? read<bigint>(ctx, { ...manager(ctx), functionName: "slashAmountIfUpheld", args: [id] }) : null,
    statusName === "upheld" ? ctx.publicClient.getContractEvents({ ...manager(ctx), eventName: "CaseUpheld", args: { caseId: id }, fromBlock: ctx.startBlock }) : null,
    proposalsOnCase(ctx, id),
  ]);
  const outcome = (upheld?.[0] as { args?: { slashed: bigint; watcherReward: bigint } } | undefined)?.args ?? null;
  const lines = [
    `case ${id}: ${statusName}${deadline}`,
    `  provider  ${c.provider}`,
    `  watcher   ${c.watcher}, bond ${formatTokens(c.bond)}`,
    `  asks      ${formatTokens(c.amount)}${slashIfUpheld === null ? "" : `; would slash ${formatTokens(slashIfUpheld)} if upheld`}`,
  ];
  if (outcome !== null) lines.push(`  slashed   ${formatTokens(outcome.slashed)} (${formatTokens(outcome.watcherReward)} of it to the watcher, with the bond)`);
  for (const p of proposals) lines.push(`  proposal  ${p.id}: ${p.state}; ${p.action}`);
  if (proposals.length === 0 && statusName === "open" && !pastDeadline) {
    // Too near its deadline, a proposal made now could not run before it (propose-slash refuses it then).
    const inTime = (await earliestExecution(ctx)) <= c.expiresAt;
    lines.push(`  proposal  none yet (${inTime ? `din gov propose-slash --case ${id}` : `none made now could run before its deadline: din case expire --case ${id} after it`})`);
  }
  lines.push(bytes === null ? "  evidence  not found in the chain's events" : `  evidence  ${bytes.length} bytes, hash ${c.evidenceHash}${text === null ? " (not text; hex below)" : ""}`);
  if (bytes !== null) lines.push(text ?? evidence!);
  return {
    message: lines.join("\n"),
    // `status` by name, as din case list --json gives it.
    data: { id, ...c, status: statusName, pastDeadline, slashIfUpheld, slashed: outcome?.slashed ?? null, watcherReward: outcome?.watcherReward ?? null, proposals, evidence, evidenceText: text },
  };
}

/** Case `id` if governance can still resolve it: open and not past its deadline. */
export async function requireResolvableCase(ctx: CliContext, id: bigint): Promise<Case> {
  const c = await requireOpenCase(ctx, id, "voted on");
  if ((await chainTime(ctx)) > c.expiresAt) {
    throw new CliError(
      `case ${id} passed its deadline at ${formatTime(c.expiresAt)}: governance can no longer resolve it, it can only be expired (din case expire --case ${id})`,
    );
  }
  return c;
}

export async function openCase(ctx: CliContext, flags: { provider?: string; amount?: string; evidence?: string; again?: boolean }): Promise<Outcome> {
  const provider = parseAddress("--provider", flags.provider);
  const amount = parseTokens("--amount", flags.amount);
  const evidence = await readEvidence(flags.evidence);
  const named = evidenceProvider(evidence);
  if (named !== null && named.toLowerCase() !== provider.toLowerCase()) {
    throw usageError(`--evidence names provider ${named} in its "provider" field, not --provider ${provider}: which one is reported?`);
  }
  // Each case upheld slashes on its own: the same evidence twice could punish one fault twice.
  const evidenceHash = keccak256(evidence);
  const twin = flags.again ? undefined : (await recentCases(ctx)).find((c) => c.status === 1 && c.provider.toLowerCase() === provider.toLowerCase() && c.evidenceHash === evidenceHash);
  if (twin !== undefined) {
    throw new CliError(`case ${twin.id} against ${provider} is open with the same evidence: each case upheld slashes on its own, so a second one could punish one fault twice; give --again to open it anyway`);
  }
  const bond = await read<bigint>(ctx, { ...manager(ctx), functionName: "caseBond" });
  const { hash } = await transactSpending(ctx, ctx.contracts.SlashingManager, bond, { ...manager(ctx), functionName: "openCase", args: [provider, amount, evidence] });
  const caseId = await read<bigint>(ctx, { ...manager(ctx), functionName: "caseCount" });
  const [c, slashIfUpheld, now] = await Promise.all([
    read<Case>(ctx, { ...manager(ctx), functionName: "getCase", args: [caseId] }),
    read<bigint>(ctx, { ...manager(ctx), functionName: "slashAmountIfUpheld", args: [caseId] }),
    chainTime(ctx),
  ]);
  // The slash is capped (maxSlashBps of the stake at stake): said when it is less than asked.
  const capped = slashIfUpheld < amount ? `; if upheld it would slash ${formatTokens(slashIfUpheld)}, the most it may take of this provider's stake` : "";
  return {
    message: `opened case ${caseId} against ${provider} asking ${formatTokens(amount)}${capped}, bond ${formatTokens(bond)} posted; governance must resolve it before ${formatDue(c.expiresAt, now)} (tx ${hash})`,
    data: { caseId, provider, amount, slashIfUpheld, bond, expiresAt: c.expiresAt, evidenceHash: c.evidenceHash, transaction: hash },
  };
}

/** The "provider" an evidence file in JSON names (as the README suggests writing it), or null. */
function evidenceProvider(evidence: Hex): string | null {
  try {
    const parsed = JSON.parse(Buffer.from(evidence.slice(2), "hex").toString("utf8")) as unknown;
    const named = typeof parsed === "object" && parsed !== null ? (parsed as { provider?: unknown }).provider : undefined;
    return typeof named === "string" && isAddress(named, { strict: false }) ? named : null;
  } catch {
    return null; // not JSON: any bytes are evidence
  }
}

export async function listCases(ctx: CliContext, flags: { provider?: string; watcher?: string }): Promise<Outcome> {
  const filter = flags.provider ? parseAddress("--provider", flags.provider).toLowerCase() : undefined;
  const watcher = flags.watcher ? parseAddress("--watcher", flags.watcher) : undefined;
  const [recent, now] = await Promise.all([recentCases(ctx), chainTime(ctx)]);
  const cases: (Case & { id: bigint; statusName: string; pastDeadline: boolean; slashIfUpheld?: bigint; slashed?: bigint })[] = [];
  for (const c of recent) {
    if ((filter && c.provider.toLowerCase() !== filter) || (watcher && c.watcher.toLowerCase() !== watcher.toLowerCase())) continue;
    const statusName = caseStatusNames[c.status] ?? "unknown";
    // Open on chain until someone expires it, but governance can no longer resolve it.
    const pastDeadline = statusName === "open" && now > c.expiresAt;
    const slashIfUpheld =
      statusName === "open" && !pastDeadline ? await read<bigint>(ctx, { ...manager(ctx), functionName: "slashAmountIfUpheld", args: [c.id] }) : undefined;
    cases.push({ ...c, statusName, pastDeadline, slashIfUpheld });
  }
  // The case keeps no slashed amount; its CaseUpheld event does.
  const upheld = cases.filter((c) => c.statusName === "upheld");
  if (upheld.length > 0) {
    const logs = await ctx.publicClient.getContractEvents({
      ...manager(ctx),
      eventName: "CaseUpheld",
      args: { caseId: upheld.map((c) => c.id) },
      fromBlock: ctx.startBlock,
    });
    for (const { args } of logs as unknown as { args: { caseId: bigint; slashed: bigint } }[]) {
      const c = upheld.find((u) => u.id === args.caseId);
      if (c) c.slashed = args.slashed;
    }
  }
  const lines = cases.map((c) => {
    let tail = "";
    if (c.pastDeadline) tail = `  past its deadline ${formatDue(c.expiresAt, now)}: din case expire --case ${c.id}`;
    else if (c.statusName === "open") tail = `  open until ${formatDue(c.expiresAt, now)}, would slash ${formatTokens(c.slashIfUpheld ?? 0n)}`;
    else if (c.slashed !== undefined) tail = `  slashed ${formatTokens(c.slashed)}`;
    return `case ${c.id}  ${c.statusName.padEnd(8)} provider ${c.provider}  asks ${formatTokens(c.amount)}  bond ${formatTokens(c.bond)}${tail}`;
  });
  // A watcher's own cases, and what of their bonds and rewards waits to be claimed.
  const claimable = watcher === undefined ? undefined : await read<bigint>(ctx, { ...manager(ctx), functionName: "claimable", args: [watcher] });
  if (claimable !== undefined) lines.push(`claimable by ${watcher}: ${formatTokens(claimable)}${claimable > 0n ? " (din case claim, with its key)" : ""}`);
  return {
    message: lines.length === 0 ? "no cases" : lines.join("\n"),
    data: { cases: cases.map(({ statusName, ...c }) => ({ ...c, status: statusName })), claimable },
  };
}

export async function expireCase(ctx: CliContext, flags: { case?: string }): Promise<Outcome> {
  const id = parseId("--case", flags.case);
  requireWallet(ctx);
  const c = await requireOpenCase(ctx, id, "expired");
  const now = await chainTime(ctx);
  if (now <= c.expiresAt) {
    throw new CliError(
      `case ${id} is open until ${formatTime(c.expiresAt)} (chain time now ${formatTime(now)}): governance may still resolve it; it can be expired only after that`,
    );
  }
  const hash = await transact(ctx, { ...manager(ctx), functionName: "expireCase", args: [id] });
  const openCases = await read<bigint>(ctx, { address: ctx.contracts.ProviderRegistry, abi: abis.registry, functionName: "openCases", args: [c.provider] });
  const provider =
    openCases === 0n
      ? `provider ${c.provider} has no open case left, so its withdrawals are unblocked`
      : `provider ${c.provider} still has ${openCases} open case(s), so its withdrawals stay blocked`;
  return {
    message: `expired case ${id}: the ${formatTokens(c.bond)} bond is claimable by the watcher ${c.watcher} with din case claim; ${provider} (tx ${hash})`,
    data: { caseId: id, provider: c.provider, watcher: c.watcher, bondReturned: c.bond, providerOpenCases: openCases, transaction: hash },
  };
}

export async function claim(ctx: CliContext): Promise<Outcome> {
  const account = requireWallet(ctx).account.address;
  const amount = await read<bigint>(ctx, { ...manager(ctx), functionName: "claimable", args: [account] });
  if (amount === 0n) throw new CliError(`${account} has nothing to claim${await whyNothingToClaim(ctx, account)}`);
  const parts = await claimParts(ctx, account);
  const hash = await transact(ctx, { ...manager(ctx), functionName: "claim" });
  const from = parts.map((p) => `case ${p.caseId} ${p.ended}: bond ${formatTokens(p.bond)}${p.ended === "upheld" ? ` + reward ${formatTokens(p.reward)}` : ""}`);
  return { message: `claimed ${formatTokens(amount)}${from.length > 0 ? ` (${from.join("; ")})` : ""} (tx ${hash})`, data: { account, amount, cases: parts, transaction: hash } };
}

type Log = { blockNumber: bigint; logIndex: number; args: Record<string, unknown> };

/**
 * The cases a claim now pays, each with its bond and reward (the contract keeps only the sum): those
 * of `watcher` upheld or expired since its last claim, from their events.
 */
async function claimParts(ctx: CliContext, watcher: string): Promise<{ caseId: bigint; ended: "upheld" | "expired"; bond: bigint; reward: bigint }[]> {
  const events = (eventName: "Claimed" | "CaseUpheld" | "CaseExpired" | "CaseOpened") =>
    ctx.publicClient.getContractEvents({ ...manager(ctx), eventName, fromBlock: ctx.startBlock }) as unknown as Promise<Log[]>;
  const [claimed, upheld, expired, opened] = await Promise.all([events("Claimed"), events("CaseUpheld"), events("CaseExpired"), events("CaseOpened")]);
  const mine = (account: unknown) => typeof account === "string" && account.toLowerCase() === watcher.toLowerCase();
  const last = claimed.filter((l) => mine(l.args.account)).at(-1);
  const after = (l: Log) => last === undefined || l.blockNumber > last.blockNumber || (l.blockNumber === last.blockNumber && l.logIndex > last.logIndex);
  const bondOf = new Map(opened.filter((l) => mine(l.args.watcher)).map((l) => [l.args.caseId as bigint, l.args.bond as bigint]));
  const ends = [...upheld.map((l) => ({ l, ended: "upheld" as const, reward: l.args.watcherReward as bigint })), ...expired.map((l) => ({ l, ended: "expired" as const, reward: 0n }))];
  return ends
    .filter(({ l }) => after(l) && bondOf.has(l.args.caseId as bigint))
    .map(({ l, ended, reward }) => ({ caseId: l.args.caseId as bigint, ended, bond: bondOf.get(l.args.caseId as bigint)!, reward }))
    .sort((a, b) => (a.caseId < b.caseId ? -1 : 1));
}

/**
 * Where `watcher`'s bonds are (its cases among the newest 100), for a claim of nothing: a bond comes
 * back once its case is upheld or expired, and a case past its deadline waits for someone to expire it.
 */
async function whyNothingToClaim(ctx: CliContext, watcher: string): Promise<string> {
  const [recent, now] = await Promise.all([recentCases(ctx), chainTime(ctx)]);
  const mine = recent.filter((c) => c.watcher.toLowerCase() === watcher.toLowerCase()).reverse();
  const ids = (cases: typeof mine) => cases.map((c) => c.id).join(", ");
  const expirable = mine.filter((c) => c.status === 1 && now > c.expiresAt);
  const open = mine.filter((c) => c.status === 1 && now <= c.expiresAt);
  const rejected = mine.filter((c) => c.status === 3);
  const parts = [];
  if (expirable.length === 1) parts.push(`your case ${expirable[0].id} passed its deadline; expire it with din case expire --case ${expirable[0].id} and its bond becomes claimable`);
  if (expirable.length > 1) parts.push(`your cases ${ids(expirable)} passed their deadlines; expire each with din case expire --case <id> and their bonds become claimable`);
  if (open.length > 0) {
    const until = open.map((c) => `case ${c.id} until ${formatDue(c.expiresAt, now)}`).join(", ");
    parts.push(`open, governance may resolve your ${until}: a bond comes back, with a reward, once its case is upheld, or once it is expired after its deadline`);
  }
  if (rejected.length > 0) parts.push(`your case${rejected.length > 1 ? "s" : ""} ${ids(rejected)} ${rejected.length > 1 ? "were" : "was"} rejected: the bond went to the treasury`);
  return parts.length === 0 ? "" : `: ${parts.join("; ")}`;
}

/** The open cases against `provider` (of the last hundred), each with what closes it: said when they block a withdrawal. */
export async function openCasesAgainst(ctx: CliContext, provider: Address): Promise<string> {
  const [recent, now] = await Promise.all([recentCases(ctx), chainTime(ctx)]);
  const open = recent.filter((c) => c.status === 1 && c.provider.toLowerCase() === provider.toLowerCase()).reverse();
  return open
    .map((c) =>
      now > c.expiresAt
        ? `case ${c.id}, past its deadline ${formatTime(c.expiresAt)}: anyone may expire it (din case expire --case ${c.id})`
        : `case ${c.id}, which governance may resolve until ${formatTime(c.expiresAt)}, when anyone may expire it`,
    )
    .join("; ");
}

/** The newest 100 cases, newest first: enough for a terminal; the indexer has the full history. */
async function recentCases(ctx: CliContext): Promise<(Case & { id: bigint })[]> {
  const count = await read<bigint>(ctx, { ...manager(ctx), functionName: "caseCount" });
  const cases: (Case & { id: bigint })[] = [];
  for (let id = count; id >= 1n && id > count - 100n; id--) {
    cases.push({ ...(await read<Case>(ctx, { ...manager(ctx), functionName: "getCase", args: [id] })), id });
  }
  return cases;
}
