import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

// A stand-in for the Ponder indexer that speaks only what the router asks of it: GET /ready,
// GET /status, GET /sql/db (one query, JSON `{ rows }`) and GET /sql/live (server-sent events). Each answer can
// be made to fail the way a sick indexer does, which a real Ponder cannot be told to do.

export type FakeIndexerBehaviour = {
  /** "ok": 200; "hang": never answers; a number: that HTTP status. */
  ready: "ok" | "hang" | number;
  /** "ok": the rows; "hang": never answers; otherwise that status with that body (Ponder's error text). */
  db: "ok" | "hang" | { status: number; body: string };
  /** "ok": a stream that stays open; a number: the stream opens, then ends after that many ms. */
  live: "ok" | number;
};

export type FakeIndexer = {
  url: string;
  /** What /sql/db answers with, as the indexer's rows (snake_case columns, amounts as strings). */
  rows: unknown[];
  /** The block GET /status says is indexed; null: /status answers 404, as an indexer that does not say. */
  block: number | null;
  behaviour: FakeIndexerBehaviour;
  /** performance.now() of every request, by path. */
  hits: { ready: number[]; db: number[]; live: number[] };
  /** Requests left hanging whose connection is still open: a client that gives up without aborting leaves them. */
  waiting: () => number;
  /** Ends every live stream now, as an indexer restart would. */
  dropLive: () => void;
  stop: () => Promise<void>;
};

export async function startFakeIndexer(
  behaviour: Partial<FakeIndexerBehaviour> = {},
  rows: unknown[] = [],
  port = 0,
): Promise<FakeIndexer> {
  const streams = new Set<ServerResponse>();
  const hung = new Set<ServerResponse>();
  const hang = (response: ServerResponse) => {
    hung.add(response);
    response.on("close", () => hung.delete(response));
  };
  const indexer: Omit<FakeIndexer, "url" | "stop"> = {
    rows,
    block: null,
    behaviour: { ready: "ok", db: "ok", live: "ok", ...behaviour },
    hits: { ready: [], db: [], live: [] },
    waiting: () => hung.size,
    dropLive: () => {
      for (const stream of streams) stream.end();
    },
  };
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://indexer").pathname;
    const { ready, db, live } = indexer.behaviour;
    if (path === "/ready") {
      indexer.hits.ready.push(performance.now());
      if (ready === "hang") return hang(response);
      response.writeHead(ready === "ok" ? 200 : ready).end();
    } else if (path === "/status" && indexer.block !== null) {
      // Ponder's shape: per indexed chain, the last block it has indexed.
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ registry: { id: 31337, block: { number: indexer.block, timestamp: 0 } } }));
    } else if (path === "/sql/db") {
      indexer.hits.db.push(performance.now());
      if (db === "hang") return hang(response);
      if (db === "ok") response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ rows: indexer.rows }));
      else response.writeHead(db.status, { "content-type": "text/plain" }).end(db.body);
    } else if (path === "/sql/live") {
      indexer.hits.live.push(performance.now());
      response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      response.write(": connected\n\n");
      streams.add(response);
      response.on("close", () => streams.delete(response));
      if (live !== "ok") setTimeout(() => response.end(), live);
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return Object.assign(indexer, {
    url: `http://127.0.0.1:${address.port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}

/** An indexer row for a provider record, as /sql/db and /sql/live carry it. */
export function indexerRow(r: { address: string; chainId: number; url: string; stake: bigint; slashedTotal: bigint; name: string }): Record<string, string> {
  return {
    address: r.address,
    chain_id: String(r.chainId),
    url: r.url,
    stake: r.stake.toString(),
    slashed_total: r.slashedTotal.toString(),
    name: r.name,
  };
}
