#!/usr/bin/env node
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { exitWithParent } from "./childProcess.ts";
import { CliError, parseArgsProblem, usageError } from "./cli/cliError.ts";
import type { CommonFlags } from "./cli/context.ts";
import { print, type Outcome } from "./cli/outcome.ts";

// The chain commands' modules load viem (about a second): loaded when a chain command runs, so
// `din --help` and the services (`din router …`) start at once.
const provider = () => import("./cli/providerCommands.ts");
const cases = () => import("./cli/caseCommands.ts");
const gov = () => import("./cli/govCommands.ts");

const usage = `din — the OpenDIN command line

  operators   din provider register --name <n> --stake <DIN> [--metadata <uri>] [--endpoint <chainId>=<url> …]
              din provider stake <DIN>
              din provider endpoint set <chainId> <url> | din provider endpoint remove <chainId>
              din provider unbond <DIN> [--below-minimum]
              din provider withdraw
              din provider deregister
              din provider status [address] [--router <url>]
  watchers    din case open --provider <address> --amount <DIN> --evidence <file> [--again]
              din case list [--provider <address>]
              din case show --case <id>
              din case expire --case <id>
              din case claim
  governance  din gov delegate [--to <address>]
              din gov propose-slash --case <id> [--reject | --jail] [--description <text>]
              din gov propose-unjail --provider <address> [--description <text>]
              din gov vote (--proposal <id> | --case <id>) --support for|against|abstain [--reason <text>]
              din gov queue (--proposal <id> | --case <id>)
              din gov execute (--proposal <id> | --case <id>)
              din gov status [--proposal <id> | --case <id>]
  services    din router …   din indexer …   din devnet …   (each takes --help)

  Every chain command reads .devnet/devnet.json (DIN_DEVNET=<dir>: a devnet started with --dir)
  unless --rpc <url> and --deployment <file> are given; the key comes from --key <0x…> or
  DIN_PRIVATE_KEY. Amounts are in DIN (1000, 0.5).
  A command that sends transactions names each on stderr as it goes out, then waits for its block.
  --json prints a machine-readable object on stdout; an error, {"error": "…"} on stderr (exit 1, or 2 for bad arguments).`;

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

/** A command: its flags, how many positional arguments it takes, what `--help` says beside its usage line, and what it does. */
type Command = { options: ParseArgsConfig["options"]; positionals: number; help: string; run: (flags: Record<string, unknown>, rest: string[]) => Promise<Outcome> };

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

