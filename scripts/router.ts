import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { startRouter, type Router, type StartRouterOptions } from "../router/router.ts";
import { TrustedProxies } from "../router/connections.ts";
import { logLevels, writesAt, type LogLevel } from "../router/log.ts";
import { parseRoutingConfig, type RoutingOverrides } from "../router/options.ts";
import { checkSnapshotPath } from "../router/snapshot.ts";
import { exitCodeOf, parseArgsProblem, usageError } from "./cli/cliError.ts";

// `npm run router` and `din router`: the JSON-RPC gateway, fed by the indexer's live query.
//
//   node scripts/router.ts --indexer http://127.0.0.1:42069 [--port 8080] [--host 127.0.0.1]
//                          [--snapshot .router/providers.json] [--devnet] [--trust-proxy 127.0.0.1]
//                          [--config router.json] [--log-level info]

export { startRouter, type Router, type StartRouterOptions };

export type RouterFlags = {
  indexer: string;
  port: number;
  host: string;
  snapshot: string | undefined;
  devnet: boolean;
  trustProxy: string[];
  /** Routing parameters from the --config file (router/README.md lists them); undefined: the defaults. */
  routing: RoutingOverrides | undefined;
  logLevel: LogLevel;
};


export const usage = `usage: router --indexer <url> [--port <n>] [--host <addr>] [--snapshot <file>] [--devnet] [--trust-proxy <list>] [--config <file>] [--log-level ${logLevels.join("|")}]
  --indexer    the indexer's base URL (serves /sql and /ready); env DIN_INDEXER_URL
  --port       port to listen on (default 8080, as the devnet's router: 8545 is a local node's; 0 lets the OS choose)
  --host       address to listen on (default 127.0.0.1)
  --snapshot   file keeping the last provider set, used when the indexer is away at start-up
  --devnet     allow loopback and private provider endpoints (local devnet only)
  --trust-proxy <list>
               proxies in front of the router, comma-separated addresses or CIDR blocks: their
               X-Forwarded-For names the client that per-client limits count; env DIN_TRUST_PROXY
  --config     a JSON file of routing parameters to change, e.g. {"limits": {"maxCallsInFlight": 32768}}
               (every parameter and its default: router/README.md); env DIN_ROUTER_CONFIG
  --log-level  the least level of the JSON log lines on stdout (default info; silent: none; from warn
               on, the address it listens on is said on stderr)
  --help       this text`;

/** The routing parameters in a --config file; throws naming the file, where it was named (`source`), and what is wrong in it. */
function readRoutingConfig(path: string, source: string): RoutingOverrides {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`${source} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    return parseRoutingConfig(text);
  } catch (error) {
    throw new Error(`${source} ${path}: ${(error as Error).message}`);
  }
}

/** The indexer's base URL: http(s), without credentials (fetch refuses URLs that carry them); `source` names where it came from. */
function checkIndexerUrl(text: string, source: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${source} must be a URL such as http://127.0.0.1:42069, got "${text}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`${source} must be an http:// or https:// URL, got "${text}"`);
  if (url.username !== "" || url.password !== "") throw new Error(`${source} must not carry a user name or password`);
  // The devnet prints the indexer's GraphQL URL: the router reads /sql and /ready under the base.
  const endpoint = /\/(graphql|sql|ready)\/?$/.exec(url.pathname);
  if (endpoint !== null) {
    throw new Error(`${source} is the indexer's base URL, not its /${endpoint[1]} endpoint: give ${url.origin}${url.pathname.slice(0, endpoint.index)}`);
  }
}

/** Whether the command line asks for the usage (`--help` or `-h`, wherever it stands). */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.some((arg) => arg === "--help" || arg === "-h");
}

/** node:util's parse error, said for this command: the flag's own message where one fits. */
function flagError(error: Error, argv: readonly string[]): Error {
  // "--port -1": node reads -1 as a flag and calls the value ambiguous.
  const ambiguous = /^Option '(--[a-z-]+)(?: <value>)?' argument is ambiguous/.exec(error.message);
  if (ambiguous !== null) {
    const flag = ambiguous[1];
    const value = argv[argv.indexOf(flag) + 1] ?? "";
    if (flag === "--port") return new Error(`--port must be a number 0…65535, got "${value}"`);
    return new Error(`${flag} needs a value, and "${value}" reads as a flag: write ${flag}=${value} if it is the value`);
  }
  return new Error(`${parseArgsProblem(error)} (router --help lists the flags)`);
}

