import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createClient } from "@ponder/client";
import pg from "pg";
import * as schema from "../indexer/ponder.schema.ts";
import { createPublicClient, http } from "viem";
import { deploymentProblem, readDeployment, type Deployment } from "./deployment.ts";
import { collectOutput, exitWithParent, stopChild } from "./childProcess.ts";
import { exitCodeOf, parseArgsProblem, usageError } from "./cli/cliError.ts";
import { freePort, portIsFree } from "./freePort.ts";

// `npm run indexer` and `din indexer`: the Ponder indexer of indexer/, started as its own process
// with its inputs passed in the environment (see indexer/ponder.config.ts).

export type StartIndexerOptions = {
  rpcUrl: string;
  /** The deployment, or the path of its file. */
  deployment: Deployment | string;
  /** Port for GraphQL, /sql, /health and /ready; a free one when omitted. */
  port?: number;
  /** Fail when `port` is taken rather than take the next free one (an indexer others look for at its port). */
  exactPort?: boolean;
  /** The address to listen on (default 127.0.0.1; 0.0.0.0 for every interface). */
  host?: string;
  /** PGlite's folder (ignored with databaseUrl). Also holds the deployment copy Ponder reads. */
  dataDir: string;
  /** PostgreSQL instead of PGlite. */
  databaseUrl?: string;
  /** Database schema for this deployment's tables (default "opendin"). */
  schema?: string;
  /** "start" indexes and serves; "serve" only serves what another indexer writes (PostgreSQL). */
  mode?: "start" | "serve";
  pollingMs?: number;
  /** Ponder's log level (default "warn"). */
  logLevel?: "error" | "warn" | "info" | "debug";
  /** Each line Ponder prints (JSON logs). */
  onLine?: (line: string) => void;
  timeoutMs?: number;
};

export type Indexer = { url: string; port: number; process: ChildProcess; stop: () => Promise<void> };

const indexerRoot = fileURLToPath(new URL("../indexer/", import.meta.url));
const ponderBin = fileURLToPath(new URL("../node_modules/ponder/dist/esm/bin/ponder.js", import.meta.url));

/** Starts Ponder and resolves once /ready answers 200 (historical indexing caught up) and live
 * queries are accepted (Ponder turns them on up to a second after /ready). */
