#!/usr/bin/env node
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { exitWithParent } from "./childProcess.ts";
import { exitCodeOf, parseArgsProblem, usageError } from "./cli/cliError.ts";
import type { CommonFlags } from "./cli/context.ts";
import { print, type Outcome } from "./cli/outcome.ts";

// The chain commands' modules load viem (about a second): loaded when a chain command runs, so
// `din --help` and the services (`din router …`) start at once.
const provider = () => import("./cli/providerCommands.ts");
const cases = () => import("./cli/caseCommands.ts");
const gov = () => import("./cli/govCommands.ts");

const commonHelp = `  --rpc <url> --deployment <file>   the node and deployment to use (else .devnet/devnet.json, or DIN_DEVNET=<dir>)
  --key <0x…>                       the key to send with (else DIN_PRIVATE_KEY); commands that only read need none
  --json                            a machine-readable object on stdout: amounts in wei and times in unix
                                    seconds, as strings; an error as {"error": "…"} on stderr`;

const common = {
  rpc: { type: "string" },
  deployment: { type: "string" },
  key: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/**
 * A command: its arguments as its usage line shows them, what `--help` says it does (lines joined
 * with a space), its flags, how many positional arguments it takes, and what it does (one that
 * sends transactions asks ctx(f, true): its key is checked before anything else).
 */
type Command = {
  args: string;
  help: string[];
  options: ParseArgsConfig["options"];
  positionals: number;
  run: (flags: Record<string, unknown>, rest: string[]) => Promise<Outcome>;
};

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const proposalOrCase = { proposal: { type: "string" }, case: { type: "string" } } as const;

const commands: Record<string, Command> = {
  "provider register": {
    args: "--name <n> --stake <DIN> [--metadata <uri>] [--endpoint <chainId>=<url> …]",
    help: [
      "Registers the key's account as a provider, staking --stake DIN (at least the minimum stake; approved",
      "for the registry first when needed), with a --name shown in the registry and on routers' pages, an",
      "optional --metadata URI, and an --endpoint <chainId>=<url> per chain served (each URL is asked its",
      "chain id first). Routers send it traffic once the indexer has it, on probation first.",
    ],
    options: { name: { type: "string" }, metadata: { type: "string" }, stake: { type: "string" }, endpoint: { type: "string", multiple: true } },
    positionals: 0,
    run: async (f) => (await provider()).register(await ctx(f, true), { name: str(f.name), metadata: str(f.metadata), stake: str(f.stake), endpoint: f.endpoint as string[] | undefined }),
  },
  "provider stake": {
    args: "<DIN>",
    help: ["Adds <DIN> to the key's active stake (approved for the registry first when needed)."],
    options: {},
    positionals: 1,
    run: async (f, [amount]) => (await provider()).stake(await ctx(f, true), amount),
  },
  "provider endpoint": {
    args: "set <chainId> <url> | din provider endpoint remove <chainId>",
    help: ["Sets the URL the key's provider serves <chainId> at (the node there must answer as that chain), or", "removes it; routers follow within an indexer update."],
    options: {},
    positionals: 3,
    run: async (f, [action, ...rest]) => (await provider()).endpoint(await ctx(f, true), action, rest),
  },
  "provider unbond": {
    args: "<DIN> [--below-minimum]",
    help: [
      "Moves <DIN> of active stake to unbonding: withdrawable after the unbonding period, and slashable",
      "until withdrawn. Unbonding part of a stake at or above the minimum is refused when what is left",
      "would be below it (no traffic), unless --below-minimum; all of it may be unbonded (the provider",
      "stays registered; din provider deregister also removes its endpoints).",
    ],
    options: { "below-minimum": { type: "boolean" } },
    positionals: 1,
    run: async (f, [amount]) => (await provider()).unbond(await ctx(f, true), amount, f["below-minimum"] === true),
  },
  "provider withdraw": {
    args: "",
    help: ["Sends the key's unbonding stake whose period has passed back to it; blocked while a slashing case", "against the provider is open."],
    options: {},
    positionals: 0,
    run: async (f) => (await provider()).withdraw(await ctx(f, true)),
  },
  "provider deregister": {
    args: "",
    help: ["Leaves: removes every endpoint and starts unbonding all active stake (slashable until withdrawn)."],
    options: {},
    positionals: 0,
    run: async (f) => (await provider()).deregister(await ctx(f, true)),
  },
  "provider status": {
    args: "[address] [--router <url>]",
    help: [
      "A provider's standing (the key's own without [address]): stake, unbonding entries and when each is",
      "released, open cases, slashes, endpoints, jail, and what a router (--router <url>, else the",
      "devnet's) makes of it.",
    ],
    options: { router: { type: "string" } },
    positionals: 1,
    run: async (f, [address]) => (await provider()).status(await ctx(f), address, str(f.router)),
  },
  "case open": {
    args: "--provider <address> --amount <DIN> --evidence <file> [--again]",
    help: [
      "Reports --provider to governance: the --evidence file's bytes (16 KiB at most) go on chain for",
      "voters to read. --amount is what to slash, capped at the share of the stake a case may take (said",
      "before the vote). The case bond is taken from the key (approved first) and becomes claimable",
      "again (din case claim) with the watcher's reward if the case is upheld, or alone once it is",
      "expired unresolved; it is lost if the case is rejected. --again opens a second case on the same evidence.",
    ],
    options: { provider: { type: "string" }, amount: { type: "string" }, evidence: { type: "string" }, again: { type: "boolean" } },
    positionals: 0,
    run: async (f) => (await cases()).openCase(await ctx(f, true), { provider: str(f.provider), amount: str(f.amount), evidence: str(f.evidence), again: f.again === true }),
  },
  "case list": {
    args: "[--provider <address>] [--watcher <address>]",
    help: [
      "The newest 100 cases with their state, deadline and what each would slash (the indexer has the whole",
      "history); --provider <address>: those against one provider; --watcher <address>: those one watcher",
      "opened, and what of their bonds and rewards it may claim now.",
    ],
    options: { provider: { type: "string" }, watcher: { type: "string" } },
    positionals: 0,
    run: async (f) => (await cases()).listCases(await ctx(f), { provider: str(f.provider), watcher: str(f.watcher) }),
  },
  "case show": {
    args: "--case <id>",
    help: ["One case whole: provider, amount, bond, deadline, its evidence, and the proposals resolving it."],
    options: { case: { type: "string" } },
    positionals: 0,
    run: async (f) => (await cases()).showCase(await ctx(f), { case: str(f.case) }),
  },
  "case expire": {
    args: "--case <id>",
    help: [
      "Closes a case governance did not resolve before its deadline (anyone may): its bond becomes its",
      "watcher's to claim, and the provider may withdraw again once no other case against it is open.",
    ],
    options: { case: { type: "string" } },
    positionals: 0,
    run: async (f) => (await cases()).expireCase(await ctx(f, true), { case: str(f.case) }),
  },
  "case claim": {
    args: "",
    help: ["Sends the key's claimable bonds and rewards (of upheld and expired cases) to it."],
    options: {},
    positionals: 0,
    run: async (f) => (await cases()).claim(await ctx(f, true)),
  },
  "gov delegate": {
    args: "[--to <address>]",
    help: ["Delegates the key's votes to itself, or --to another address: tokens count in a vote only when", "delegated before the proposal's snapshot."],
    options: { to: { type: "string" } },
    positionals: 0,
    run: async (f) => (await gov()).delegate(await ctx(f, true), { to: str(f.to) }),
  },
  "gov propose-slash": {
    args: "--case <id> [--reject | --jail] [--description <text>]",
    help: [
      "Proposes to uphold --case (slash its provider), with --jail to jail the provider too, or with",
      "--reject to reject it. Refused when the vote and the timelock delay would end after the case's deadline.",
    ],
    options: { case: { type: "string" }, reject: { type: "boolean" }, jail: { type: "boolean" }, description: { type: "string" } },
    positionals: 0,
    run: async (f) => (await gov()).proposeSlash(await ctx(f, true), { case: str(f.case), reject: f.reject === true, jail: f.jail === true, description: str(f.description) }),
  },
  "gov propose-unjail": {
    args: "--provider <address> [--description <text>]",
    help: ["Proposes to unjail --provider, so routers send it traffic again once the proposal runs."],
    options: { provider: { type: "string" }, description: { type: "string" } },
    positionals: 0,
    run: async (f) => (await gov()).proposeUnjail(await ctx(f, true), { provider: str(f.provider), description: str(f.description) }),
  },
  "gov vote": {
    args: "(--proposal <id> | --case <id>) --support for|against|abstain [--reason <text>]",
    help: [
      "Votes on --proposal <id> (decimal, or 0x hex), or on the proposal on --case <id> open for votes.",
      "--reason is recorded on chain with the vote.",
    ],
    options: { ...proposalOrCase, support: { type: "string" }, reason: { type: "string" } },
    positionals: 0,
    run: async (f) => (await gov()).vote(await ctx(f, true), { proposal: str(f.proposal), case: str(f.case), support: str(f.support), reason: str(f.reason) }),
  },
  "gov queue": {
    args: "(--proposal <id> | --case <id>)",
    help: [
      "Queues --proposal <id> (decimal, or 0x hex), or the proposal on --case <id> that passed, in the",
      "timelock; it can be executed once the timelock delay has passed.",
    ],
    options: proposalOrCase,
    positionals: 0,
    run: async (f) => (await gov()).queue(await ctx(f, true), { proposal: str(f.proposal), case: str(f.case) }),
  },
  "gov execute": {
    args: "(--proposal <id> | --case <id>)",
    help: ["Runs --proposal <id> (decimal, or 0x hex), or the proposal on --case <id> that is queued, once its", "timelock delay has passed."],
    options: proposalOrCase,
    positionals: 0,
    run: async (f) => (await gov()).execute(await ctx(f, true), { proposal: str(f.proposal), case: str(f.case) }),
  },
  "gov status": {
    args: "[--proposal <id> | --case <id>]",
    help: [
      "Each proposal (or --proposal, or those on --case): what its calls do, beside its description; its",
      "state, tallies and quorum; when voting opens and closes, and when it can be executed.",
    ],
    options: proposalOrCase,
    positionals: 0,
    run: async (f) => (await gov()).status(await ctx(f), { proposal: str(f.proposal), case: str(f.case) }),
  },
};

/** A command's usage line. */
const usageLine = (name: string): string => `din ${name}${commands[name].args === "" ? "" : ` ${commands[name].args}`}`;

/** The usage lines of one group (`din gov …`). */
const groupUsage = (group: string): string =>
  Object.keys(commands)
    .filter((name) => name.startsWith(`${group} `))
    .map(usageLine)
    .join("\n");

const groupLabels: Record<string, string> = { provider: "operators", case: "watchers", gov: "governance" };

const usage = `din — the OpenDIN command line

${Object.entries(groupLabels)
  .map(([group, label]) => groupUsage(group).replace(/^/gm, " ".repeat(14)).replace(/^ {14}/, `  ${label.padEnd(12)}`))
  .join("\n")}
  services    din router …   din indexer …   din devnet …   (each takes --help)

  din <command> --help says what a command does and what its flags mean. Every chain command reads
  .devnet/devnet.json (DIN_DEVNET=<dir>: a devnet started with --dir) unless --rpc <url> and
  --deployment <file> are given; the key comes from --key <0x…> or DIN_PRIVATE_KEY. Amounts are in
  DIN (1000, 0.5). A command that sends transactions names each on stderr as it goes out, then waits
  for its block. --json prints a machine-readable object on stdout, and on stderr only an error, as
  {"error": "…"} (exit 1, or 2 for bad arguments).`;

const groups = new Set(Object.keys(groupLabels));

const services: Record<string, string> = { router: "router.ts", indexer: "indexer.ts", devnet: "devnet.ts" };

/** The chain and contracts; for a command that `sends`, the key is required before anything else. */
async function ctx(flags: Record<string, unknown>, sends = false) {
  const { loadContext, requireWallet } = await import("./cli/context.ts");
  const context = await loadContext(flags as CommonFlags, process.env);
  if (sends) requireWallet(context);
  return context;
}

/** Runs a service script in this terminal, passing its flags through and its exit code back. */
function runService(script: string, args: string[]): Promise<number> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...exitWithParent.flags, path, ...args], { stdio: "inherit", env: exitWithParent.env() });
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

