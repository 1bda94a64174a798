import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { RpcCode } from "./errors.ts";
import { routeCall, type CallResult, type RouteContext } from "./failover.ts";
import type { ProviderHealth } from "./health.ts";
import { errorResponse, resultResponse, type RpcCall, type RpcId } from "./jsonRpc.ts";
import type { CallOutcome } from "./metrics.ts";
import type { ChainTable } from "./routingTable.ts";
import { classifyRpcError, isRpcError, lacksData, type AnswerBudget } from "./upstream.ts";
import type { ClientLedger, ClientShare } from "./connections.ts";

// Filters (eth_newFilter, eth_newBlockFilter, eth_getFilterChanges, eth_getFilterLogs,
// eth_uninstallFilter) kept by the router rather than by a node: a filter on one provider is lost
// when the next poll goes to another. The router remembers each filter's criteria and the next
// block it has not scanned. A poll asks one provider for the head, then asks for the blocks up to
// it with eth_getLogs (or the blocks' hashes), routed like any call but only to that provider or
// to providers known to hold the range's end (blocks.ts), so a provider behind cannot
// answer "no logs" for blocks it has not seen. The head is one another provider is known to hold
// too (failover.ts's answerHeight): a provider naming blocks nobody else has would move the
// filter past them. ethers' contract.on and viem's event filters poll this way.
// A poll also reads the first and last blocks it scans: when the first no longer descends from
// the last block scanned before, the chain was reorganised, and the filter takes back (as
// `removed: true`) the logs it gave from replaced blocks within the last reorgWindow blocks, and
// gives the replacements' logs (a block filter: the replacements' hashes), as a node would.
// One provider's word is not enough for that: a provider on another chain history would make the
// filter take back and give again everything it gave. When a poll's first block does not follow
// the last block scanned (or a filter's first scan has nothing to follow), up to maxWitnesses
// other providers, drawn by weight among those known to hold it, are asked for the block before
// it (a first scan asks one, and more only if it disagrees); the hash more than half of them and
// the reporter give is the chain's, and the rest of the poll asks only the providers that gave
// it. A reorganisation is
// followed only when that hash is not the one the filter kept; a reporter that gave another is
// not believed (the poll scans again without it). No majority: nothing new this poll. A poll
// whose first block follows the last one asks nothing more than before.

export const filterMethods = new Set(["eth_newFilter", "eth_newBlockFilter", "eth_getFilterChanges", "eth_getFilterLogs", "eth_uninstallFilter"]);

export type FilterLimits = {
  /** Filters open at once on the router; creating one more is refused. */
  maxFilters: number;
  /** The part of them one client may hold, so one client cannot take every filter. */
  maxFiltersPerClient: number;
  /** A filter not polled for this long is removed, as a node does (ms). */
  filterIdleMs: number;
};

/** What a filter call came to: a response object with the client's id. */
export type FilterAnswer = { bytes: Buffer; provider: ProviderHealth | null; attempts: number; outcome: CallOutcome };

type LogCriteria = { address?: string | string[]; topics?: unknown[] };

type Filter = {
  /** The id the client polls it by ("" until installed). */
  id: string;
  /** The client that installed it: its filters count against that client's part. */
  owner: ClientShare;
  chainId: number;
  kind: "logs" | "blocks";
  /** What eth_getLogs is asked with, block range aside. */
  criteria: LogCriteria;
  /** The block range the client gave, as sent (for eth_getFilterLogs) and as numbers (null: open). */
  fromTag: string | undefined;
  toTag: string | undefined;
  from: number | null;
  to: number | null;
  /** The first block not yet scanned. */
  next: number;
  polledAt: number;
  /** A poll is under way: a concurrent one answers nothing new rather than scan the same blocks twice. */
  busy: boolean;
  /** Uninstalled or forgotten (a poll under way then keeps nothing for it). */
  gone: boolean;
  /** The hash of block next - 1 as scanned (null before the first scan). */
  lastHash: string | null;
  /** A log filter: the logs given from blocks recentFrom … next - 1, to take back after a reorganisation, and their bytes. */
  recentLogs: Log[];
  recentFrom: number;
  recentBytes: number;
  /** The newest block of the last reorgWindow whose logs were given but not kept (past the caps). */
  unkept: { number: number; hash: string } | null;
  /** A block filter: the last blocks given, to give their replacements after a reorganisation. */
  recentBlocks: Block[];
  /** Log polls in a row that no provider answered (each answered nothing new), since the last that gave the blocks: see failedPollsTold. */
  failedPolls: number;
};

type Log = { blockNumber: string; blockHash: string; logIndex: string; [field: string]: unknown };
type Block = { number: number; hash: string; parentHash: string };
type Answerer = (resultJson: string | null, callId: RpcId) => FilterAnswer;
type Finish = (ok: boolean, answer: FilterAnswer | null) => void;
/** Whom a poll's calls may go to, and whose budget holds what they bring. */
type Asking = { exclude: readonly ProviderHealth[]; budget: AnswerBudget | null };

