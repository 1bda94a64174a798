import { closeSync, mkdirSync, openSync, rmSync, statSync } from "node:fs";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { literalHostClass } from "./endpointPolicy.ts";
import { SnapshotError } from "./errors.ts";
import type { ProviderRecord } from "./providerSet.ts";

// The last provider set the indexer gave, on disk, so a router restarted while the indexer is away
// still has providers to route to. JSON with amounts as decimal strings; written atomically, and
// for the indexer it came from (a router pointed at another indexer must not serve it).

type SnapshotFile = {
  version: 2;
  writtenAt: string;
  /** The indexer base URL the set came from. */
  indexerUrl: string;
  /** The block the indexer had indexed when it gave the set; null when it did not say. */
  block: number | null;
  providers: { address: string; chainId: number; url: string; stake: string; slashedTotal: string; name: string }[];
};

/**
 * A snapshot as read: its rows are raw (a file can be damaged or edited by hand), so the reader
 * runs them through normalizeRecords like rows from the indexer.
 */
export type Snapshot = { writtenAt: string | null; indexerUrl: string; block: number | null; providers: unknown[] };

/**
 * Whether two spellings of an indexer's base URL name one indexer: the same scheme, port and path,
 * and the same host, with every loopback spelling one (a devnet prints 127.0.0.1, a gateway may
 * write localhost: the snapshot was refused for that alone, in a gateway walkthrough).
 */
export function sameIndexerUrl(a: string, b: string): boolean {
  const key = (text: string) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return text;
    }
    const host = url.hostname === "localhost" || literalHostClass(url.hostname) === "loopback" ? "loopback" : url.hostname;
    return `${url.protocol}//${host}:${url.port}${url.pathname.replace(/\/+$/, "")}`;
  };
  return key(a) === key(b);
}

export async function writeSnapshot(path: string, providers: readonly ProviderRecord[], indexerUrl: string, block: number | null = null): Promise<void> {
  const file: SnapshotFile = {
    version: 2,
    writtenAt: new Date().toISOString(),
    indexerUrl,
    block,
    providers: providers.map((p) => ({
      address: p.address,
      chainId: p.chainId,
      url: p.url,
      stake: p.stake.toString(),
      slashedTotal: p.slashedTotal.toString(),
      name: p.name,
    })),
  };
  await mkdir(dirname(path), { recursive: true });
  const temporary = temporaryPath(path);
  // Created afresh, never opened through what is there: a link planted at the name in a shared
  // directory would have the router write over the file it points to.
  await rm(temporary, { force: true });
  const handle = await open(temporary, "wx");
  try {
    try {
      await handle.writeFile(`${JSON.stringify(file, null, 2)}\n`);
      // On disk before the rename: otherwise a power cut can leave the new name on an empty file.
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    // A full disk, or a directory at the path: no half-written file left behind at each attempt.
    await rm(temporary, { force: true }).catch(() => {});
    throw error;
  }
}

/** mkdir -p one level at a time: Node's recursive mkdirSync loops for ever on some paths (/proc/x). */
function makeDirectory(directory: string): void {
  try {
    mkdirSync(directory);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && statSync(directory).isDirectory()) return;
    if (code !== "ENOENT" || dirname(directory) === directory) throw error;
    makeDirectory(dirname(directory));
    mkdirSync(directory);
  }
}

/** Where a snapshot is written before it is renamed into place. */
function temporaryPath(path: string): string {
  return `${path}.${process.pid}.tmp`;
}

/**
 * Checks at start that a snapshot can be written at `path`, by creating (then removing) the file
 * written before each rename: its directory exists or can be made, is writable, and the path is
 * not a directory. Otherwise every write would fail, each with a warning, long after start.
 * Throws SnapshotError saying why.
 */
export function checkSnapshotPath(path: string): void {
  if (path === "") throw new SnapshotError('""', "the path is empty: name a file such as .router/providers.json");
  const code = (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  let isDirectory = false;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    // Not there yet: the first write creates it.
  }
  if (isDirectory) throw new SnapshotError(path, `it is a directory: name a file in it, such as ${join(path, "providers.json")}`);
  const directory = dirname(path);
  try {
    makeDirectory(directory);
  } catch (error) {
    const file = fileInTheWay(directory);
    if (file !== null) throw new SnapshotError(path, `${file} is a file, not a directory`);
    throw new SnapshotError(path, `its directory ${directory} cannot be created (${code(error)})`);
  }
  const temporary = temporaryPath(path);
  try {
    rmSync(temporary, { force: true });
    closeSync(openSync(temporary, "wx")); // as writeSnapshot creates it
  } catch (error) {
    throw new SnapshotError(path, `no file can be written in ${directory} (${code(error)})`);
  }
  rmSync(temporary, { force: true });
}

/** The nearest of `directory` and its parents that exists and is not a directory (mkdir's EEXIST or ENOTDIR), or null. */
function fileInTheWay(directory: string): string | null {
  for (let at = directory; ; at = dirname(at)) {
    try {
      return statSync(at).isDirectory() ? null : at;
    } catch {
      if (dirname(at) === at) return null;
    }
  }
}

/** Reads a snapshot; null when there is none, SnapshotError when it is unreadable or of an unknown format. */
export async function readSnapshot(path: string): Promise<Snapshot | null> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new SnapshotError(path, (error as Error).message);
  }
  let file: Partial<Record<keyof SnapshotFile, unknown>> | null;
  try {
    file = JSON.parse(text) as typeof file;
  } catch {
    throw new SnapshotError(path, "not JSON");
  }
  if (typeof file !== "object" || file === null || Array.isArray(file)) throw new SnapshotError(path, "not a provider-set snapshot (a JSON object with version, indexerUrl and providers)");
  if (file.version === undefined) throw new SnapshotError(path, `"version" is missing (this router reads version 2)`);
  if (file.version !== 2) throw new SnapshotError(path, `version ${JSON.stringify(file.version)} is not one this router reads (it reads 2)`);
  if (typeof file.indexerUrl !== "string") throw new SnapshotError(path, `"indexerUrl" is missing or not a string`);
  if (!Array.isArray(file.providers)) throw new SnapshotError(path, `"providers" is missing or not a list`);
  return {
    writtenAt: typeof file.writtenAt === "string" ? file.writtenAt : null,
    indexerUrl: file.indexerUrl,
    // Written before routers recorded it, or edited: unknown, so any set from the indexer is taken.
    block: Number.isSafeInteger(file.block) && (file.block as number) >= 0 ? (file.block as number) : null,
    providers: file.providers,
  };
}
