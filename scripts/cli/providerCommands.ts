import { readFile } from "node:fs/promises";
import { createPublicClient, http, type Address, type Hash } from "viem";
import { literalHostClass } from "../../router/endpointPolicy.ts";
import { endpointProblem } from "../../router/providerSet.ts";
import { abis } from "./abis.ts";
import { formatDue, formatTime, formatTokens, parseAddress, parseId, parseTokens } from "./amounts.ts";
import { openCasesAgainst } from "./caseCommands.ts";
import { CliError, usageError } from "./cliError.ts";
import { chainTime, requireHttpUrl, requireWallet, type CliContext } from "./context.ts";
import type { Outcome } from "./outcome.ts";
import { read, transact, transactSpending } from "./transact.ts";

type ProviderState = {
  activeStake: bigint;
  unbondingStake: bigint;
  registeredAt: bigint;
  endpointCount: number;
  openCases: number;
  registered: boolean;
  jailed: boolean;
};

const registry = (ctx: CliContext) => ({ address: ctx.contracts.ProviderRegistry, abi: abis.registry });
/** ProviderRegistry.MAX_ENDPOINTS. */
const maxEndpoints = 16;

/** "1=https://…" → [1n, "https://…"], checked as the registry checks it (register sends nothing until all pass). */
export function parseEndpoint(value: string): [bigint, string] {
  const match = /^(\d+)=(.+)$/.exec(value);
  if (!match) throw usageError(`--endpoint must look like <chainId>=<url>, e.g. 1=https://rpc.example.org, not "${value}"`);
  const [chainId, url] = [BigInt(match[1]), match[2]];
  const problem = endpointCheck(chainId, url);
  if (problem) throw usageError(`--endpoint ${value}: ${problem}`);
  return [chainId, url];
}

/**
 * Notes for the operator about URLs the registry takes but routers will not use, or not yet: a
 * WebSocket URL (routers speak http(s)), a loopback or private address (routers refuse those
 * outside devnet mode), and a node that did not answer from here (`unanswered`: URL → why).
 */
