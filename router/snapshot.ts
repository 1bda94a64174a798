import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { SnapshotError } from "./errors.ts";
import type { ProviderRecord } from "./providerSet.ts";

// The last provider set the indexer gave, on disk, so a router restarted while the indexer is away
// still has providers to route to. JSON with amounts as decimal strings; written atomically.

type SnapshotFile = {
  version: 1;
  writtenAt: string;
  providers: { address: string; chainId: number; url: string; stake: string; slashedTotal: string; name: string }[];
};

export type Snapshot = { writtenAt: string; providers: ProviderRecord[] };

export async function writeSnapshot(path: string, providers: readonly ProviderRecord[]): Promise<void> {
  const file: SnapshotFile = {
    version: 1,
    writtenAt: new Date().toISOString(),
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
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(file, null, 2)}\n`);
  await rename(temporary, path);
}

/** Reads a snapshot; null when there is none, SnapshotError when it is unreadable. */
export async function readSnapshot(path: string): Promise<Snapshot | null> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new SnapshotError(path, (error as Error).message);
  }
  let file: SnapshotFile;
  try {
    file = JSON.parse(text) as SnapshotFile;
  } catch {
    throw new SnapshotError(path, "not JSON");
  }
  if (file.version !== 1 || !Array.isArray(file.providers)) throw new SnapshotError(path, "unknown format (expected version 1)");
  try {
    return {
      writtenAt: String(file.writtenAt),
      providers: file.providers.map((p) => ({
        address: String(p.address).toLowerCase(),
        chainId: Number(p.chainId),
        url: String(p.url),
        stake: BigInt(p.stake),
        slashedTotal: BigInt(p.slashedTotal),
        name: String(p.name ?? ""),
      })),
    };
  } catch (error) {
    throw new SnapshotError(path, (error as Error).message);
  }
}