const commands: Record<string, Command> = {
  "provider register": {
    help: "Registers the key's account as a provider, staking --stake DIN (approved for the registry first\n  when needed; at least the minimum stake), with a --name shown in the registry and on routers'\n  pages, an optional --metadata URI, and an --endpoint <chainId>=<url> per chain served (the CLI\n  asks each URL its chain id first). Routers send traffic once the indexer has it, on probation first.",
    options: { name: { type: "string" }, metadata: { type: "string" }, stake: { type: "string" }, endpoint: { type: "string", multiple: true } },
    positionals: 0,
    run: async (f) => (await provider()).register(await ctx(f), { name: str(f.name), metadata: str(f.metadata), stake: str(f.stake), endpoint: f.endpoint as string[] | undefined }),
  },
  "provider stake": {
    help: "Adds <DIN> to the key's active stake (approved for the registry first when needed).", options: {}, positionals: 1, run: async (f, [amount]) => (await provider()).stake(await ctx(f), amount) },
  "provider endpoint": {
    help: "Sets the URL the key's provider serves <chainId> at (the CLI checks the node there answers as\n  that chain), or removes it; routers follow within an indexer update.", options: {}, positionals: 3, run: async (f, [action, ...rest]) => (await provider()).endpoint(await ctx(f), action, rest) },
  "provider unbond": {
    help: "Moves <DIN> of active stake to unbonding: withdrawable after the unbonding period, and slashable\n  until then. Refused if it leaves the active stake below the minimum (no traffic) unless\n  --below-minimum; unbonding all of it is leaving, and allowed (din provider deregister also\n  removes the endpoints).", options: { "below-minimum": { type: "boolean" } }, positionals: 1, run: async (f, [amount]) => (await provider()).unbond(await ctx(f), amount, f["below-minimum"] === true) },
  "provider withdraw": {
    help: "Sends the key's unbonded stake whose unbonding period has passed back to it; blocked while a\n  slashing case against the provider is open.", options: {}, positionals: 0, run: async (f) => (await provider()).withdraw(await ctx(f)) },
  "provider deregister": {
    help: "Leaves: removes every endpoint and starts unbonding all active stake (slashable until withdrawn).", options: {}, positionals: 0, run: async (f) => (await provider()).deregister(await ctx(f)) },
  "provider status": {
    help: "A provider's standing (the key's own without [address]): stake, unbonding entries and when each\n  is withdrawable, endpoints, jail, open cases, and what a router (--router <url>, else the\n  devnet's) makes of it.", options: { router: { type: "string" } }, positionals: 1, run: async (f, [address]) => (await provider()).status(await ctx(f), address, str(f.router)) },
  "case open": {
    help: "Reports --provider to governance: the --evidence file's bytes (16 KiB at most) go on chain for\n  voters to read. --amount is what to slash, capped at the share of the stake a case may take (said\n  before the vote). The case bond is taken from the key (approved first): returned with a reward\n  if the case is upheld, returned if it expires unresolved, lost if rejected. --again opens a\n  second case on the same evidence.",
    options: { provider: { type: "string" }, amount: { type: "string" }, evidence: { type: "string" }, again: { type: "boolean" } },
    positionals: 0,
    run: async (f) => (await cases()).openCase(await ctx(f), { provider: str(f.provider), amount: str(f.amount), evidence: str(f.evidence), again: f.again === true }),
  },
  "case list": {
    help: "Lists the cases with their state, deadline and what each would slash; --provider <address>: against one provider.", options: { provider: { type: "string" } }, positionals: 0, run: async (f) => (await cases()).listCases(await ctx(f), { provider: str(f.provider) }) },
  "case show": {
    help: "One case whole: provider, amount, bond, deadline, its evidence, and the proposals resolving it.", options: { case: { type: "string" } }, positionals: 0, run: async (f) => (await cases()).showCase(await ctx(f), { case: str(f.case) }) },
  "case expire": {
    help: "Closes a case governance did not resolve before its deadline (anyone may): its bond becomes its\n  watcher's to claim, and the provider may withdraw again.", options: { case: { type: "string" } }, positionals: 0, run: async (f) => (await cases()).expireCase(await ctx(f), { case: str(f.case) }) },
  "case claim": {
    help: "Sends the key's claimable bonds and rewards (upheld and expired cases) to it.", options: {}, positionals: 0, run: async (f) => (await cases()).claim(await ctx(f)) },
  "gov delegate": {
    help: "Delegates the key's votes to itself, or --to another address: tokens count in a vote only when\n  delegated before the proposal's snapshot.", options: { to: { type: "string" } }, positionals: 0, run: async (f) => (await gov()).delegate(await ctx(f), { to: str(f.to) }) },
  "gov propose-slash": {
    help: "Proposes to uphold --case (slash its provider), with --jail to jail the provider too, or with\n  --reject to reject it. Refused when the vote and the timelock delay would end after the case's deadline.",
    options: { case: { type: "string" }, reject: { type: "boolean" }, jail: { type: "boolean" }, description: { type: "string" } },
    positionals: 0,
    run: async (f) => (await gov()).proposeSlash(await ctx(f), { case: str(f.case), reject: f.reject === true, jail: f.jail === true, description: str(f.description) }),
  },
  "gov propose-unjail": {
    help: "Proposes to unjail --provider, so routers send it traffic again once the proposal runs.",
    options: { provider: { type: "string" }, description: { type: "string" } },
    positionals: 0,
    run: async (f) => (await gov()).proposeUnjail(await ctx(f), { provider: str(f.provider), description: str(f.description) }),
  },
  "gov vote": {
    help: "Votes on a proposal: --proposal <id> (decimal or 0x hex), or --case <id> for the one proposal on\n  that case still on its way. --reason is recorded on chain with the vote.",
    options: { proposal: { type: "string" }, case: { type: "string" }, support: { type: "string" }, reason: { type: "string" } },
    positionals: 0,
    run: async (f) => (await gov()).vote(await ctx(f), { proposal: str(f.proposal), case: str(f.case), support: str(f.support), reason: str(f.reason) }),
  },
  "gov queue": {
    help: "Queues a proposal that passed in the timelock; it can be executed once the timelock delay has passed.", options: { proposal: { type: "string" }, case: { type: "string" } }, positionals: 0, run: async (f) => (await gov()).queue(await ctx(f), { proposal: str(f.proposal), case: str(f.case) }) },
  "gov execute": {
    help: "Runs a queued proposal whose timelock delay has passed.", options: { proposal: { type: "string" }, case: { type: "string" } }, positionals: 0, run: async (f) => (await gov()).execute(await ctx(f), { proposal: str(f.proposal), case: str(f.case) }) },
  "gov status": {
    help: "Each proposal (or --proposal, or those on --case): what its calls do, beside its description; its\n  state, tallies and quorum; when voting opens and closes, and when it can be executed.",
    options: { proposal: { type: "string" }, case: { type: "string" } },
    positionals: 0,
    run: async (f) => (await gov()).status(await ctx(f), { proposal: str(f.proposal), case: str(f.case) }),
  },
};

const groups = new Set(Object.keys(commands).map((name) => name.split(" ")[0]));

/** The usage lines of one group (`din gov …`), out of their indented table. */
const groupUsage = (group: string): string =>
  usage.split("\n").filter((line) => line.includes(`din ${group} `)).map((line) => line.slice(2)).join("\n");

const services: Record<string, string> = { router: "router.ts", indexer: "indexer.ts", devnet: "devnet.ts" };

async function ctx(flags: Record<string, unknown>) {
  const { loadContext } = await import("./cli/context.ts");
  return await loadContext(flags as CommonFlags, process.env);
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
  if (group.startsWith("-")) throw usageError(`${group} goes after the command, such as din case list ${group} (din --help lists the commands)`);
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
    const lines = usage.split("\n").filter((line) => line.includes(`din ${name} `) || line.endsWith(`din ${name}`));
    // The usage line without its group's label, what the command does, and the flags every chain command takes.
    console.log(`${lines.map((line) => `usage: ${line.slice(line.indexOf("din "))}`).join("\n")}\n\n  ${command.help}\n\n${commonHelp}`);
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
    const code = error instanceof CliError && error.kind === "usage" ? 2 : 1;
    if (json) console.error(JSON.stringify({ error: message }));
    else console.error(`din: ${message}`);
    process.exit(code);
  },
);