/** A client's request as its poll sees it: the answers the poll collects are held against it, and the calls it makes past its own counted in flight. */
export type PollBudget = AnswerBudget & {
  /** Counts up to `wanted` more calls in flight for the client, within its and the router's caps: how many the poll may make (given back with the answer). */
  moreCalls: (wanted: number) => number;
};
/** A vote's outcome: the hash more than half the voters gave (null: none), and the providers that gave it. */
type Tally = { hash: string | null; agreeing: ProviderHealth[] };

/** Blocks one poll scans at most (a client that polls rarely catches up over several polls). */
const maxLogBlocksPerPoll = 2_000;
/**
 * A log poll that no provider answers gives nothing new (the next asks again) until this many in a
 * row have failed, and then the error: a client told of an error installs a new filter at the head
 * (viem, ethers), losing the logs between, so a passing failure must not reach it; one that lasts must.
 */
const failedPollsTold = 3;
const maxHashBlocksPerPoll = 64;
/**
 * How far back a filter can take back what it gave after a reorganisation: the logs of its last
 * reorgWindow blocks (their standard members only), at most maxRecentLogs of them and
 * maxRecentLogBytes, and no more than maxRecentLogsInAll and maxRecentLogBytesInAll over all
 * filters (past it a filter keeps none until others are gone); a block filter, its last
 * recentBlockCount blocks. A reorganisation that replaces a block whose logs were given but not
 * kept removes the filter with an error: taking back only part would leave the client wrong.
 */
const reorgWindow = 64;
const maxRecentLogs = 1_000;
const maxRecentLogsInAll = 200_000;
const maxRecentLogBytes = 1024 * 1024;
const maxRecentLogBytesInAll = 64 * 1024 * 1024;
/** The members of a log a client reads; what else a provider adds is not kept. */
const logMembers = ["address", "topics", "data", "blockNumber", "blockHash", "blockTimestamp", "transactionHash", "transactionIndex", "logIndex", "removed"];
const recentBlockCount = 16;
/**
 * Providers asked, besides the one that reported it, which block a poll's first block must follow
 * when they disagree (drawn by weight among those eligible and not behind); a filter's first scan
 * asks one, and the rest only if that one disagrees.
 */
const maxWitnesses = 4;
/**
 * What one eth_newFilter may ask for. Geth takes 1,000 addresses and 1,000 topics per position,
 * but the router keeps a filter's criteria for its life (about 90 bytes an entry): 256 addresses
 * and 128 topics over the four positions keep one under 31 KB, and maxFilters of them (10,000 by
 * default) near 310 MB. Watching events by filter needs far fewer; eth_getLogs is not capped so.
 */
const maxFilterAddresses = 256;
const maxFilterTopics = 128;
const blockTags = new Set(["latest", "earliest", "pending", "safe", "finalized"]);
const quantity = /^0x(0|[1-9a-f][0-9a-f]{0,15})$/i;
const addressPattern = /^0x[0-9a-f]{40}$/i;
const topicPattern = /^0x[0-9a-f]{64}$/i;

class BadParams extends Error {}

export class FilterRegistry {
  private readonly filters = new Map<string, Filter>();
  private readonly route: RouteContext;
  private readonly limits: FilterLimits;
  private readonly clients: ClientLedger;
  private readonly timer: NodeJS.Timeout;
  /** Logs kept by all filters to take back after a reorganisation. */
  private recentLogCount = 0;
  private recentLogBytes = 0;
  /** Filters being installed (their head asked): they count against maxFilters. */
  private installing = 0;

  constructor(route: RouteContext, limits: FilterLimits, clients: ClientLedger) {
    this.route = route;
    this.limits = limits;
    this.clients = clients;
    this.timer = setInterval(() => this.dropIdle(performance.now()), Math.min(60_000, limits.filterIdleMs));
    this.timer.unref();
  }

