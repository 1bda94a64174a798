import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { RpcCode } from "./errors.ts";
import { routeCall, type CallResult, type RouteContext } from "./failover.ts";
import type { ProviderHealth } from "./health.ts";
import { errorResponse, resultResponse, type RpcCall, type RpcId } from "./jsonRpc.ts";
import type { CallOutcome } from "./metrics.ts";
import type { ChainTable } from "./routingTable.ts";

// Filters (eth_newFilter, eth_newBlockFilter, eth_getFilterChanges, eth_getFilterLogs,
// eth_uninstallFilter) kept by the router rather than by a node: a filter on one provider is lost
// when the next poll goes to another. The router remembers each filter's criteria and the next
// block it has not scanned. A poll asks one provider for the head, then asks for the blocks up to
// it with eth_getLogs (or the blocks' hashes), routed like any call but only to that provider or
// to providers whose last probed head has reached the range's end, so a provider behind cannot
// answer "no logs" for blocks it has not seen. A head more than maxLeadBlocks past the chain's
// median is not believed. ethers' contract.on and viem's event filters poll this way.

export const filterMethods = new Set(["eth_newFilter", "eth_newBlockFilter", "eth_getFilterChanges", "eth_getFilterLogs", "eth_uninstallFilter"]);

export type FilterLimits = {
  /** Filters open at once on the router; creating one more is refused. */
  maxFilters: number;
  /** A filter not polled for this long is removed, as a node does (ms). */
  filterIdleMs: number;
};

/** What a filter call came to: a response object with the client's id. */
export type FilterAnswer = { bytes: Buffer; provider: ProviderHealth | null; attempts: number; outcome: CallOutcome };

type LogCriteria = { address?: string | string[]; topics?: unknown[] };

type Filter = {
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
};

/** Blocks one poll scans at most (a client that polls rarely catches up over several polls). */
const maxLogBlocksPerPoll = 2_000;
const maxHashBlocksPerPoll = 64;
const blockTags = new Set(["latest", "earliest", "pending", "safe", "finalized"]);
const quantity = /^0x(0|[1-9a-f][0-9a-f]{0,15})$/i;
const addressPattern = /^0x[0-9a-f]{40}$/i;
const topicPattern = /^0x[0-9a-f]{64}$/i;

class BadParams extends Error {}

export class FilterRegistry {
  private readonly filters = new Map<string, Filter>();
  private readonly route: RouteContext;
  private readonly limits: FilterLimits;
  private readonly maxLeadBlocks: number;
  private readonly timer: NodeJS.Timeout;

  constructor(route: RouteContext, limits: FilterLimits, maxLeadBlocks: number) {
    this.route = route;
    this.limits = limits;
    this.maxLeadBlocks = maxLeadBlocks;
    this.timer = setInterval(() => this.dropIdle(performance.now()), Math.min(60_000, limits.filterIdleMs));
    this.timer.unref();
  }

