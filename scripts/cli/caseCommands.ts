import { abis } from "./abis.ts";
import { formatTime, formatTokens, parseAddress, parseTokens } from "./amounts.ts";
import { requireWallet, type CliContext } from "./context.ts";
import type { Outcome } from "./outcome.ts";
import { readEvidence } from "./providerCommands.ts";
import { ensureAllowance, read, transact } from "./transact.ts";

type Case = {
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

export async function openCase(ctx: CliContext, flags: { provider?: string; amount?: string; evidence?: string }): Promise<Outcome> {
  const provider = parseAddress("--provider", flags.provider);
  const amount = parseTokens("--amount", flags.amount);
  const evidence = await readEvidence(flags.evidence);
  const bond = await read<bigint>(ctx, { ...manager(ctx), functionName: "caseBond" });
  await ensureAllowance(ctx, ctx.contracts.SlashingManager, bond);
  const hash = await transact(ctx, { ...manager(ctx), functionName: "openCase", args: [provider, amount, evidence] });
  const caseId = await read<bigint>(ctx, { ...manager(ctx), functionName: "caseCount" });
  const c = await read<Case>(ctx, { ...manager(ctx), functionName: "getCase", args: [caseId] });
  return {
    message: `opened case ${caseId} against ${provider} asking ${formatTokens(amount)}, bond ${formatTokens(bond)} posted; governance must resolve it before ${formatTime(c.expiresAt)} (tx ${hash})`,
    data: { caseId, provider, amount, bond, expiresAt: c.expiresAt, evidenceHash: c.evidenceHash, transaction: hash },
  };
}

export async function listCases(ctx: CliContext, flags: { provider?: string }): Promise<Outcome> {
  const filter = flags.provider ? parseAddress("--provider", flags.provider).toLowerCase() : undefined;
  const count = await read<bigint>(ctx, { ...manager(ctx), functionName: "caseCount" });
  const cases: (Case & { id: bigint; statusName: string; slashIfUpheld?: bigint })[] = [];
  // The newest 100: enough for a terminal; the indexer has the full history.
  for (let id = count; id >= 1n && id > count - 100n; id--) {
    const c = await read<Case>(ctx, { ...manager(ctx), functionName: "getCase", args: [id] });
    if (filter && c.provider.toLowerCase() !== filter) continue;
    const statusName = caseStatusNames[c.status] ?? "unknown";
    const slashIfUpheld =
      statusName === "open" ? await read<bigint>(ctx, { ...manager(ctx), functionName: "slashAmountIfUpheld", args: [id] }) : undefined;
    cases.push({ ...c, id, statusName, slashIfUpheld });
  }
  const lines = cases.map(
    (c) =>
      `case ${c.id}  ${c.statusName.padEnd(8)} provider ${c.provider}  asks ${formatTokens(c.amount)}  bond ${formatTokens(c.bond)}` +
      (c.statusName === "open" ? `  open until ${formatTime(c.expiresAt)}, would slash ${formatTokens(c.slashIfUpheld ?? 0n)}` : ""),
  );
  return {
    message: lines.length === 0 ? "no cases" : lines.join("\n"),
    data: { cases: cases.map(({ statusName, ...c }) => ({ ...c, status: statusName })) },
  };
}

export async function claim(ctx: CliContext): Promise<Outcome> {
  const account = requireWallet(ctx).account.address;
  const amount = await read<bigint>(ctx, { ...manager(ctx), functionName: "claimable", args: [account] });
  const hash = await transact(ctx, { ...manager(ctx), functionName: "claim" });
  return { message: `claimed ${formatTokens(amount)} (tx ${hash})`, data: { account, amount, transaction: hash } };
}
