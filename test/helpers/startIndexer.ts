import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startIndexer as start, type Indexer, type StartIndexerOptions } from "../../scripts/indexer.ts";

export type TestIndexer = Indexer & {
  dataDir: string;
  /** Stops the process and removes its data. */
  dispose: () => Promise<void>;
  /** POSTs a GraphQL query and returns `data` (throws on errors). */
  graphql: <T>(query: string) => Promise<T>;
};

/** Ponder in a temp folder (PGlite) or on `databaseUrl`, indexing the given chain's deployment. */
export async function startIndexer(
  options: Omit<StartIndexerOptions, "dataDir"> & { dataDir?: string },
): Promise<TestIndexer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "opendin-indexer-")));
  const indexer = await start({ ...options, dataDir }).catch(async (failure: unknown) => {
    // A start that fails (some tests expect it to) leaves no folder behind either.
    if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    throw failure;
  });
  const graphql = async <T>(query: string): Promise<T> => {
    const response = await fetch(`${indexer.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query }),
    });
    const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
    if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join("; "));
    return body.data as T;
  };
  return {
    ...indexer,
    dataDir,
    graphql,
    dispose: async () => {
      await indexer.stop();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
