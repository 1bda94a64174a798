import { createClient, sql } from "@ponder/client";
import type { Logger } from "./log.ts";
import { readSnapshot, sameIndexerUrl, writeSnapshot, type Snapshot } from "./snapshot.ts";

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
  /** live: the indexer's live query is connected; connecting: at start-up, or again once a live query ended; unreachable: serving the last known set. */
  state: "live" | "connecting" | "unreachable" | "static";
  servingFrom: "indexer" | "snapshot" | "static" | "none";
  /** When the set in force last changed (or was first taken). */
  lastUpdateAt: string | null;
  /** When the indexer last gave the set, changed or not (null: it has not since start-up): a set it re-confirmed is not old. */
  confirmedAt: string | null;
  /** Why the indexer is away, or why its newest set is not taken yet, in our own words: /status is public, so never the indexer's text. */
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

/**
 * Why no router would use an endpoint the registry accepts (its chain id or URL), or undefined;
 * the CLI asks before registering one. Routers also skip ws:// and wss:// URLs (they speak HTTP).
 */
export function endpointProblem(chainId: bigint, url: string): string | undefined {
  if (chainId <= 0n || chainId > BigInt(Number.MAX_SAFE_INTEGER)) return `chain id ${chainId} is not one routers read (1 to 2^53 − 1)`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "routers cannot read it as a URL";
  }
  if (parsed.username !== "" || parsed.password !== "") return "the URL must not hold a user name or password: the registry is public (a key may go in the path)";
  return undefined;
}

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
      const stake = BigInt(String(r.stake));
      const slashedTotal = BigInt(String(r.slashedTotal ?? r.slashed_total ?? "0"));
      if (
        !addressPattern.test(address) ||
        !Number.isSafeInteger(chainId) ||
        endpointProblem(BigInt(chainId), url) !== undefined ||
        !/^https?:\/\//i.test(url) ||
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
      lastUpdateAt,
      confirmedAt: null,
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
  /** How long a set read behind the one in force is held back, waiting for the indexer to catch up (ms). */
  catchUpWaitMs?: number;
  log: Logger;
};

// Eligible providers (status 'active': registered, not jailed, stake ≥ minimum) joined with their
// endpoints, one row per (provider, chain). Raw SQL keeps the router independent of the indexer's
// code; Ponder parses it to learn which tables the live query depends on.
const eligibleEndpoints = sql`select e.provider as address, e.chain_id as chain_id, e.url as url, p.active_stake as stake, p.slashed_total as slashed_total, p.name as name from endpoint e inner join provider p on p.address = e.provider where p.status = 'active'`;

/** A failure with the router's own sentence, safe to show on /status; the raw error is its cause. */
class IndexerError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "IndexerError";
  }
}

/** How much of an indexer's error the log keeps (its bodies can be megabytes). */
const maxLoggedDetail = 2_000;

/** Ends /status's words for a failure whose detail only the log has (the log's own lines leave it out). */
const seeTheLog = " (details in the router's log)";

/** What /status says about a failure: our own sentence, or the socket error code, never the indexer's text. */
function publicReason(error: unknown): string {
  if (error instanceof IndexerError) return error.message;
  const code = networkCode(error);
  return code === null ? `the indexer connection failed${seeTheLog}` : `cannot reach the indexer (${code})`;
}

/** ECONNREFUSED and the like, from fetch's error or one of its causes. */
function networkCode(error: unknown): string | null {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^[A-Z][A-Z0-9_]*$/.test(code)) return code;
  }
  return null;
}