export async function startIndexer(options: StartIndexerOptions): Promise<Indexer> {
  if (options.databaseUrl) await checkDatabase(options.databaseUrl);
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  let deploymentPath: string;
  let deployment: Deployment;
  if (typeof options.deployment === "string") {
    deploymentPath = resolve(options.deployment);
    deployment = await readDeployment(deploymentPath);
  } else {
    deploymentPath = resolve(dataDir, "deployment.json");
    deployment = options.deployment;
    await writeFile(deploymentPath, JSON.stringify(deployment));
  }
  // Ponder retries an RPC it cannot reach for ever, a stack trace each time, and indexes a chain
  // without the contracts as an empty registry: asked once first.
  if ((options.mode ?? "start") === "start") {
    const client = createPublicClient({ transport: http(options.rpcUrl, { retryCount: 0, timeout: 10_000 }) });
    const problem = await deploymentProblem(client, deployment, deploymentPath, options.rpcUrl);
    if (problem !== null) throw new Error(problem);
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DIN_DEPLOYMENT: deploymentPath,
    DIN_RPC_URL: options.rpcUrl,
    DIN_POLLING_MS: String(options.pollingMs ?? 200),
    DIN_DATA_DIR: resolve(dataDir, "pglite"),
    PONDER_TELEMETRY_DISABLED: "true",
    FORCE_COLOR: "0",
  };
  if (options.databaseUrl) env.DATABASE_URL = options.databaseUrl;
  else delete env.DATABASE_URL;

  // Ponder runs at info at least: its "Created HTTP server" line says which port it listens on (it
  // takes the next one when the port is taken, by whatever bound it between our choosing it and
  // Ponder listening, and the old port may hold another server: even another Ponder). Lines
  // below the asked level are not passed on.
  const asked = levels[options.logLevel ?? "warn"];
  const level = asked > levels.info ? "info" : (options.logLevel ?? "warn");
  const readyPath = (options.mode ?? "start") === "start" ? "/ready" : "/health";
  const deadline = Date.now() + (options.timeoutMs ?? 120_000); // for all launches together
  const host = options.host ?? "127.0.0.1";
  // Where this machine reaches it: on every interface, through loopback.
  const reachAt = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  const launch = async (port: number): Promise<Indexer> => {
    const requested = port;
    const args = [...exitWithParent.flags, ponderBin, "--root", indexerRoot, "--log-format", "json", "--log-level", level, options.mode ?? "start"];
    args.push("--port", String(port), "--hostname", host, "--schema", options.schema ?? "opendin");
    const child = spawn(process.execPath, args, { cwd: indexerRoot, env: exitWithParent.env(env), stdio: ["ignore", "pipe", "pipe"] });
    let listening = false;
    let crashedOnPort: number | undefined;
    let movedTo: number | undefined;
    const output = collectOutput(child, (line) => {
      const entry = logEntry(line);
      if (entry?.msg === "Created HTTP server" && typeof entry.port === "number") {
        if (options.exactPort && entry.port !== port) movedTo = entry.port;
        port = entry.port;
        listening = true;
      }
      const error = entry?.msg === "uncaughtException" ? (entry.error as { code?: unknown; port?: unknown } | undefined) : undefined;
      if (error?.code === "EADDRINUSE" && typeof error.port === "number") crashedOnPort = error.port;
      if (entry === null || typeof entry.level !== "number" || entry.level >= asked) options.onLine?.(line);
    });
    const url = () => `http://${reachAt}:${port}`;
    // SIGINT: on SIGTERM the Vite server inside Ponder exits the process at once, before Ponder
    // unlocks its schema, and the next start then waits up to half a minute for the lock to expire.
    const stop = () => stopChild(child, 5_000, "SIGINT");

    while (Date.now() < deadline) {
      if (movedTo !== undefined || (options.exactPort && crashedOnPort !== undefined)) {
        await stop();
        throw portTaken(host, requested);
      }
      // (Killed by a signal, a process has no exit code: it waited out the deadline, two minutes.)
      if (child.exitCode !== null || child.signalCode !== null) {
        const reused = /Schema \\?"([^"\\]+)\\?" was previously used by a (different Ponder app|Ponder app with a different minor version)/.exec(output()); // in a JSON log line
        if (reused !== null) throw schemaTaken(reused[1], options.databaseUrl !== undefined);
        const said = output();
        const message = `the indexer exited (${child.exitCode !== null ? `code ${child.exitCode}` : `signal ${child.signalCode}`}) before it was ready${said === "" ? "" : `:\n${said}`}`;
        throw crashedOnPort === undefined ? new Error(message) : new PortTaken(crashedOnPort, message);
      }
      if (listening) {
        try {
          const response = await fetch(`${url()}${readyPath}`, { signal: AbortSignal.timeout(2_000) });
          if (response.status === 200 && (await liveQueriesAnswer(url()))) return { url: url(), port, process: child, stop };
        } catch {
          // not answering yet
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await stop();
    throw new Error(`the indexer was not ready at ${url()} in time:\n${output()}`);
  };

  // Ponder looks past one taken port but crashes on a second in a row (it listens for one "error"
  // only); it is then started again from the port after the one it crashed on.
  let port = options.port ?? (await freePort());
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(port);
    } catch (error) {
      if (!(error instanceof PortTaken) || attempt === 5) throw error;
      port = error.port + 1;
    }
  }
}

/**
 * Connects to PostgreSQL once before Ponder starts. Ponder retries a database it cannot use for
 * about a minute, a stack trace each time, and then says only "check your database connection
 * settings"; this names the server and what it answered (no such database, wrong password,
 * refused, not PostgreSQL) at once.
 */