async function main(argv: string[]): Promise<number> {
  const [group, sub] = argv;
  if (!group || group === "--help" || group === "-h" || group === "help") {
    console.log(usage);
    return group ? 0 : 2;
  }
  if (services[group]) return await runService(services[group], argv.slice(1));
  // A flag every chain command takes, written before the command (a walkthrough: `din --json case list`).
  const flag = [group, sub].find((arg) => arg?.startsWith("-") && arg !== "--help" && arg !== "-h");
  if (flag !== undefined) {
    const known = Object.keys(common).includes(flag.replace(/^--/, "").split("=")[0]);
    const example = `din ${groups.has(group) ? group : "<group>"} <command> ${flag}`;
    throw usageError(known ? `${flag} goes after the command, such as ${example} (din --help lists the commands)` : `unknown option ${flag} (din --help lists the commands)`);
  }
  // "din gov --help" lists the group's commands; a bare "din gov" does too, as a usage error.
  if (groups.has(group) && (sub === undefined || sub === "--help" || sub === "-h" || sub === "help")) {
    console.log(groupUsage(group));
    return sub ? 0 : 2;
  }
  const name = `${group} ${sub ?? ""}`.trim();
  const command = commands[name];
  if (!command) {
    const known = Object.keys(commands).filter((c) => c.startsWith(`${group} `));
    throw usageError(
      known.length > 0
        ? `unknown command "din ${name}": try ${known.map((c) => `din ${c}`).join(", ")}`
        : `unknown command "din ${group}": try din provider, din case, din gov, din router, din indexer or din devnet (din --help)`,
    );
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv.slice(2), options: { ...common, ...command.options }, allowPositionals: true, strict: true });
  } catch (error) {
    // A negative amount reads to node:util as a flag ("Unknown option '-1'", "argument is ambiguous").
    const negative = argv.slice(2).find((arg) => /^-[0-9.]/.test(arg));
    if (negative !== undefined) throw usageError(`${name}: "${negative}" is negative: amounts, ids and chain ids are above zero`);
    // node:util names the flag: "Unknown option '--stak'", "Option '--stake <value>' argument missing".
    const problem = parseArgsProblem(error);
    const unknown = problem.startsWith("Unknown option");
    throw usageError(`${name}: ${unknown ? `${problem[0].toLowerCase()}${problem.slice(1)} (din ${name} --help lists its flags)` : problem}`);
  }
  if (parsed.values.help) {
    console.log(`usage: ${usageLine(name)}\n\n  ${command.help.join("\n  ")}\n\n${commonHelp}`);
    return 0;
  }
  if (parsed.positionals.length > command.positionals) {
    throw usageError(`${name}: unexpected argument "${parsed.positionals[command.positionals]}" (din ${name} --help)`);
  }
  const outcome = await command.run(parsed.values, parsed.positionals);
  print(outcome, parsed.values.json === true);
  return 0;
}

const json = process.argv.includes("--json");
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    const code = exitCodeOf(error);
    if (json) console.error(JSON.stringify({ error: message }));
    else console.error(`din: ${message}`);
    process.exit(code);
  },
);
