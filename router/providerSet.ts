import { createClient, sql } from "@ponder/client";
import type { Logger } from "./log.ts";
import { readSnapshot, writeSnapshot } from "./snapshot.ts";

// Where the router learns which providers exist: per chain, the eligible providers with their
// endpoint, stake and slash history. In production that is a live query on the indexer; tests of
// routing alone may feed a static set. Both sit behind ProviderSetSource.

/** One provider's endpoint on one chain, as the indexer projects it from the registry's events. */
export type ProviderRecord = {
  /** The provider's address, lower case. */
  address: string;
  chainId: number;
  /** http:// or https:// (ws:// endpoints are not routed by this HTTP gateway). */
  url: string;
  /** Active stake, token wei. */
  stake: bigint;
  /** Everything ever slashed from this provider, token wei. */
  slashedTotal: bigint;
  name: string;
};

export type ProviderSetStatus = {
  source: "indexer" | "static";
  /** live: the indexer's live query is connected; unreachable: serving the last known set. */
  state: "live" | "connecting" | "unreachable" | "static";
  servingFrom: "indexer" | "snapshot" | "static" | "none";
  indexerUrl: string | null;
  snapshotPath: string | null;
  lastUpdateAt: string | null;
  lastError: string | null;
  updates: number;
};

export type ProviderSetSource = {
  /**
   * Starts delivering sets to `onSet` (each call replaces the previous set). Resolves once a first
   * set was delivered, or when the source gave up waiting for one at start-up.
   */
  start: (onSet: (records: readonly ProviderRecord[]) => void) => Promise<void>;
  status: () => ProviderSetStatus;
  stop: () => Promise<void>;
};

const addressPattern = /^0x[0-9a-f]{40}$/;