const flagOptions = {
  indexer: { type: "string" },
  port: { type: "string", default: "8080" },
  host: { type: "string", default: "127.0.0.1" },
  snapshot: { type: "string" },
  devnet: { type: "boolean", default: false },
  "trust-proxy": { type: "string" },
  config: { type: "string" },
  "log-level": { type: "string", default: "info" },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies ParseArgsConfig["options"];

/** Parses the router's command-line flags (main answers --help first: see wantsHelp); throws saying what is wrong. */
export function parseRouterFlags(argv: readonly string[], env: NodeJS.ProcessEnv = {}): RouterFlags {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: flagOptions, strict: true });
  } catch (error) {
    throw flagError(error as Error, argv);
  }
  const { values } = parsed;
  if (values.help) throw new Error(usage);
  const indexer = values.indexer ?? env.DIN_INDEXER_URL;
  if (indexer === undefined) throw new Error(`the router needs --indexer <url>\n${usage}`);
  checkIndexerUrl(indexer, values.indexer !== undefined ? "--indexer" : "DIN_INDEXER_URL");
  // An empty flag is a mistake (an unset variable in a script): an empty --host would listen on every interface.
  for (const flag of ["host", "config"] as const) {
    if (values[flag]?.trim() === "") throw new Error(`--${flag} is empty: give it a value, or leave the flag out`);
  }
  const port = /^[0-9]{1,5}$/.test(values.port) ? Number(values.port) : Number.NaN;
  if (!(port <= 65_535)) throw new Error(`--port must be a number 0…65535, got "${values.port}"`);
  const logLevel = values["log-level"] as LogLevel;
  if (!logLevels.includes(logLevel)) throw new Error(`--log-level must be debug, info, warn, error or silent, got "${logLevel}"`);
  // DIN_TRUST_PROXY set empty means none.
  if (values["trust-proxy"]?.trim() === "") throw new Error("--trust-proxy is empty: name the proxies in front of the router, or leave the flag out");
  const trustList = values["trust-proxy"] ?? env.DIN_TRUST_PROXY ?? "";
  const trustProxy = trustList.trim() === "" ? [] : trustList.split(",").map((entry) => entry.trim());
  try {
    new TrustedProxies(trustProxy); // a bad entry is refused here, before anything starts
  } catch (error) {
    throw new Error(`${values["trust-proxy"] !== undefined ? "--trust-proxy" : "DIN_TRUST_PROXY"} "${trustList}": ${(error as Error).message}`);
  }
  if (values.snapshot !== undefined) {
    try {
      checkSnapshotPath(values.snapshot);
    } catch (error) {
      throw new Error(`--snapshot: ${(error as Error).message}`);
    }
  }
  // DIN_ROUTER_CONFIG set empty means none.
  const config = values.config ?? env.DIN_ROUTER_CONFIG;
  const routing = config === undefined || config === "" ? undefined : readRoutingConfig(config, values.config !== undefined ? "--config" : "DIN_ROUTER_CONFIG");
  return { indexer, port, host: values.host, snapshot: values.snapshot, devnet: values.devnet, trustProxy, routing, logLevel };
}

/** Runs the router until SIGINT/SIGTERM. */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  if (wantsHelp(argv)) {
    console.log(usage);
    return;
  }
  let flags;
  try {
    flags = parseRouterFlags(argv, process.env);
  } catch (error) {
    throw usageError((error as Error).message);
  }
  const router = await startRouter({
    indexerUrl: flags.indexer,
    port: flags.port,
    host: flags.host,
    snapshotPath: flags.snapshot,
    devnet: flags.devnet,
    trustProxy: flags.trustProxy,
    routing: flags.routing,
    logLevel: flags.logLevel,
  });
  // At warn, error or silent the "router listening" line (an info one) is not written: the
  // address (with --port 0, a port the OS chose) is said on stderr instead, once (a gateway
  // walkthrough found it nowhere).
  if (!writesAt(flags.logLevel, "info")) console.error(`router listening on ${router.url} (JSON-RPC: POST ${router.url}/rpc/<chainId>)`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    router.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(exitCodeOf(error));
  });
}
