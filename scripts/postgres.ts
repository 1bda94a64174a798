import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onFreePort } from "./freePort.ts";

// A throwaway PostgreSQL server on a loopback port, for the indexer's tests and benchmarks.
// PostgreSQL refuses to run as root, so as root it runs as the unprivileged user "nobody".

export type Postgres = { url: string; port: number; stop: () => Promise<void> };

/** Where initdb and pg_ctl are: /usr/local/bin, or Debian's /usr/lib/postgresql/<version>/bin. */
export function findPostgresBin(): string {
  if (existsSync("/usr/local/bin/pg_ctl") && existsSync("/usr/local/bin/initdb")) return "/usr/local/bin";
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const versions = readdirSync(debian).sort((a, b) => Number(b) - Number(a));
    for (const version of versions) if (existsSync(join(debian, version, "bin/pg_ctl"))) return join(debian, version, "bin");
  }
  throw new Error("PostgreSQL is not installed: install Debian's postgresql package (apt-get install postgresql)");
}

export async function startPostgres(): Promise<Postgres> {
  const bin = findPostgresBin();
  const dir = await mkdtemp(join(tmpdir(), "opendin-pg-"));
  await chmod(dir, 0o777);
  const dataDir = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  const run = (command: string, args: string[]) => {
    const [file, argv] = asRoot ? ["runuser", ["-u", "nobody", "--", join(bin, command), ...args]] : [join(bin, command), args];
    const result = spawnSync(file, argv, { encoding: "utf8", cwd: dir });
    if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr || result.stdout}`);
  };
  run("initdb", ["-D", dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const stop = async () => {
    try {
      run("pg_ctl", ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
    } catch {
      // already stopped
    }
    await rm(dir, { recursive: true, force: true });
  };
  // On a port taken before PostgreSQL binds it, the server exits saying so in its log: another port.
  const startOn = async (port: number) => {
    const log = join(dir, `postgres-${port}.log`);
    try {
      run("pg_ctl", [
        "-D", dataDir, "-l", log, "-w", "-t", "60",
        "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
        "start",
      ]);
      return port;
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${await readFile(log, "utf8").catch(() => "")}`);
    }
  };
  let port: number;
  try {
    port = await onFreePort(startOn, (error) => String(error).includes("Address already in use"));
  } catch (error) {
    await stop(); // whatever may have started
    throw error;
  }
  return { url: `postgresql://postgres@127.0.0.1:${port}/postgres`, port, stop };
}

/** True when a PostgreSQL server can be started here (for a clear message when it cannot). */
export function postgresAvailable(): boolean {
  try {
    findPostgresBin();
    execFileSync("id", ["nobody"]);
    return true;
  } catch {
    return false;
  }
}