async function checkDatabase(url: string): Promise<void> {
  let client: pg.Client;
  try {
    client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  } catch (error) {
    throw new Error(`the database URL is not a PostgreSQL connection string (postgresql://user:password@host:port/database): ${(error as Error).message}`);
  }
  const where = `${client.user ? `${client.user}@` : ""}${client.host}:${client.port}${client.database ? `/${client.database}` : ""}`; // no password
  client.on("error", () => {}); // a server gone after the check: Ponder's to report
  try {
    await client.connect();
    await client.query("select 1");
  } catch (error) {
    throw new Error(`cannot use PostgreSQL at ${where}: ${databaseProblem(error)}`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** What went wrong reaching PostgreSQL, in words. */
function databaseProblem(error: unknown): string {
  // Node tries each address of "localhost" and, all refused, throws an AggregateError with no message.
  const e = (error instanceof AggregateError && error.errors.length > 0 ? error.errors[0] : error) as { message?: string; code?: string };
  const message = e.message || e.code || String(error);
  if (message === "Connection terminated unexpectedly") return `${message} (is a PostgreSQL server listening there?)`;
  return message;
}

/** Ponder refuses a schema another build wrote (new code, another Ponder, another deployment) and migrates nothing: what to do. */
function schemaTaken(schema: string, postgres: boolean): Error {
  const drop = postgres ? `DROP SCHEMA "${schema}" CASCADE` : "delete the --data-dir folder";
  return new Error(
    `schema "${schema}" holds the tables of another build of the indexer (its code, its Ponder version or the deployment it indexes changed since), which Ponder does not migrate: index afresh into a new --schema${postgres ? "" : " (or a new --data-dir)"}, point the routers' --indexer at it once its /ready answers, then ${drop}`,
  );
}

/** The error for a port the indexer was told to listen on and cannot. */
function portTaken(host: string, port: number): Error {
  return new Error(`port ${port} on ${host} is taken (by another indexer?): stop what holds it or give another --port`);
}

/** Ponder exited because a port it moved on to was taken as well. */
class PortTaken extends Error {
  readonly port: number;
  constructor(port: number, message: string) {
    super(message);
    this.port = port;
  }
}

/** Ponder's (pino's) levels. */
const levels = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** A line of Ponder's JSON log; null for any other line. */
function logEntry(line: string): { level?: unknown; msg?: unknown; port?: unknown; error?: unknown } | null {
  try {
    const entry: unknown = JSON.parse(line);
    return typeof entry === "object" && entry !== null ? entry : null;
  } catch {
    return null;
  }
}

/**
 * True when /sql/live accepts a subscription. Ponder refuses them (503, seen as an error) for up
 * to a second after /ready, and sends nothing until a table changes, so an open stream without an
 * error for a moment is the answer.
 */
async function liveQueriesAnswer(url: string): Promise<boolean> {
  const client = createClient(`${url}/sql`, { schema });
  return await new Promise((resolve) => {
    const timer = setTimeout(() => finish(true), 1_000);
    const subscription = client.live(
      (db) => db.select().from(schema.parameter).limit(1),
      () => finish(true),
      () => finish(false),
    );
    function finish(answered: boolean) {
      clearTimeout(timer);
      subscription.unsubscribe();
      resolve(answered);
    }
  });
}

const usage = `usage: indexer [--rpc <url>] [--deployment <file>] [--port <n>] [--host <address>] [--data-dir <dir>] [--database-url <url>] [--schema <name>] [--serve]
  --rpc           the chain's JSON-RPC URL (env DIN_RPC_URL; default http://127.0.0.1:8545)
  --deployment    the deployment file (default .devnet/deployment.json)
  --port          port for /graphql, /sql, /health, /ready (default 42069)
  --host          address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for routers on other machines)
  --data-dir      PGlite's folder (default .ponder)
  --database-url  PostgreSQL connection string (env DATABASE_URL); PGlite when absent
  --schema        database schema (default opendin)
  --serve         only serve an existing PostgreSQL schema (a read replica), do not index`;

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const flags = {
    args: [...argv],
    options: {
      rpc: { type: "string" },
      deployment: { type: "string", default: ".devnet/deployment.json" },
      port: { type: "string", default: "42069" },
      host: { type: "string", default: "127.0.0.1" },
      "data-dir": { type: "string", default: ".ponder" },
      "database-url": { type: "string" },
      schema: { type: "string", default: "opendin" },
      serve: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  } as const;
  let values;
  try {
    values = parseArgs(flags).values;
  } catch (error) {
    throw usageError(`${parseArgsProblem(error)} (indexer --help lists the flags)`);
  }
  if (values.help) {
    console.log(usage);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw usageError(`--port must be 1…65535, not "${values.port}"`);
  // Ponder would move to the next free port: an indexer that routers and replicas look for must not.
  // Checked before Ponder starts (an instant answer), and again by what Ponder reports.
  if (!(await portIsFree(values.host, port))) throw portTaken(values.host, port);
  const deployment = await readDeployment(resolve(values.deployment));
  const databaseUrl = values["database-url"] ?? process.env.DATABASE_URL;
  if (values.serve && !databaseUrl) throw new Error("--serve needs PostgreSQL: give --database-url or DATABASE_URL");
  const rpcUrl = values.rpc ?? process.env.DIN_RPC_URL ?? "http://127.0.0.1:8545";
  console.log(
    values.serve
      ? `serving schema ${values.schema} of PostgreSQL, which another indexer writes…`
      : `indexing chain ${deployment.chainId} from block ${deployment.startBlock} via ${rpcUrl} into ${databaseUrl ? "PostgreSQL" : `PGlite at ${values["data-dir"]}`}…`,
  );
  const indexer = await startIndexer({
    rpcUrl,
    deployment,
    port,
    exactPort: true,
    host: values.host,
    dataDir: values["data-dir"],
    databaseUrl,
    schema: values.schema,
    mode: values.serve ? "serve" : "start",
    onLine: (line) => console.log(line),
  });
  console.log(`indexer ready: GraphQL ${indexer.url}/graphql, live SQL ${indexer.url}/sql, ${indexer.url}/ready`);
  const shutdown = () => void indexer.stop().then(() => process.exit(0));
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(`indexer: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(exitCodeOf(error));
  });
}