  get size(): number {
    return this.filters.size;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Answers one filter call; `done` hears it once. */
  answer(table: ChainTable, call: RpcCall, done: (answer: FilterAnswer) => void): void {
    const local = (bytes: Buffer, outcome: CallOutcome = "local") => done({ bytes, provider: null, attempts: 0, outcome });
    const params = Array.isArray(call.params) ? call.params : [];
    try {
      if (call.method === "eth_newFilter") return this.create(table, "logs", params[0], call.id, local);
      if (call.method === "eth_newBlockFilter") return this.create(table, "blocks", undefined, call.id, local);
      const id = params[0];
      if (typeof id !== "string") throw new BadParams(`${call.method} takes a filter id`);
      const filter = this.find(id, table.chainId);
      if (call.method === "eth_uninstallFilter") return local(resultResponse(call.id, String(filter !== null && this.filters.delete(id))));
      if (filter === null || (call.method === "eth_getFilterLogs" && filter.kind !== "logs")) {
        // A node's words: clients (viem, ethers) recognise them and install a new filter.
        return local(errorResponse(call.id, -32000, "filter not found"), "rejected");
      }
      filter.polledAt = performance.now();
      if (call.method === "eth_getFilterLogs") return this.allLogs(table, filter, call.id, done);
      this.changes(table, filter, call.id, done);
    } catch (error) {
      if (!(error instanceof BadParams)) throw error;
      local(errorResponse(call.id, RpcCode.invalidParams, `invalid params: ${error.message}`), "rejected");
    }
  }

  private find(id: string, chainId: number): Filter | null {
    const filter = this.filters.get(id);
    if (filter === undefined || filter.chainId !== chainId) return null;
    if (performance.now() - filter.polledAt > this.limits.filterIdleMs) {
      this.filters.delete(id);
      return null;
    }
    return filter;
  }

  /** Installs a filter that starts after the head as one provider reports it now. */
  private create(table: ChainTable, kind: Filter["kind"], raw: unknown, callId: RpcId, done: (bytes: Buffer, outcome?: CallOutcome) => void): void {
    const filter: Filter = { chainId: table.chainId, kind, criteria: {}, fromTag: undefined, toTag: undefined, from: null, to: null, next: 0, polledAt: 0, busy: false };
    if (kind === "logs") readCriteria(raw, filter);
    this.headNow(table, (head) => {
      if (head < 0) return done(errorResponse(callId, RpcCode.noProvider, `no provider of chain ${table.chainId} can take requests right now; retry shortly`), "no_provider");
      const now = performance.now();
      if (this.filters.size >= this.limits.maxFilters) this.dropIdle(now);
      if (this.filters.size >= this.limits.maxFilters) {
        return done(errorResponse(callId, RpcCode.limitExceeded, `limit exceeded: ${this.limits.maxFilters} filters are open on this router; uninstall one or use eth_getLogs`), "rejected");
      }
      filter.next = head + 1;
      filter.polledAt = now;
      const id = `0x${randomBytes(16).toString("hex")}`;
      this.filters.set(id, filter);
      done(resultResponse(callId, `"${id}"`));
    });
  }

  /**
   * The chain's head as one provider reports it now (probes are up to an interval old, and a
   * client polls right after it sees a new block), and that provider; -1 when none answers and no
   * head is known. Never more than maxLeadBlocks past the median head.
   */
  private headNow(table: ChainTable, then: (head: number, from: ProviderHealth | null) => void): void {
    const call: RpcCall = { id: 1, method: "eth_blockNumber", params: [], notification: false };
    routeCall(this.route, table, call, 1, (r) => {
      const median = table.medianHead;
      let reported = Number.NaN;
      try {
        const result = (JSON.parse(r.bytes.toString("utf8")) as { result?: unknown }).result;
        if (typeof result === "string" && quantity.test(result)) reported = Number(result);
      } catch {
        // not an answer: fall back to the median head
      }
      if (Number.isNaN(reported)) return then(median, null);
      if (median < 0) return then(reported, r.provider); // no median yet (the first probes): nothing to hold it against
      then(Math.min(reported, median + this.maxLeadBlocks), r.provider);
    });
  }

  private dropIdle(now: number): void {
    for (const [id, f] of this.filters) if (now - f.polledAt > this.limits.filterIdleMs) this.filters.delete(id);
  }

  /** eth_getFilterLogs: every log the criteria match, as eth_getLogs with the client's own range. */
  private allLogs(table: ChainTable, filter: Filter, callId: RpcId, done: (answer: FilterAnswer) => void): void {
    const query: Record<string, unknown> = { ...filter.criteria };
    if (filter.fromTag !== undefined) query.fromBlock = filter.fromTag;
    if (filter.toTag !== undefined) query.toBlock = filter.toTag;
    this.ask(table, "eth_getLogs", [query], [], (result, answer) => done(answer(result === undefined ? null : JSON.stringify(result), callId)));
  }

  /** eth_getFilterChanges: what the blocks since the last poll brought, up to the head now. */
  private changes(table: ChainTable, filter: Filter, callId: RpcId, done: (answer: FilterAnswer) => void): void {
    const nothing = () => done({ bytes: resultResponse(callId, "[]"), provider: null, attempts: 0, outcome: "local" });
    if (filter.busy) return nothing();
    filter.busy = true;
    this.headNow(table, (head, from) => {
      const start = filter.kind === "logs" ? Math.max(filter.next, filter.from ?? 0) : filter.next;
      const cap = filter.kind === "logs" ? maxLogBlocksPerPoll : maxHashBlocksPerPoll;
      const end = Math.min(head, filter.to ?? Infinity, start + cap - 1);
      if (start > end) {
        filter.busy = false;
        if (filter.to !== null && head > filter.to) filter.next = head + 1; // the range is over
        return nothing();
      }
      // Only the provider that reported the head, and providers whose probed head has reached `end`.
      const behind = table.providers.filter((p) => p !== from && p.head < end);
      const finish = (ok: boolean, answer: FilterAnswer) => {
        filter.busy = false;
        if (ok) filter.next = end + 1;
        done(answer);
      };
      if (filter.kind === "logs") {
        const range = { ...filter.criteria, fromBlock: hex(start), toBlock: hex(end) };
        this.ask(table, "eth_getLogs", [range], behind, (result, answer) => finish(Array.isArray(result), answer(Array.isArray(result) ? JSON.stringify(result) : null, callId)));
        return;
      }
      const hashes: string[] = new Array(end - start + 1);
      let pending = hashes.length;
      let failed: FilterAnswer | null = null;
      for (let n = start; n <= end; n++) {
        this.ask(table, "eth_getBlockByNumber", [hex(n), false], behind, (result, answer) => {
          const hash = typeof result === "object" && result !== null ? (result as { hash?: unknown }).hash : undefined;
          if (typeof hash === "string") hashes[n - start] = hash;
          else failed ??= answer(null, callId);
          if (--pending > 0) return;
          if (failed !== null) return finish(false, failed);
          finish(true, answer(JSON.stringify(hashes), callId));
        });
      }
    });
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
    use: (result: unknown, answer: (resultJson: string | null, callId: RpcId) => FilterAnswer) => void,
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
        if (e !== undefined && typeof e.code === "number" && typeof e.message === "string") return { ...base, bytes: errorResponse(callId, e.code, e.message, e.data) };
        return { ...base, bytes: errorResponse(callId, RpcCode.upstreamFailed, `${method} for the filter got no usable answer`) };
      };
      use(reply.error === undefined ? reply.result : undefined, answer);
    }, exclude);
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
    if (list.length > 1_000 || !list.every((a) => typeof a === "string" && addressPattern.test(a))) {
      throw new BadParams("address must be an address or a list of at most 1000 addresses");
    }
    filter.criteria.address = address as string | string[];
  }
  const topics = c.topics;
  if (topics !== undefined && topics !== null) {
    const ok = (t: unknown) => t === null || (typeof t === "string" && topicPattern.test(t));
    if (!Array.isArray(topics) || topics.length > 4 || !topics.every((t) => ok(t) || (Array.isArray(t) && t.length <= 1_000 && t.every(ok)))) {
      throw new BadParams("topics must be a list of at most 4 positions, each null, a 32-byte topic or a list of them");
    }
    filter.criteria.topics = topics;
  }
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