/** Keeps the rows that make routable records; anything malformed is dropped (and counted). */
export function normalizeRecords(rows: readonly unknown[]): { records: ProviderRecord[]; dropped: number } {
  const records: ProviderRecord[] = [];
  let dropped = 0;
  for (const row of rows) {
    try {
      const r = row as Record<string, unknown>;
      const address = String(r.address).toLowerCase();
      const chainId = Number(r.chainId ?? r.chain_id);
      const url = String(r.url);
      const parsed = new URL(url);
      const stake = BigInt(String(r.stake));
      const slashedTotal = BigInt(String(r.slashedTotal ?? r.slashed_total ?? "0"));
      if (
        !addressPattern.test(address) ||
        !Number.isSafeInteger(chainId) ||
        chainId <= 0 ||
        (parsed.protocol !== "http:" && parsed.protocol !== "https:") ||
        parsed.username !== "" ||
        parsed.password !== "" ||
        stake < 0n ||
        slashedTotal < 0n
      ) {
        dropped++;
        continue;
      }
      records.push({ address, chainId, url, stake, slashedTotal, name: String(r.name ?? "") });
    } catch {
      dropped++;
    }
  }
  records.sort((a, b) => a.chainId - b.chainId || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { records, dropped };
}

function fingerprint(records: readonly ProviderRecord[]): string {
  return records.map((r) => `${r.chainId}|${r.address}|${r.url}|${r.stake}|${r.slashedTotal}|${r.name}`).join("\n");
}

/** A fixed set, replaceable by hand: for tests of routing and for running without an indexer. */
export function staticProviderSet(initial: readonly ProviderRecord[]): ProviderSetSource & {
  set: (records: readonly ProviderRecord[]) => void;
} {
  let current = [...initial];
  let listener: ((records: readonly ProviderRecord[]) => void) | null = null;
  let updates = 0;
  let lastUpdateAt: string | null = null;
  const deliver = () => {
    updates++;
    lastUpdateAt = new Date().toISOString();
    listener?.(current);
  };
  return {
    start: async (onSet) => {
      listener = onSet;
      deliver();
    },
    set: (records) => {
      current = [...records];
      deliver();
    },
    status: () => ({
      source: "static",
      state: "static",
      servingFrom: "static",
      indexerUrl: null,
      snapshotPath: null,
      lastUpdateAt,
      lastError: null,
      updates,
    }),
    stop: async () => {
      listener = null;
    },
  };
}

export type IndexerProviderSetOptions = {
  /** The indexer's base URL (it serves /sql and /ready). */
  indexerUrl: string;
  /** Where the last set is kept; read at start-up when the indexer does not answer in time. */
  snapshotPath?: string;
  /** How long start-up waits for the indexer before falling back to the snapshot (ms). */
  startupWaitMs?: number;
  /** Reconnection back-off bounds (ms). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** A full query this often while live, to catch anything a live update missed (ms). */
  reconcileIntervalMs?: number;
  /** Timeout of one query or readiness check (ms). */
  requestTimeoutMs?: number;
  log: Logger;
};

// Eligible providers (status 'active': registered, not jailed, stake ≥ minimum) joined with their
// endpoints, one row per (provider, chain). Raw SQL keeps the router independent of the indexer's
// code; Ponder parses it to learn which tables the live query depends on.
const eligibleEndpoints = sql`select e.provider as address, e.chain_id as chain_id, e.url as url, p.active_stake as stake, p.slashed_total as slashed_total, p.name as name from endpoint e inner join provider p on p.address = e.provider where p.status = 'active'`;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The provider set from the indexer: a @ponder/client live query (server-sent events) plus one
 * plain query per (re)connection, since a live query only speaks when its result changes. While
 * the indexer is unreachable the last set stays in force and reconnection backs off; every set
 * from the indexer is written to the snapshot.
 */
export function indexerProviderSet(options: IndexerProviderSetOptions): ProviderSetSource {
  const base = options.indexerUrl.replace(/\/+$/, "");
  const client = createClient(`${base}/sql`);
  const log = options.log;
  const startupWaitMs = options.startupWaitMs ?? 3_000;
  const reconnectMinMs = options.reconnectMinMs ?? 250;
  const reconnectMaxMs = options.reconnectMaxMs ?? 5_000;
  const reconcileIntervalMs = options.reconcileIntervalMs ?? 30_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 5_000;

  let state: ProviderSetStatus["state"] = "connecting";
  let servingFrom: ProviderSetStatus["servingFrom"] = "none";
  let lastUpdateAt: string | null = null;
  let lastError: string | null = null;
  let updates = 0;
  let current = "";
  let listener: ((records: readonly ProviderRecord[]) => void) | null = null;
  let stopped = false;
  let generation = 0;
  let subscription: { unsubscribe: () => void } | null = null;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let reconcileTimer: NodeJS.Timeout | undefined;
  let backoff = reconnectMinMs;
  let firstSet: () => void = () => {};
  let snapshotWrite: Promise<void> = Promise.resolve();
  let liveEvents = 0; // a plain query started before the latest live event is older than it

  const deliver = (records: ProviderRecord[], from: "indexer" | "snapshot") => {
    servingFrom = from;
    const print = fingerprint(records);
    if (print === current && updates > 0) return;
    current = print;
    updates++;
    lastUpdateAt = new Date().toISOString();
    listener?.(records);
    firstSet();
    if (from === "indexer" && options.snapshotPath !== undefined) {
      const path = options.snapshotPath;
      snapshotWrite = snapshotWrite
        .then(() => writeSnapshot(path, records))
        .catch((error: Error) => log.warn("could not write the provider-set snapshot", { path, error: error.message }));
    }
  };

  const apply = (rows: unknown, mine: number) => {
    if (mine !== generation || stopped) return;
    const list = Array.isArray(rows) ? rows : [];
    const { records, dropped } = normalizeRecords(list);
    if (dropped > 0) log.warn("dropped malformed provider rows from the indexer", { dropped });
    deliver(records, "indexer");
  };

  const lost = (error: Error, mine: number) => {
    if (mine !== generation || stopped) return;
    generation++;
    subscription?.unsubscribe();
    subscription = null;
    clearInterval(reconcileTimer);
    const wasLive = state === "live";
    state = "unreachable";
    lastError = error.message;
    if (wasLive) log.warn("indexer unreachable: serving the last known provider set", { error: error.message, retryInMs: backoff });
    reconnectTimer = setTimeout(connect, backoff);
    backoff = Math.min(reconnectMaxMs, backoff * 2);
  };

  const query = (mine: number) => {
    const seen = liveEvents;
    return withTimeout(client.db.execute(eligibleEndpoints), requestTimeoutMs, "the indexer's /sql").then((rows) => {
      if (seen === liveEvents) apply(rows, mine);
    });
  };

  async function connect(): Promise<void> {
    if (stopped) return;
    const mine = ++generation;
    try {
      const ready = await withTimeout(fetch(`${base}/ready`), requestTimeoutMs, "the indexer's /ready");
      await ready.body?.cancel();
      if (!ready.ok) throw new Error(`the indexer is not ready yet (GET /ready → HTTP ${ready.status})`);
      if (mine !== generation || stopped) return;
      subscription = client.live(
        (db) => db.execute(eligibleEndpoints),
        (rows) => {
          liveEvents++;
          apply(rows, mine);
        },
        (error) => lost(error, mine),
      );
      await query(mine);
      if (mine !== generation || stopped) return;
      if (state !== "live") log.info("indexer live query connected", { indexerUrl: base });
      state = "live";
      lastError = null;
      backoff = reconnectMinMs;
      reconcileTimer = setInterval(() => {
        query(mine).catch((error: Error) => lost(error, mine));
      }, reconcileIntervalMs);
      reconcileTimer.unref();
    } catch (error) {
      lost(error as Error, mine);
    }
  }

  return {
    start: async (onSet) => {
      listener = onSet;
      const first = new Promise<void>((resolve) => {
        firstSet = resolve;
      });
      void connect();
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([
        first.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), startupWaitMs);
        }),
      ]);
      clearTimeout(timer);
      if (waited || options.snapshotPath === undefined) return;
      const snapshot = await readSnapshot(options.snapshotPath);
      if (snapshot !== null && servingFrom === "none") {
        log.warn("indexer unreachable at start-up: serving the provider-set snapshot", {
          path: options.snapshotPath,
          writtenAt: snapshot.writtenAt,
          providers: snapshot.providers.length,
        });
        deliver(snapshot.providers, "snapshot");
      }
    },
    status: () => ({
      source: "indexer",
      state,
      servingFrom,
      indexerUrl: base,
      snapshotPath: options.snapshotPath ?? null,
      lastUpdateAt,
      lastError,
      updates,
    }),
    stop: async () => {
      stopped = true;
      generation++;
      clearTimeout(reconnectTimer);
      clearInterval(reconcileTimer);
      subscription?.unsubscribe();
      subscription = null;
      await snapshotWrite;
    },
  };
}