  get size(): number {
    return this.filters.size;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Answers one filter call of `client`; `done` hears it once. Answers collected for it are held
   * against `budget`.
   */
  answer(table: ChainTable, call: RpcCall, client: ClientShare, budget: PollBudget, done: (answer: FilterAnswer) => void): void {
    const local = (bytes: Buffer, outcome: CallOutcome = "local") => done({ bytes, provider: null, attempts: 0, outcome });
    const params = Array.isArray(call.params) ? call.params : [];
    try {
      if (call.method === "eth_newFilter") return this.create(table, "logs", params[0], call.id, client, local);
      if (call.method === "eth_newBlockFilter") return this.create(table, "blocks", undefined, call.id, client, local);
      const id = params[0];
      if (typeof id !== "string") throw new BadParams(`${call.method} takes a filter id`);
      const filter = this.find(id, table.chainId);
      if (call.method === "eth_uninstallFilter") return local(resultResponse(call.id, String(filter !== null && this.forget(id))));
      if (filter === null || (call.method === "eth_getFilterLogs" && filter.kind !== "logs")) {
        // A node's words: clients (viem, ethers) recognise them and install a new filter.
        return local(errorResponse(call.id, -32000, "filter not found"), "rejected");
      }
      filter.polledAt = performance.now();
      if (call.method === "eth_getFilterLogs") return this.allLogs(table, filter, call.id, budget, done);
      this.changes(table, filter, call.id, budget, done);
    } catch (error) {
      if (!(error instanceof BadParams)) throw error;
      local(errorResponse(call.id, RpcCode.invalidParams, `invalid params: ${error.message}`), "rejected");
    }
  }

  private find(id: string, chainId: number): Filter | null {
    const filter = this.filters.get(id);
    if (filter === undefined || filter.chainId !== chainId) return null;
    if (performance.now() - filter.polledAt > this.limits.filterIdleMs) {
      this.forget(id);
      return null;
    }
    return filter;
  }

  /** Installs a filter that starts after the head as one provider reports it now. */
  private create(table: ChainTable, kind: Filter["kind"], raw: unknown, callId: RpcId, client: ClientShare, done: (bytes: Buffer, outcome?: CallOutcome) => void): void {
    const filter: Filter = {
      id: "",
      owner: client,
      chainId: table.chainId,
      kind,
      criteria: {},
      fromTag: undefined,
      toTag: undefined,
      from: null,
      to: null,
      next: 0,
      polledAt: 0,
      busy: false,
      gone: false,
      lastHash: null,
      recentLogs: [],
      recentFrom: 0,
      recentBytes: 0,
      unkept: null,
      recentBlocks: [],
      failedPolls: 0,
    };
    if (kind === "logs") readCriteria(raw, filter);
    // The caps before the head: a refused filter costs no call upstream. Its place is held while
    // the head is asked, so calls under way together cannot pass the caps.
    const max = this.limits.maxFiltersPerClient;
    const full = () => this.filters.size + this.installing >= this.limits.maxFilters;
    if (full() || client.filters >= max) this.dropIdle(performance.now());
    if (full() && client.filters < max) this.makeRoomFor(client, performance.now());
    if (full()) {
      return done(errorResponse(callId, RpcCode.limitExceeded, `limit exceeded: ${filtersOpen(this.limits.maxFilters)} on this router; uninstall one or use eth_getLogs`), "rejected");
    }
    if (client.filters >= max) {
      return done(errorResponse(callId, RpcCode.limitExceeded, `limit exceeded: ${filtersOpen(max)} from your address; uninstall one (eth_uninstallFilter) or use eth_getLogs`), "rejected");
    }
    client.filters++;
    this.installing++;
    this.headNow(table, (head) => {
      this.installing--;
      if (head < 0) {
        client.filters--;
        this.clients.settle(client);
        return done(errorResponse(callId, RpcCode.noProvider, `no provider of chain ${table.chainId} can take requests right now; retry shortly`), "no_provider");
      }
      filter.next = head + 1;
      filter.recentFrom = Math.max(filter.next, filter.from ?? 0);
      filter.polledAt = performance.now();
      filter.id = `0x${randomBytes(16).toString("hex")}`;
      this.filters.set(filter.id, filter);
      done(resultResponse(callId, `"${filter.id}"`));
    });
  }

  /**
   * The chain's head as one provider reports it now (probes are up to an interval old, and a
   * client polls right after it sees a new block), and that provider; -1 when none answers and no
   * head is known. Never past what another provider is known to hold (answerHeight).
   */
  private headNow(table: ChainTable, then: (head: number, from: ProviderHealth | null) => void): void {
    const call: RpcCall = { id: 1, method: "eth_blockNumber", params: [], notification: false };
    routeCall(this.route, table, call, 1, (r) => (r.quantity === null ? then(table.medianHead, null) : then(r.quantity, r.provider)));
  }

  /**
   * With every place taken, a client's new filter takes the place of a filter not polled for a
   * fifth of filterIdleMs (a minute by default; viem and ethers poll every few seconds), the least
   * recently polled of the address holding the most filters, if that address would still hold more
   * filters than this one: so a few addresses cannot keep everyone else's filters out by installing
   * them and leaving them (each would have to be polled every minute), and a filter in use is never
   * taken. The filter taken answers "filter not found", and its client installs a new one.
   */
  private makeRoomFor(client: ClientShare, now: number): void {
    const idleSince = now - this.limits.filterIdleMs / 5;
    let taken: [string, Filter] | null = null;
    for (const entry of this.filters) {
      const [, f] = entry;
      if (f.polledAt > idleSince || f.owner.filters <= client.filters + 1) continue;
      if (taken === null || f.owner.filters > taken[1].owner.filters || (f.owner === taken[1].owner && f.polledAt < taken[1].polledAt)) taken = entry;
    }
    if (taken !== null) this.forget(taken[0]);
  }

  private dropIdle(now: number): void {
    for (const [id, f] of this.filters) if (now - f.polledAt > this.limits.filterIdleMs) this.forget(id);
  }

  private forget(id: string): boolean {
    const filter = this.filters.get(id);
    if (filter === undefined) return false;
    this.recentLogCount -= filter.recentLogs.length;
    this.recentLogBytes -= filter.recentBytes;
    filter.recentLogs = [];
    filter.recentBytes = 0;
    filter.gone = true;
    filter.owner.filters--;
    this.clients.settle(filter.owner);
    return this.filters.delete(id);
  }

  /**
   * After giving `given` (logs of blocks up to `end`, or with `replace` every log from recentFrom
   * again): keeps the logs of the last reorgWindow blocks within the caps, and the hash of `end`.
   */
  private keepRecentLogs(filter: Filter, given: Log[], replace: boolean, end: number, endHash: string): void {
    if (filter.gone) return;
    filter.lastHash = endHash;
    this.recentLogCount -= filter.recentLogs.length;
    this.recentLogBytes -= filter.recentBytes;
    const windowStart = end + 1 - reorgWindow;
    const all = (replace ? given : filter.recentLogs.concat(given)).filter((l) => Number(l.blockNumber) >= windowStart);
    let from = Math.max(filter.recentFrom, windowStart);
    // Newest first; past a cap the oldest blocks go whole, so those kept are every log of their blocks.
    for (let i = all.length - 1, bytes = 0; i >= 0 && Number(all[i].blockNumber) >= from; i--) {
      bytes += logBytes(all[i]);
      if (all.length - i > maxRecentLogs || bytes > maxRecentLogBytes) from = Number(all[i].blockNumber) + 1;
    }
    let logs = all.filter((l) => Number(l.blockNumber) >= from).map(keptLog);
    let bytes = logs.reduce((sum, l) => sum + logBytes(l), 0);
    if (this.recentLogCount + logs.length > maxRecentLogsInAll || this.recentLogBytes + bytes > maxRecentLogBytesInAll) [logs, from, bytes] = [[], end + 1, 0];
    const unkept = all.findLast((l) => Number(l.blockNumber) < from);
    if (unkept !== undefined) filter.unkept = { number: Number(unkept.blockNumber), hash: unkept.blockHash };
    else if (filter.unkept !== null && filter.unkept.number < windowStart) filter.unkept = null;
    filter.recentFrom = from;
    filter.recentLogs = logs;
    filter.recentBytes = bytes;
    this.recentLogCount += logs.length;
    this.recentLogBytes += bytes;
  }

  /** eth_getFilterLogs: every log the criteria match, as eth_getLogs with the client's own range. */
  private allLogs(table: ChainTable, filter: Filter, callId: RpcId, budget: AnswerBudget | null, done: (answer: FilterAnswer) => void): void {
    const query: Record<string, unknown> = { ...filter.criteria };
    if (filter.fromTag !== undefined) query.fromBlock = filter.fromTag;
    if (filter.toTag !== undefined) query.toBlock = filter.toTag;
    this.ask(table, "eth_getLogs", [query], [], budget, (result, answer) => done(answer(result === undefined ? null : JSON.stringify(result), callId)));
  }

  /** eth_getFilterChanges: what the blocks since the last poll brought, up to the head now. */
  private changes(table: ChainTable, filter: Filter, callId: RpcId, budget: PollBudget, done: (answer: FilterAnswer) => void): void {
    const nothing = () => done({ bytes: resultResponse(callId, "[]"), provider: null, attempts: 0, outcome: "local" });
    if (filter.busy) return nothing();
    filter.busy = true;
    this.headNow(table, (head, from) => {
      const start = filter.kind === "logs" ? Math.max(filter.next, filter.from ?? 0) : filter.next;
      const cap = filter.kind === "logs" ? maxLogBlocksPerPoll : maxHashBlocksPerPoll;
      let end = Math.min(head, filter.to ?? Infinity, start + cap - 1);
      if (start > end) {
        filter.busy = false;
        if (filter.to !== null && head > filter.to) filter.next = head + 1; // the range is over
        return nothing();
      }
      // A block filter asks a call for each block: those past the poll's own count against the
      // client's and the router's calls in flight, so polls cannot send more than those caps allow
      // (review B: a batch of 10 polls, the client's cap, sent 650 calls at once). A poll without
      // room scans one block, and the next goes on from there.
      if (filter.kind === "blocks") end = start + budget.moreCalls(end - start);
      // Only the provider that reported the head, and providers known to hold `end` (their probed head or an answer reached it).
      const behind = table.providers.filter((p) => p !== from && !p.holdsBlock(end));
      // ok: the blocks up to `end` are given. A null answer: nothing new yet (the providers
      // disagreed on the blocks; the next poll scans them again).
      const finish = (ok: boolean, answer: FilterAnswer | null) => {
        filter.busy = false;
        if (ok) {
          filter.next = end + 1;
          filter.failedPolls = 0;
        }
        if (answer === null) nothing();
        else done(answer);
      };
      const asking: Asking = { exclude: behind, budget };
      if (filter.kind === "logs") return this.scanLogs(table, filter, start, end, asking, callId, finish);
      this.scanBlocks(table, filter, end, asking, callId, finish);
    });
  }

  /**
   * The logs of blocks start … end, checked to follow the blocks scanned before. `confirmed`: the
   * hash of block start - 1 as a vote found it (the calls then go only to providers that gave it).
   */
  private scanLogs(table: ChainTable, filter: Filter, start: number, end: number, asking: Asking, callId: RpcId, finish: Finish, confirmed: string | null = null): void {
    const calls = [logsIn(filter, start, end), blockAt(start)];
    if (end !== start) calls.push(blockAt(end));
    const use = (results: unknown[] | null, answer: Answerer, providers: (ProviderHealth | null)[]): void => {
      const logs = results === null ? null : readLogs(results[0]);
      const first = results === null ? null : readBlock(results[1]);
      const last = results === null ? null : readBlock(results.at(-1));
      // Asked again of the providers that outvoted the one reporting the head, the blocks may be
      // past theirs (it alone held them): nothing new until they have them.
      if (confirmed !== null && results !== null && (first === null || last === null)) return finish(false, null);
      if (logs === null || first === null || last === null) return finish(false, answer(null, callId));
      // The logs must come from the blocks read (with no provider to draw, the calls went to several).
      if (!inBlock(logs, first) || !inBlock(logs, last)) return finish(false, null);
      const give = () => {
        this.keepRecentLogs(filter, logs, false, end, last.hash);
        finish(true, answer(JSON.stringify(logs), callId));
      };
      if (confirmed === null && !diverges(filter, start, first)) return give();
      // Block start - 1 is `hash` on the chain, and this poll's answers follow it.
      const onChain = (hash: string, asking: Asking) => {
        if (filter.lastHash === null || filter.lastHash === hash) return give();
        this.retakeLogs(table, filter, end, asking, callId, finish);
      };
      if (confirmed !== null) return first.parentHash === confirmed ? onChain(confirmed, asking) : finish(false, null);
      this.judge(table, filter, start - 1, first.parentHash, providers[1], asking, (tally, believed) => {
        if (tally.hash === null) return finish(false, null);
        if (tally.hash === first.parentHash && answeredBy(providers, tally.agreeing)) return onChain(tally.hash, believed);
        this.scanLogs(table, filter, start, end, believed, callId, finish, tally.hash);
      });
    };
    // One provider gives the logs and both blocks: answers from several could mix chain histories
    // (the first block from one provider, the logs and the last block from a fork: given, then
    // taken back). If it gives no answer or says it lacks the blocks (`header not found`), the
    // calls go once more, each failing over on its own among the others: answers then from several
    // providers, or nobody else known to hold the range, are nothing new (the next poll asks
    // again); a failure there is nothing new too, until failedPollsTold polls in a row failed.
    // Other errors (the criteria, a range past a provider's limit, an answer too large to hold)
    // another provider would give too: they are the answer.
    const one = table.pick(this.route.random, asking.exclude, performance.now(), false);
    if (one === null) return this.askAll(table, calls, asking, use);
    this.askAll(table, calls, { exclude: allBut(table, [one]), budget: asking.budget }, (results, answer, providers) => {
      if (results !== null || !worthAnotherTry(answer(null, callId))) return use(results, answer, providers);
      this.askAll(table, calls, { exclude: [...asking.exclude, one], budget: asking.budget }, (results, answer, providers) => {
        if (results === null ? answer(null, callId).outcome === "no_provider" : new Set(providers).size > 1) return finish(false, null);
        if (results === null && ++filter.failedPolls < failedPollsTold) return finish(false, null);
        use(results, answer, providers);
      });
    });
  }

  /**
   * After a reorganisation: the logs of the recent blocks again, told apart from those given
   * before. When the filter gave logs it could not keep, the newest of their blocks is read too:
   * replaced, those logs cannot be taken back, and the filter is removed with an error saying so.
   */
  private retakeLogs(table: ChainTable, filter: Filter, end: number, asking: Asking, callId: RpcId, finish: Finish): void {
    const unkept = filter.unkept;
    const from = unkept === null ? filter.recentFrom : unkept.number + 1;
    const calls = [logsIn(filter, from, end), blockAt(end)];
    if (unkept !== null) calls.push(blockAt(unkept.number));
    this.askAll(table, calls, asking, (results, answer) => {
      const logs = results === null ? null : readLogs(results[0]);
      const last = results === null ? null : readBlock(results[1]);
      const kept = unkept === null || results === null ? null : readBlock(results[2]);
      if (logs === null || last === null || (unkept !== null && kept === null)) return finish(false, answer(null, callId));
      if (!inBlock(logs, last)) return finish(false, null);
      if (unkept !== null && kept?.hash !== unkept.hash) {
        this.forget(filter.id);
        const message = `filter removed: the chain was reorganised at or below block ${unkept.number}, whose logs this filter gave but the router could not keep to take back (it keeps ${maxRecentLogs} logs or ${maxRecentLogBytes / 1024 / 1024} MiB a filter); read the logs again from before that block with eth_getLogs, then install a new filter`;
        return finish(false, { bytes: errorResponse(callId, -32000, message), provider: null, attempts: 0, outcome: "local" });
      }
      filter.recentFrom = from;
      const key = (l: Log) => `${l.blockHash}:${l.logIndex}`;
      const now = new Set(logs.map(key));
      const given = new Set(filter.recentLogs.map(key));
      const removed = filter.recentLogs.filter((l) => !now.has(key(l))).map((l) => ({ ...l, removed: true }));
      const added = logs.filter((l) => !given.has(key(l)));
      this.keepRecentLogs(filter, logs, true, end, last.hash);
      finish(true, answer(JSON.stringify([...removed, ...added]), callId));
    });
  }

  /**
   * The hashes of blocks next … end. When the first does not follow the last block given (and a
   * vote of providers confirms it), the recent blocks are read again and the hashes of those
   * replaced are given too.
   */
  private scanBlocks(table: ChainTable, filter: Filter, end: number, asking: Asking, callId: RpcId, finish: Finish): void {
    const first = filter.next;
    // `confirmed`: as in scanLogs.
    const scan = (from: number, asking: Asking, confirmed: string | null) => {
      const calls: Call[] = [];
      for (let n = from; n <= end; n++) calls.push(blockAt(n));
      this.askAll(table, calls, asking, (results, answer, providers) => {
        const blocks = results === null ? [] : results.map(readBlock);
        if (confirmed !== null && blocks.includes(null)) return finish(false, null); // as in scanLogs
        // Those known to hold the blocks gave no answer: nothing new, the next poll asks again.
        if (results === null && answer(null, callId).outcome === "upstream_failed") return finish(false, null);
        if (results === null || !blocks.every((b) => b !== null)) return finish(false, answer(null, callId));
        if (!blocks.every((b, i) => i === 0 || b.parentHash === blocks[i - 1].hash)) return finish(false, null); // from providers that disagree
        const give = () => {
          const given = new Set(filter.recentBlocks.map((b) => b.hash));
          const fresh = blocks.filter((b) => !given.has(b.hash));
          filter.recentBlocks = [...filter.recentBlocks.filter((b) => b.number < from), ...blocks].slice(-recentBlockCount);
          filter.lastHash = blocks[blocks.length - 1].hash;
          finish(true, answer(JSON.stringify(fresh.map((b) => b.hash)), callId));
        };
        if (from !== first) return give(); // the recent blocks again, after a reorganisation
        if (confirmed === null && !diverges(filter, first, blocks[0])) return give();
        const onChain = (hash: string, asking: Asking) => {
          if (filter.lastHash === null || filter.lastHash === hash || filter.recentBlocks.length === 0) return give();
          scan(filter.recentBlocks[0].number, asking, null);
        };
        if (confirmed !== null) return blocks[0].parentHash === confirmed ? onChain(confirmed, asking) : finish(false, null);
        this.judge(table, filter, first - 1, blocks[0].parentHash, providers[0], asking, (tally, believed) => {
          if (tally.hash === null) return finish(false, null);
          if (tally.hash === blocks[0].parentHash && answeredBy(providers, tally.agreeing)) return onChain(tally.hash, believed);
          scan(first, believed, tally.hash);
        });
      });
    };
    scan(first, asking, null);
  }

  /**
   * A poll's first block says block `height` is `claimed`, which is not the block the filter kept
   * (or the filter kept none yet): asks other providers which block is there. `then` hears the
   * tally and how to ask only the providers that gave its hash.
   */
  private judge(
    table: ChainTable,
    filter: Filter,
    height: number,
    claimed: string,
    reporter: ProviderHealth | null,
    asking: Asking,
    then: (tally: Tally, believed: Asking) => void,
  ): void {
    const decide = (tally: Tally) => then(tally, { exclude: allBut(table, tally.agreeing), budget: asking.budget });
    // A first scan has no block to hold the claim against: one witness that agrees is enough.
    const witnesses = filter.lastHash === null ? 1 : maxWitnesses;
    this.vote(table, height, claimed, reporter, asking, witnesses, (tally) => {
      if (tally.hash !== null || witnesses === maxWitnesses) return decide(tally);
      this.vote(table, height, claimed, reporter, asking, maxWitnesses, decide);
    });
  }

  /**
   * Asks up to `count` providers other than `reporter` (drawn by weight among those known to hold
   * block `height`, or failing those any other) for that block, and counts their hashes with the
   * reporter's claim: the hash more than half of them give, if any. With nobody else to ask the
   * reporter is believed (nothing to hold it against); when others were asked, one of them must
   * have answered. Not only among
   * the providers the poll asks (those known to hold its newest block): right after a block, the
   * one that reported the head may be the only one known to hold it, and a provider on another
   * chain history was then believed alone (a soak: 92 of 254 block hashes given by filters were
   * not the chain's).
   */
  private vote(table: ChainTable, height: number, claimed: string, reporter: ProviderHealth | null, asking: Asking, count: number, then: (tally: Tally) => void): void {
    const now = performance.now();
    const draw = (skip: ProviderHealth[]) => {
      const drawn: ProviderHealth[] = [];
      while (drawn.length < count) {
        const p = table.pick(this.route.random, skip, now, false);
        if (p === null) break;
        drawn.push(p);
        skip.push(p);
      }
      return drawn;
    };
    let witnesses = draw(table.providers.filter((p) => p === reporter || !p.holdsBlock(height)));
    // Nobody else known to hold it (their probes are older than the block): the others all the
    // same, rather than the reporter alone; one that lacks the block answers null, no vote.
    const unknownHolders = witnesses.length === 0;
    if (unknownHolders) witnesses = draw(reporter === null ? [] : [reporter]);
    const reporters = reporter === null ? [] : [reporter];
    if (witnesses.length === 0) return then({ hash: claimed, agreeing: reporters });
    const votes = new Map<string, ProviderHealth[]>([[claimed, reporters]]);
    let voters = 1; // the reporter
    let pending = witnesses.length;
    const [method, params] = blockAt(height);
    for (const witness of witnesses) {
      this.ask(table, method, params, allBut(table, [witness]), asking.budget, (result) => {
        const block = readBlock(result);
        if (block !== null && block.number === height) {
          voters++;
          const agreeing = votes.get(block.hash);
          if (agreeing === undefined) votes.set(block.hash, [witness]);
          else agreeing.push(witness);
        }
        if (--pending > 0) return;
        if (voters > 1) {
          for (const [hash, agreeing] of votes) {
            const given = agreeing.length + (hash === claimed && reporter === null ? 1 : 0);
            if (given * 2 > voters) {
              blameOutvoted(votes, hash, height);
              return then({ hash, agreeing });
            }
          }
        }
        // Nobody known to hold the block, and none of the most witnesses asked had it (all behind
        // it): nothing to hold the claim against, as with nobody to ask. Otherwise a provider
        // stuck behind that stays eligible (of two, it is the lower median: lag 0) would stall
        // every filter installed past its head for good.
        if (unknownHolders && voters === 1 && count >= maxWitnesses) return then({ hash: claimed, agreeing: reporters });
        then({ hash: null, agreeing: [] });
      });
    }
  }

  /**
   * Routes several calls for a filter at once; `use` hears every result (null for a block a
   * provider does not hold), or (null) the answer of the first that failed, and who answered each.
   */
  private askAll(
    table: ChainTable,
    calls: readonly Call[],
    asking: Asking,
    use: (results: unknown[] | null, answer: Answerer, providers: (ProviderHealth | null)[]) => void,
  ): void {
    const results = new Array<unknown>(calls.length);
    const answers = new Array<Answerer>(calls.length);
    const providers = new Array<ProviderHealth | null>(calls.length);
    let failed = -1; // the first call with no result, or a null one: its answer is the one to give
    let missing = false;
    let pending = calls.length;
    calls.forEach(([method, params], i) =>
      this.ask(table, method, params, asking.exclude, asking.budget, (result, answer, provider) => {
        results[i] = result;
        answers[i] = answer;
        providers[i] = provider;
        if ((result === undefined || result === null) && failed < 0) failed = i;
        if (result === undefined) missing = true;
        if (--pending === 0) use(missing ? null : results, answers[Math.max(failed, 0)], providers);
      }),
    );
  }

  /**
   * Routes one call for a filter and hands back its result (undefined when there is none) and a
   * way to answer the client: with a result's JSON, or (null) with what the call came to.
   */
  private ask(
    table: ChainTable,
    method: string,
    params: unknown[],
    exclude: readonly ProviderHealth[],
    budget: AnswerBudget | null,
    use: (result: unknown, answer: (resultJson: string | null, callId: RpcId) => FilterAnswer, provider: ProviderHealth | null) => void,
  ): void {
    const call: RpcCall = { id: 1, method, params, notification: false };
    routeCall(this.route, table, call, 1, (r: CallResult) => {
      let reply: { result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown } } = {};
      try {
        reply = JSON.parse(r.bytes.toString("utf8"));
      } catch {
        // The router's own errors and checked provider answers are JSON; nothing else arrives here.
      }
      const answer = (resultJson: string | null, callId: RpcId): FilterAnswer => {
        const base = { provider: r.provider, attempts: r.attempts, outcome: r.outcome };
        if (resultJson !== null) return { ...base, bytes: resultResponse(callId, resultJson) };
        const e = reply.error;
        if (isRpcError(e)) return { ...base, bytes: errorResponse(callId, e.code, e.message, e.data) };
        return { ...base, bytes: errorResponse(callId, RpcCode.upstreamFailed, `${method} for the filter got no usable answer`) };
      };
      use(reply.error === undefined ? reply.result : undefined, answer, r.provider);
    }, { exclude, budget });
  }
}