/** The whole story of a failure, for the log only. */
function logDetail(error: unknown): string {
  const parts: string[] = [];
  for (let e = error, depth = 0; e !== undefined && depth < 4; e = e instanceof Error ? e.cause : undefined, depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
  }
  return parts.join(" ← ").slice(0, maxLoggedDetail);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new IndexerError(`${what} did not answer within ${ms} ms`)), ms);
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
  const catchUpWaitMs = options.catchUpWaitMs ?? 120_000;

  let state: ProviderSetStatus["state"] = "connecting";
  let servingFrom: ProviderSetStatus["servingFrom"] = "none";
  let lastUpdateAt: string | null = null;
  let confirmedAt: string | null = null;
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
  let liveSince = 0; // Date.now() when the current connection went live
  // A live query that held for a while ended, and one reconnection is under way before it is called
  // an outage: SSE streams end now and then (Ponder's every five minutes, a proxy's idle timeout).
  let reconnecting = false;
  let querying = false; // a plain query still waits for the indexer's answer
  const stopping = new AbortController();
  let firstSet: () => void = () => {};
  let snapshotWrite: Promise<void> = Promise.resolve();
  let liveEvents = 0; // a plain query started before the latest live event is older than it
  // The block the indexer had indexed when the set in force was read (-1: unknown). A restarted
  // Ponder starts again from its last finalized block (30 to 240 blocks back, by chain) and serves
  // that older state, ready, for the seconds it takes to catch up; a reorg steps back too. Taking
  // such a set would bring back jailed providers and drop new ones: it is held back instead.
  let servedBlock = -1;
  let behindSince = 0; // Date.now() when a set was first found behind servedBlock; 0: not behind
  let arrivals = 0; // sets that arrived: only the latest one is taken
  let droppedBefore = 0; // rows of the last set taken that the router cannot use: said when that changes
  let catchUpTimer: NodeJS.Timeout | undefined;
  let behind: string | null = null; // why a newer set is not taken, for /status

  /** Takes `records` read at `block` (null: unknown), from the indexer or, at start-up, the snapshot. */
  const deliver = (records: ProviderRecord[], from: "indexer" | "snapshot", block: number | null) => {
    servingFrom = from;
    if (from === "indexer") confirmedAt = new Date().toISOString();
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
        .then(() => writeSnapshot(path, records, base, block))
        .catch((error: Error) => log.warn("could not write the provider-set snapshot", { path, error: error.message }));
    }
  };

  /** The highest block the indexer has indexed (its GET /status); null when it does not say. */
  const indexedBlock = async (): Promise<number | null> => {
    try {
      const answer = await fetch(`${base}/status`, { signal: AbortSignal.any([AbortSignal.timeout(requestTimeoutMs), stopping.signal]) });
      if (!answer.ok) {
        await answer.body?.cancel();
        return null;
      }
      let highest: number | null = null;
      for (const chain of Object.values((await answer.json()) as Record<string, { block?: { number?: unknown } } | null>)) {
        const n = chain?.block?.number;
        if (typeof n === "number" && Number.isSafeInteger(n) && n >= (highest ?? 0)) highest = n;
      }
      return highest;
    } catch {
      return null;
    }
  };

  /**
   * Takes a set from the indexer, unless it is behind the set in force. A plain query reads the
   * indexer's block around its rows (`readAt`: the rows are at least that new); a live update's
   * block is read after it arrived, so its rows may be older than that block.
   */
  const apply = async (rows: unknown, mine: number, readAt?: number | null): Promise<void> => {
    const turn = ++arrivals;
    const block = readAt !== undefined ? readAt : await indexedBlock();
    if (mine !== generation || stopped || turn !== arrivals) return; // a newer set arrived meanwhile
    clearTimeout(catchUpTimer);
    // Catching up, a live update proves nothing about its rows' block: read again, block first.
    if (behindSince !== 0 && readAt === undefined && block !== null) return holdBack(mine, 0);
    if (block !== null && block < servedBlock) {
      if (behindSince === 0) {
        behindSince = Date.now();
        log.warn("the indexer is behind the set in force (restarted, or a reorg): keeping that set until it catches up", { indexedBlock: block, servedBlock });
      }
      behind = `the indexer is catching up (at block ${block}; the set in force was read at block ${servedBlock}): that set is kept meanwhile`;
      if (Date.now() - behindSince < catchUpWaitMs) return holdBack(mine);
      log.warn("the indexer stayed behind the set in force: taking its set", { indexedBlock: block, servedBlock, waitedMs: Date.now() - behindSince });
    } else if (behindSince !== 0) {
      log.warn("the indexer caught up: taking its set again", { indexedBlock: block, waitedMs: Date.now() - behindSince });
    }
    behindSince = 0;
    behind = null;
    if (block !== null) servedBlock = block;
    const list = Array.isArray(rows) ? rows : [];
    const { records, dropped } = normalizeRecords(list);
    // Said once, not at each update: a provider's ws:// endpoint (the registry takes it) is left out for as long as it stays.
    if (dropped > 0 && dropped !== droppedBefore) log.warn("left out provider rows of the indexer that the router cannot use (an endpoint not http(s), or a malformed row)", { dropped });
    droppedBefore = dropped;
    deliver(records, "indexer", block);
  };

  /** Keeps the set in force, and reads the indexer's set again in a second: it is catching up. */
  const holdBack = (mine: number, delayMs = 1_000) => {
    catchUpTimer = setTimeout(() => {
      if (mine !== generation || stopped) return;
      if (querying) holdBack(mine);
      else query(mine).catch((error: unknown) => lost(error, mine));
    }, delayMs);
    catchUpTimer.unref();
  };

  const lost = (error: unknown, mine: number) => {
    if (mine !== generation || stopped) return;
    generation++;
    subscription?.unsubscribe();
    subscription = null;
    clearInterval(reconcileTimer);
    const wasLive = state === "live";
    // Only a connection that held for a while earns a quick retry: one that drops as soon as it
    // is up (a flapping indexer) keeps backing off, or it would be retried every reconnectMinMs.
    const heldAWhile = wasLive && Date.now() - liveSince >= reconnectMaxMs;
    if (heldAWhile) backoff = reconnectMinMs;
    const previous = lastError;
    lastError = publicReason(error);
    const fields = { error: lastError.replace(seeTheLog, ""), detail: logDetail(error), retryInMs: backoff };
    if (heldAWhile) {
      // Not an outage yet (the set in force is kept either way): the warning waits for the retry to fail.
      state = "connecting";
      reconnecting = true;
      log.info("the indexer's live query ended: reconnecting", fields);
    } else {
      state = "unreachable";
      // Warn on news only: an indexer that stays away would otherwise fill the log at every retry.
      if (wasLive || reconnecting) log.warn("indexer unreachable: serving the last known provider set", fields);
      else if (lastError !== previous) log.warn("cannot connect to the indexer", fields);
      else log.debug("cannot connect to the indexer", fields);
      reconnecting = false;
    }
    reconnectTimer = setTimeout(connect, backoff);
    backoff = Math.min(reconnectMaxMs, backoff * 2);
  };

  // @ponder/client's query takes no abort signal, so a /sql that does not answer keeps its socket
  // until undici gives up (minutes): the router stops waiting at requestTimeoutMs, and asks again
  // only once the indexer has answered, so a hung indexer holds one socket, not one per retry.
  const query = async (mine: number): Promise<void> => {
    if (querying) throw new IndexerError("the indexer's /sql has not answered its previous query yet");
    querying = true;
    const seen = liveEvents;
    const before = await indexedBlock();
    const asked = client.db.execute(eligibleEndpoints).finally(() => {
      querying = false;
    });
    let rows: unknown;
    try {
      rows = await withTimeout(asked, requestTimeoutMs, "the indexer's /sql");
    } catch (error) {
      // An error the indexer answered with is its text (a database error, say): for the log only.
      if (error instanceof IndexerError || networkCode(error) !== null) throw error;
      throw new IndexerError(`the indexer's /sql answered with an error${seeTheLog}`, error);
    }
    // The block on both sides of the rows: they are at least as new as the lower one (which also
    // catches an indexer that stepped back in between).
    const after = await indexedBlock();
    const readAt = before === null ? after : after === null ? before : Math.min(before, after);
    if (seen === liveEvents) await apply(rows, mine, readAt);
  };

  const liveFailed = (error: Error) =>
    error.message === "server disconnected" // @ponder/client's words for a stream that failed or ended
      ? new IndexerError("the indexer's live query disconnected", error)
      : new IndexerError(`the indexer's live query sent an unreadable update${seeTheLog}`, error);

  /** GET /ready, aborted when it outlasts requestTimeoutMs or when the source stops. */
  const ready = async (): Promise<void> => {
    let answer: Response;
    try {
      answer = await fetch(`${base}/ready`, { signal: AbortSignal.any([AbortSignal.timeout(requestTimeoutMs), stopping.signal]) });
    } catch (error) {
      if ((error as Error).name === "TimeoutError") throw new IndexerError(`the indexer's /ready did not answer within ${requestTimeoutMs} ms`, error);
      throw error;
    }
    const reader = answer.body?.getReader();
    const first = reader === undefined ? "" : Buffer.from((await reader.read()).value ?? []).toString("utf8", 0, 200);
    await reader?.cancel();
    // Ponder answers 200 or 503 (still indexing); anything else is not a Ponder indexer's base URL (a router's, say).
    if (answer.status === 503) throw new IndexerError("the indexer is not ready yet (GET /ready → HTTP 503: still indexing)");
    if (!answer.ok) throw new IndexerError(`the indexer URL answers GET /ready with HTTP ${answer.status}: it is not an OpenDIN indexer's base URL (Ponder answers 200, or 503 while indexing)`);
    // Ponder's 200 has no body; a chain node answers any GET with a JSON-RPC error, and 200 (Hardhat's).
    if (first.length > 0) {
      const what = first.includes('"jsonrpc"') ? "as a chain's JSON-RPC node does (is it the chain's RPC URL?)" : "with a body Ponder never sends";
      throw new IndexerError(`the indexer URL answers GET /ready ${what}: it is not an OpenDIN indexer's base URL`);
    }
  };

  async function connect(): Promise<void> {
    if (stopped) return;
    const mine = ++generation;
    try {
      await ready();
      if (mine !== generation || stopped) return;
      subscription = client.live(
        (db) => db.execute(eligibleEndpoints),
        (rows) => {
          liveEvents++;
          apply(rows, mine).catch((error: unknown) => lost(error, mine));
        },
        (error) => lost(liveFailed(error), mine),
      );
      await query(mine);
      if (mine !== generation || stopped) return;
      // Back after a warning that it was away: said at the warning's level, so a log read at that
      // level (the devnet's) shows the outage ended.
      if (state === "unreachable") log.warn("indexer reachable again: taking the provider set from its live query", { indexerUrl: base });
      else if (state !== "live") log.info("indexer live query connected", { indexerUrl: base });
      state = "live";
      reconnecting = false;
      liveSince = Date.now();
      lastError = null;
      reconcileTimer = setInterval(() => {
        // A query still under way (a catch-up read) is this one's answer; one that hangs times out on its own.
        if (!querying) query(mine).catch((error: unknown) => lost(error, mine));
      }, reconcileIntervalMs);
      reconcileTimer.unref();
    } catch (error) {
      lost(error, mine);
    }
  }

  /** At start-up without the indexer: the snapshot's sound rows, or nothing if it cannot be used. */
  async function serveSnapshot(path: string): Promise<void> {
    let snapshot: Snapshot | null;
    try {
      snapshot = await readSnapshot(path);
    } catch (error) {
      log.warn("ignoring the provider-set snapshot: starting with no providers until the indexer answers", { error: (error as Error).message });
      return;
    }
    if (snapshot === null || servingFrom !== "none") return;
    if (!sameIndexerUrl(snapshot.indexerUrl, base)) {
      log.warn("ignoring the provider-set snapshot: it was written for another indexer", { path, writtenFor: snapshot.indexerUrl, indexerUrl: base });
      return;
    }
    const { records, dropped } = normalizeRecords(snapshot.providers);
    if (dropped > 0) log.warn("dropped malformed provider rows from the snapshot", { path, dropped });
    log.warn("indexer unreachable at start-up: serving the provider-set snapshot", { path, writtenAt: snapshot.writtenAt, block: snapshot.block, providers: records.length });
    // An indexer that comes back behind the snapshot (restarted too) is held back as for a live set.
    if (snapshot.block !== null) servedBlock = snapshot.block;
    deliver(records, "snapshot", snapshot.block);
  }

  return {
    start: async (onSet) => {
      listener = onSet;
      log.info("taking the provider set from the indexer", { indexerUrl: base, snapshotPath: options.snapshotPath ?? null });
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
      if (!waited && options.snapshotPath !== undefined) await serveSnapshot(options.snapshotPath);
    },
    status: () => ({
      source: "indexer",
      state,
      servingFrom,
      lastUpdateAt,
      confirmedAt,
      lastError: lastError ?? (state === "live" ? behind : null),
      updates,
    }),
    stop: async () => {
      stopped = true;
      generation++;
      stopping.abort();
      clearTimeout(reconnectTimer);
      clearTimeout(catchUpTimer);
      clearInterval(reconcileTimer);
      subscription?.unsubscribe();
      subscription = null;
      await snapshotWrite;
    },
  };
}