function endpointNotes(urls: readonly string[], unanswered: ReadonlyMap<string, string>): string[] {
  const notes: string[] = [];
  const sockets = urls.filter((url) => /^wss?:\/\//i.test(url));
  if (sockets.length > 0) notes.push(`OpenDIN routers send JSON-RPC over http(s) only, so ${sockets.join(", ")} gets no traffic from them: register the node's https:// URL`);
  for (const url of urls) {
    const host = URL.parse(url)?.hostname ?? "";
    // A name is resolved by each router; "localhost" always resolves to loopback.
    const kind = /(^|\.)localhost\.?$/i.test(host) ? "loopback" : literalHostClass(host);
    if (kind !== null) notes.push(`${url} is an address routers refuse unless they run in devnet mode (${kind}): register the address the internet reaches the node at`);
    const why = unanswered.get(url);
    if (why !== undefined) notes.push(`${url} did not answer eth_chainId from here (${why}): routers send it traffic once it answers their probes`);
  }
  return notes;
}

/** What a jailed provider is told wherever its stake or registration changes (an operator walkthrough: registering again while jailed said nothing). */
function jailedNote(address: Address): string {
  return `you are jailed: routers send you no traffic until governance unjails you, whatever the stake (din gov propose-unjail --provider ${address}, then a vote)`;
}

/** The notes as the message's last lines. */
function noteLines(notes: readonly string[]): string {
  return notes.map((note) => `\n  note: ${note}`).join("");
}

const chainIdTimeoutMs = 3_000;

/**
 * The chain id the node at an http(s) URL answers eth_chainId with, or why it could not be asked
 * (not up yet, not reachable from here, not JSON-RPC: routers check it when they probe); null for
 * a URL that is not http(s).
 */
async function askChainId(url: string): Promise<{ chainId: bigint } | { unanswered: string } | null> {
  if (!/^https?:\/\//i.test(url)) return null;
  try {
    return { chainId: BigInt(await createPublicClient({ transport: http(url, { retryCount: 0, timeout: chainIdTimeoutMs }) }).getChainId()) };
  } catch (error) {
    return { unanswered: whyUnanswered(error) };
  }
}

/** A few words on why viem's call failed: the innermost cause says most. */
function whyUnanswered(error: unknown): string {
  const words: Record<string, string> = { ENOTFOUND: "its host name does not resolve", ECONNREFUSED: "connection refused", ECONNRESET: "connection reset" };
  let why = "no JSON-RPC answer";
  for (let e = error as { name?: string; code?: unknown; status?: unknown; message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.name === "TimeoutError") return `no answer within ${chainIdTimeoutMs / 1000} s`;
    if (typeof e.status === "number") return `HTTP ${e.status}`;
    if (e.name === "SyntaxError") return "the answer is not JSON";
    if (typeof e.code === "string") return words[e.code] ?? e.code;
    if (e.cause === undefined && e.message) why = e.message;
  }
  return why;
}

/**
 * Refuses an endpoint whose node answers as another chain: routers would mark it wrong chain, and
 * a watcher could report it. Returns the URLs whose node did not answer, with why.
 */
async function checkChainIds(endpoints: readonly (readonly [bigint, string])[], flag: (chainId: bigint, url: string) => string): Promise<Map<string, string>> {
  const answers = await Promise.all(endpoints.map(([, url]) => askChainId(url)));
  const unanswered = new Map<string, string>();
  endpoints.forEach(([chainId, url], i) => {
    const answer = answers[i];
    if (answer === null) return;
    if ("unanswered" in answer) unanswered.set(url, answer.unanswered);
    else if (answer.chainId !== chainId) {
      throw usageError(`${flag(chainId, url)}the node there answers as chain ${answer.chainId}, not ${chainId}: routers would mark it "wrong chain" and send it nothing`);
    }
  });
  return unanswered;
}

/** What is wrong with an endpoint: by the registry's rules, or one it takes but no router would use. */
function endpointCheck(chainId: bigint, url: string): string | undefined {
  if (chainId === 0n) return "chain id 0 is not a chain";
  return urlProblem(url) ?? endpointProblem(chainId, url);
}

// The registry's own rules for an endpoint URL (ProviderRegistry._checkUrl), so that a bad one is
// refused before register stakes anything rather than after.
const maxUrlBytes = 256;
const urlSchemes = ["https://", "http://", "wss://", "ws://"];

function urlProblem(url: string): string | undefined {
  const bytes = Buffer.byteLength(url);
  if (bytes > maxUrlBytes) return `the URL must be 1 to ${maxUrlBytes} bytes long (it is ${bytes})`;
  if (!urlSchemes.some((scheme) => url.startsWith(scheme) && url.length > scheme.length)) {
    return "the URL must start with https://, http://, wss:// or ws://";
  }
  const bad = Buffer.from(url).findIndex((byte) => byte <= 0x20 || byte === 0x7f);
  if (bad !== -1) return `the URL must not contain spaces or control characters (there is one at byte ${bad})`;
  return undefined;
}

export async function register(
  ctx: CliContext,
  flags: { name?: string; metadata?: string; stake?: string; endpoint?: string[] },
): Promise<Outcome> {
  if (!flags.name) throw usageError("--name is required: the provider's display name");
  const stake = parseTokens("--stake", flags.stake);
  const endpoints = (flags.endpoint ?? []).map(parseEndpoint);
  const chains = new Set(endpoints.map(([chainId]) => chainId));
  if (chains.size < endpoints.length) throw usageError("--endpoint: give one URL per chain");
  if (endpoints.length > maxEndpoints) throw usageError(`a provider may serve at most ${maxEndpoints} chains`);
  const unanswered = await checkChainIds(endpoints, (chainId, url) => `--endpoint ${chainId}=${url}: `);
  const address = requireWallet(ctx).account.address;
  // Everything the registration needs is checked before the approval goes out: a refusal changes nothing.
  const [state, minStake] = await Promise.all([providerState(ctx, address), read<bigint>(ctx, { ...registry(ctx), functionName: "minStake" })]);
  if (state.registered) {
    throw new CliError(`${address} is already registered: add stake with din provider stake, endpoints with din provider endpoint set`);
  }
  if (stake < minStake) throw new CliError(`stake ${formatTokens(stake)} is below the minimum ${formatTokens(minStake)}`);
  const registration = { ...registry(ctx), functionName: "registerAndStake", args: [flags.name, flags.metadata ?? "", stake] };
  const { hash, approval } = await transactSpending(ctx, ctx.contracts.ProviderRegistry, stake, registration);
  const hashes: Hash[] = approval ? [approval, hash] : [hash];
  for (const [chainId, url] of endpoints) {
    try {
      hashes.push(await transact(ctx, { ...registry(ctx), functionName: "setEndpoint", args: [chainId, url] }));
    } catch (error) {
      // The registration went through: say so, and how to finish, rather than only why this step failed.
      const reason = error instanceof Error ? error.message : String(error);
      throw new CliError(
        `registered ${flags.name} (${address}) with ${formatTokens(stake)} staked, but the endpoint for chain ${chainId} was not set: ${reason}; set it with din provider endpoint set ${chainId} <url>`,
      );
    }
  }
  const served = endpoints.map(([chainId, url]) => `chain ${chainId} at ${url}`).join(", ");
  const notes = endpointNotes(endpoints.map(([, url]) => url), unanswered);
  if (state.jailed) notes.unshift(jailedNote(address)); // deregistering does not end a jail
  return {
    message: `registered ${flags.name} (${address}) with ${formatTokens(stake)} staked${served ? `, serving ${served}` : ""}\n  transactions: ${hashes.join(" ")}${noteLines(notes)}`,
    data: { provider: address, name: flags.name, stake, endpoints: endpoints.map(([chainId, url]) => ({ chainId, url })), transactions: hashes, notes },
  };
}

export async function stake(ctx: CliContext, amountText: string | undefined): Promise<Outcome> {
  const amount = parseTokens("<amount>", amountText);
  const { hash, approval } = await transactSpending(ctx, ctx.contracts.ProviderRegistry, amount, { ...registry(ctx), functionName: "stake", args: [amount] });
  const address = requireWallet(ctx).account.address;
  const [state, minStake] = await Promise.all([providerState(ctx, address), read<bigint>(ctx, { ...registry(ctx), functionName: "minStake" })]);
  const jailed = state.jailed ? `\n  ${jailedNote(address)}` : "";
  const below = state.activeStake < minStake ? `\n  active stake is still below the minimum ${formatTokens(minStake)}: routers send you no traffic until it reaches it` : "";
  return {
    message: `staked ${formatTokens(amount)}; active stake is now ${formatTokens(state.activeStake)} (tx ${hash})${jailed}${below}`,
    data: { amount, activeStake: state.activeStake, jailed: state.jailed, eligible: state.activeStake >= minStake && !state.jailed, transaction: hash, approval },
  };
}

export async function endpoint(ctx: CliContext, action: string | undefined, rest: string[]): Promise<Outcome> {
  if (action === "set") {
    const [chainText, url] = rest;
    const chainId = parseId("<chainId>", chainText);
    if (!url) throw usageError("usage: din provider endpoint set <chainId> <url>");
    const problem = endpointCheck(chainId, url);
    if (problem) throw usageError(problem);
    const unanswered = await checkChainIds([[chainId, url]], () => "");
    const hash = await transact(ctx, { ...registry(ctx), functionName: "setEndpoint", args: [chainId, url] });
    const notes = endpointNotes([url], unanswered);
    return { message: `endpoint for chain ${chainId} set to ${url} (tx ${hash})${noteLines(notes)}`, data: { chainId, url, transaction: hash, notes } };
  }
  if (action === "remove") {
    const chainId = parseId("<chainId>", rest[0]);
    const hash = await transact(ctx, { ...registry(ctx), functionName: "removeEndpoint", args: [chainId] });
    return { message: `endpoint for chain ${chainId} removed (tx ${hash})`, data: { chainId, transaction: hash } };
  }
  throw usageError("usage: din provider endpoint set <chainId> <url> | din provider endpoint remove <chainId>");
}

export async function unbond(ctx: CliContext, amountText: string | undefined, belowMinimum = false): Promise<Outcome> {
  const amount = parseTokens("<amount>", amountText);
  const address = requireWallet(ctx).account.address;
  // Said before sending, not after (an operator walkthrough): part of the stake unbonded, the rest
  // below the minimum, earns no traffic. All of it unbonded is leaving, and says so itself.
  const [before, minimum] = await Promise.all([providerState(ctx, address), read<bigint>(ctx, { ...registry(ctx), functionName: "minStake" })]);
  const left = before.activeStake - amount;
  if (!belowMinimum && left > 0n && left < minimum && before.activeStake >= minimum) {
    throw new CliError(
      `unbonding ${formatTokens(amount)} would leave ${formatTokens(left)} of active stake, below the minimum ${formatTokens(minimum)}: routers would send you no traffic. ` +
        `Unbond ${formatTokens(before.activeStake - minimum)} at most to stay eligible, all ${formatTokens(before.activeStake)} to leave (or din provider deregister), or give --below-minimum to unbond it anyway`,
    );
  }
  const hash = await transact(ctx, { ...registry(ctx), functionName: "requestUnbond", args: [amount] });
  const [entries, state, now] = await Promise.all([unbondingEntries(ctx, address), providerState(ctx, address), chainTime(ctx)]);
  const releaseAt = entries.at(-1)?.releaseAt ?? 0n;
  // Topping up is no way back for a jailed provider, nor the point of unbonding all of it (leaving).
  const below = state.jailed
    ? `\n  ${jailedNote(address)}`
    : state.activeStake === 0n
      ? `\n  no active stake is left: routers send you no traffic (to leave the registry: din provider deregister; to serve again: din provider stake)`
      : state.activeStake < minimum
        ? `\n  active stake ${formatTokens(state.activeStake)} is now below the minimum ${formatTokens(minimum)}: routers send you no traffic until you top up (din provider stake)`
        : "";
  return {
    message: `unbonding ${formatTokens(amount)}: withdrawable from ${formatDue(releaseAt, now)} (tx ${hash})${below}`,
    data: { amount, releaseAt, activeStake: state.activeStake, eligible: state.activeStake >= minimum && !state.jailed, transaction: hash },
  };
}

export async function deregister(ctx: CliContext): Promise<Outcome> {
  const address = requireWallet(ctx).account.address;
  const before = await providerState(ctx, address);
  const hash = await transact(ctx, { ...registry(ctx), functionName: "deregister" });
  const [entries, now] = await Promise.all([unbondingEntries(ctx, address), chainTime(ctx)]);
  // The active stake joins the unbonding queue: still slashable until withdrawn, as any unbonding stake.
  const unbonding = before.activeStake > 0n ? `; its ${formatTokens(before.activeStake)} of active stake unbonds, withdrawable from ${formatDue(entries.at(-1)?.releaseAt ?? 0n, now)}` : "";
  return {
    message: `deregistered ${address}: its ${before.endpointCount} endpoint(s) are removed and routers drop it${unbonding} (tx ${hash})`,
    data: { provider: address, endpointsRemoved: before.endpointCount, unbonding: before.activeStake, releaseAt: entries.at(-1)?.releaseAt ?? null, transaction: hash },
  };
}

export async function withdraw(ctx: CliContext): Promise<Outcome> {
  const address = requireWallet(ctx).account.address;
  const before = await providerState(ctx, address);
  const hash = await transact(ctx, { ...registry(ctx), functionName: "withdraw" }).catch(async (error: unknown) => {
    // Release times are chain time, which a devnet runs ahead of the wall clock: say what it is now.
    if (error instanceof CliError && error.message.startsWith("nothing is released yet")) {
      throw new CliError(`${error.message} (chain time now ${formatTime(await chainTime(ctx))})`);
    }
    // Which cases, and how each closes (a walkthrough's were past their deadline: anyone could expire them).
    if (error instanceof CliError && error.message.startsWith("withdrawal is blocked")) throw new CliError(`${error.message}: ${await openCasesAgainst(ctx, address)}`);
    throw error;
  });
  const after = await providerState(ctx, address);
  const amount = before.unbondingStake - after.unbondingStake;
  return {
    message: `withdrew ${formatTokens(amount)}; ${formatTokens(after.unbondingStake)} still unbonding (tx ${hash})`,
    data: { amount, unbondingStake: after.unbondingStake, transaction: hash },
  };
}

/** `routerUrl`: the router whose view to show (--router; default the devnet's). */
export async function status(ctx: CliContext, addressText: string | undefined, routerUrl = ctx.routerUrl): Promise<Outcome> {
  if (!addressText && !ctx.wallet && ctx.keyProblem === undefined) throw usageError("provider status: give the provider's address, or --key (or DIN_PRIVATE_KEY) for your own");
  const address: Address = addressText ? parseAddress("[address]", addressText) : requireWallet(ctx).account.address;
  if (routerUrl !== undefined) requireHttpUrl("--router", "a router's", routerUrl, "https://gateway.example");
  const [state, entries, eligible, minStake, { endpoints, slashes }, now] = await Promise.all([
    providerState(ctx, address),
    unbondingEntries(ctx, address),
    read<boolean>(ctx, { ...registry(ctx), functionName: "isEligible", args: [address] }),
    read<bigint>(ctx, { ...registry(ctx), functionName: "minStake" }),
    providerHistory(ctx, address),
    chainTime(ctx),
  ]);
  // An entry released long ago reads as money waiting (a walkthrough had not noticed it was free).
  // (While a case is open, the withdrawal says which holds it.)
  const release = (at: bigint) => (at > now ? `released at ${formatDue(at, now)}` : `released ${formatDue(at, now).replace(/^\S+ /, "")}: din provider withdraw`);
  const slashedTotal = slashes.reduce((sum, s) => sum + s.amount, 0n);
  // The URL dapps are given (…/rpc/<chain id>) names the router too.
  const router = routerUrl ? await routerView(routerUrl.replace(/\/+$/, "").replace(/\/rpc\/\d+$/, ""), address) : undefined;
  const jail = `jailed: routers send it no traffic until governance unjails it (din gov propose-unjail --provider ${address}, then a vote)`;
  const standing = !state.registered
    ? `not registered${state.jailed ? `; ${jail}` : ""}`
    : state.jailed
      ? jail
      : eligible
        ? "eligible"
        : `not eligible: active stake below the minimum ${formatTokens(minStake)}`;
  const lines = [
    `provider ${address}: ${standing}`,
    `  active stake     ${formatTokens(state.activeStake)}`,
    `  unbonding stake  ${formatTokens(state.unbondingStake)}`,
    ...entries.map((e) => `    ${formatTokens(e.amount)} ${release(e.releaseAt)}`),
    `  open cases       ${state.openCases}${state.openCases > 0 ? " (withdrawals wait for them to close)" : ""}`,
    `  slashed          ${slashes.length === 0 ? "never" : `${formatTokens(slashedTotal)} in all (${slashes.map((s) => `case ${s.caseId}: ${formatTokens(s.amount)}`).join(", ")})`}`,
    `  endpoints        ${endpoints.length === 0 ? "none" : endpoints.map((e) => `chain ${e.chainId} ${e.url}`).join(", ")}`,
  ];
  if (router) lines.push(`  router           ${router.summary}`);
  return {
    message: lines.join("\n"),
    // router: its entries for the provider ([] when not in its set), null with routerProblem saying why when there is no reading.
    data: { address, ...state, eligible, minStake, unbondingEntries: entries, endpoints, slashedTotal, slashes, router: router?.raw, routerProblem: router?.raw === null ? router.summary : undefined },
  };
}

async function providerState(ctx: CliContext, address: Address): Promise<ProviderState> {
  return await read<ProviderState>(ctx, { ...registry(ctx), functionName: "getProvider", args: [address] });
}

async function unbondingEntries(ctx: CliContext, address: Address): Promise<{ amount: bigint; releaseAt: bigint }[]> {
  return await read(ctx, { ...registry(ctx), functionName: "getUnbondingEntries", args: [address] });
}

/**
 * From the provider's events: its URLs (the chain stores only their hashes) and its slashes (the
 * chain keeps only the stake left).
 */
async function providerHistory(ctx: CliContext, address: Address): Promise<{ endpoints: { chainId: bigint; url: string }[]; slashes: { caseId: bigint; amount: bigint }[] }> {
  const logs = await ctx.publicClient.getContractEvents({
    address: ctx.contracts.ProviderRegistry,
    abi: abis.registry,
    args: { provider: address },
    fromBlock: ctx.startBlock,
  });
  const byChain = new Map<bigint, string>();
  const slashes: { caseId: bigint; amount: bigint }[] = [];
  for (const log of logs as unknown as { eventName: string; args: { chainId: bigint; url?: string; caseId: bigint; amount: bigint } }[]) {
    if (log.eventName === "EndpointSet") byChain.set(log.args.chainId, log.args.url ?? "");
    if (log.eventName === "EndpointRemoved") byChain.delete(log.args.chainId);
    if (log.eventName === "Slashed") slashes.push({ caseId: log.args.caseId, amount: log.args.amount });
  }
  return { endpoints: [...byChain].map(([chainId, url]) => ({ chainId, url })), slashes };
}

/** The router's opinion of the provider on each chain it serves, from its /status, when a router is known. */
async function routerView(routerUrl: string, address: Address): Promise<{ summary: string; raw: unknown } | undefined> {
  let chains: { chainId?: unknown; providers?: Record<string, unknown>[] }[];
  let response: Response;
  try {
    response = await fetch(`${routerUrl}/status`, { signal: AbortSignal.timeout(3_000) });
  } catch {
    return { summary: `unreachable at ${routerUrl}`, raw: null };
  }
  const page = (await response.json().catch(() => null)) as { chains?: unknown; providerSet?: unknown } | null;
  // Another server there (the indexer's URL, say) must not read as "the router dropped you".
  if (!response.ok || page === null || !Array.isArray(page.chains) || typeof page.providerSet !== "object") {
    return { summary: `${routerUrl}/status is not a router's status page (HTTP ${response.status}): give the router's URL, such as http://127.0.0.1:8080`, raw: null };
  }
  chains = page.chains as typeof chains;
  const lower = address.toLowerCase();
  const found = chains.flatMap((chain) =>
    (chain.providers ?? []).filter((p) => typeof p.address === "string" && p.address.toLowerCase() === lower).map((p) => ({ ...p, chainId: chain.chainId })),
  );
  if (found.length === 0) return { summary: "not in the router's provider set", raw: [] };
  found.sort((a, b) => Number(a.chainId) - Number(b.chainId));
  const describe = (p: Record<string, unknown>) => {
    const state = typeof p.state === "string" ? p.state : "unknown";
    const score = typeof p.score === "number" ? `, score ${p.score.toFixed(3)}` : "";
    const share = typeof p.trafficShare === "number" ? `, ${(p.trafficShare * 100).toFixed(1)}% of traffic` : "";
    return `chain ${String(p.chainId)}: ${state}${score}${share}`;
  };
  return { summary: found.map(describe).join("; "), raw: found };
}

/** SlashingManager.MAX_EVIDENCE_LENGTH. */
const maxEvidenceBytes = 16_384;

export async function readEvidence(path: string | undefined): Promise<`0x${string}`> {
  if (!path) throw usageError("--evidence <file> is required: the file whose bytes prove the misbehaviour");
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    throw usageError(`--evidence: cannot read ${path}`);
  }
  if (bytes.length === 0) throw usageError(`--evidence: ${path} is empty`);
  if (bytes.length > maxEvidenceBytes) throw usageError(`--evidence: ${path} holds ${bytes.length} bytes; a case takes at most ${maxEvidenceBytes} (keep the proof, link the rest)`);
  return `0x${bytes.toString("hex")}`;
}