/** Reads eth_newFilter's criteria into `filter`; throws BadParams with a reason. */
function readCriteria(raw: unknown, filter: Filter): void {
  if (raw === undefined) raw = {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new BadParams("eth_newFilter takes one filter object");
  const c = raw as Record<string, unknown>;
  if (c.blockHash !== undefined) throw new BadParams("a filter follows new blocks and takes no blockHash: use eth_getLogs for one block");
  for (const side of ["fromBlock", "toBlock"] as const) {
    const tag = c[side];
    if (tag === undefined) continue;
    if (typeof tag !== "string" || !(blockTags.has(tag) || quantity.test(tag))) throw new BadParams(`${side} must be a block number (hex) or a tag (latest, earliest, …)`);
    const number = tag === "earliest" ? 0 : quantity.test(tag) ? Number(BigInt(tag)) : null;
    if (side === "fromBlock") [filter.fromTag, filter.from] = [tag, number];
    else [filter.toTag, filter.to] = [tag, number];
  }
  const address = c.address;
  if (address !== undefined && address !== null) {
    const list = Array.isArray(address) ? address : [address];
    if (!list.every((a) => typeof a === "string" && addressPattern.test(a))) throw new BadParams("address must be an address or a list of addresses");
    if (list.length > maxFilterAddresses) throw new BadParams(`a filter takes at most ${maxFilterAddresses} addresses, got ${list.length}: install several, or use eth_getLogs`);
    filter.criteria.address = address as string | string[];
  }
  const topics = c.topics;
  if (topics !== undefined && topics !== null) {
    const ok = (t: unknown) => t === null || (typeof t === "string" && topicPattern.test(t));
    if (!Array.isArray(topics) || topics.length > 4 || !topics.every((t) => ok(t) || (Array.isArray(t) && t.every(ok)))) {
      throw new BadParams("topics must be a list of at most 4 positions, each null, a 32-byte topic or a list of them");
    }
    const count = topics.reduce((n: number, t) => n + (Array.isArray(t) ? t.length : t === null ? 0 : 1), 0); // a list's nulls too: each is held
    if (count > maxFilterTopics) throw new BadParams(`a filter takes at most ${maxFilterTopics} topics over its 4 positions, got ${count}: install several, or use eth_getLogs`);
    filter.criteria.topics = topics;
  }
}

type Call = [method: string, params: unknown[]];

/**
 * Whether a scan's first block (at `start`) needs a vote: it does not follow the block the filter
 * kept, or the filter kept none yet (its first scan; block 0 follows nothing).
 */
function diverges(filter: Filter, start: number, first: Block): boolean {
  if (filter.lastHash === null) return start > 0;
  return start === filter.next && first.parentHash !== filter.lastHash;
}

/** Providers that gave block `height` another hash than the majority: they follow another chain history. */
function blameOutvoted(votes: ReadonlyMap<string, readonly ProviderHealth[]>, winner: string, height: number): void {
  const now = performance.now();
  for (const [hash, group] of votes) {
    if (hash === winner) continue;
    for (const p of group) p.recordFailure("forked", `gave block ${height} as ${hash}, which most providers asked do not have`, now);
  }
}

/** A pinned poll's failure another provider may not share: no answer, or an error saying its node lacks the blocks, or of no known kind (upstream.ts's `unknown`). */
function worthAnotherTry(failed: FilterAnswer): boolean {
  if (failed.outcome === "upstream_failed") return true;
  if (failed.outcome !== "answer") return false;
  const error = (JSON.parse(failed.bytes.toString()) as { error?: unknown }).error;
  return isRpcError(error) && (lacksData(error.message) || classifyRpcError(error.code, error.message, "eth_getLogs") === "unknown");
}

/** Every provider of `table` but `kept`: what a call asks with to go only to them. */
function allBut(table: ChainTable, kept: readonly ProviderHealth[]): ProviderHealth[] {
  return table.providers.filter((p) => !kept.includes(p));
}

/** Whether every call of a poll was answered by one of `agreeing`. */
function answeredBy(providers: readonly (ProviderHealth | null)[], agreeing: readonly ProviderHealth[]): boolean {
  return providers.every((p) => p !== null && agreeing.includes(p));
}

function logsIn(filter: Filter, from: number, to: number): Call {
  return ["eth_getLogs", [{ ...filter.criteria, fromBlock: hex(from), toBlock: hex(to) }]];
}

function blockAt(n: number): Call {
  return ["eth_getBlockByNumber", [hex(n), false]];
}

/** A list of logs as nodes give them (block number, block hash, index), or null. */
function readLogs(result: unknown): Log[] | null {
  if (!Array.isArray(result)) return null;
  const ok = result.every((l) => typeof l === "object" && l !== null && typeof l.blockNumber === "string" && typeof l.blockHash === "string" && typeof l.logIndex === "string");
  return ok ? (result as Log[]) : null;
}

/** A log as a filter keeps it: the members a client reads, as strings (topics: a list of them) or `removed`. */
function keptLog(log: Log): Log {
  const kept: Log = { blockNumber: log.blockNumber, blockHash: log.blockHash, logIndex: log.logIndex };
  for (const member of logMembers) {
    const value = log[member];
    if (typeof value === "string" || typeof value === "boolean" || (Array.isArray(value) && value.every((t) => typeof t === "string"))) kept[member] = value;
  }
  return kept;
}

/**
 * About the bytes a kept log holds: its strings and ~320 bytes of objects around them (measured:
 * one with 3 topics and 32 bytes of data, ~600 characters of JSON, holds ~790 bytes).
 */
function logBytes(log: Log): number {
  let bytes = 320;
  for (const member of logMembers) {
    const value = log[member];
    if (typeof value === "string") bytes += value.length;
    else if (Array.isArray(value)) for (const t of value) bytes += 32 + (typeof t === "string" ? t.length : 0);
  }
  return bytes;
}

/** Whether the logs of `block`'s height come from that very block. */
function inBlock(logs: readonly Log[], block: Block): boolean {
  return logs.every((l) => l.blockHash === block.hash || Number(l.blockNumber) !== block.number);
}

/** A block's number and hashes, or null. */
function readBlock(result: unknown): Block | null {
  if (typeof result !== "object" || result === null) return null;
  const { number, hash, parentHash } = result as Record<string, unknown>;
  if (typeof number !== "string" || !quantity.test(number) || typeof hash !== "string" || typeof parentHash !== "string") return null;
  return { number: Number(number), hash, parentHash };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function filtersOpen(count: number): string {
  return count === 1 ? "1 filter is open" : `${count} filters are open`;
}
