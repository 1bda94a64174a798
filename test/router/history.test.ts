import { describe, expect, it } from "vitest";
import { TrafficHistory, type HistoryResponse } from "../../router/history.ts";
import { resolveRoutingOptions } from "../../router/options.ts";
import { ChainTable } from "../../router/routingTable.ts";
import { providerAddress } from "../helpers/faultyUpstream.ts";

// The dashboard's charts: calls per second and mean latency per provider, from the counters the
// request path keeps. The sampling timer may fire late on a busy router; rates stay per second.

const CHAIN = 31337;

describe("traffic history", () => {
  it("gives calls per second of time actually elapsed, and the mean latency of each interval", () => {
    const table = new ChainTable(CHAIN, resolveRoutingOptions());
    table.setProviders([{ address: providerAddress(0), chainId: CHAIN, url: "http://node.example:8545", stake: 10n ** 21n, slashedTotal: 0n, name: "node" }]);
    const [p] = table.providers;
    const history = new TrafficHistory(1_000, 10_000);
    history.sample([table], 1_000); // first sight: counters read, no point yet
    p.served += 30;
    p.recordSuccess(10);
    p.recordSuccess(30);
    history.sample([table], 2_500); // 1.5 s later: the timer was half a second late
    history.sample([table], 3_500); // nothing served
    const [chain] = history.read().chains;
    expect(chain.providers[0].points).toEqual([
      [2_500, 20, 20],
      [3_500, 0, null],
    ]);
    expect(history.read(2_500).chains[0].providers[0].points).toEqual([[3_500, 0, null]]);
  });

  it("builds a page once per sample for each span asked, large ones at most a tenth of the time", () => {
    const table = new ChainTable(CHAIN, resolveRoutingOptions());
    table.setProviders([{ address: providerAddress(0), chainId: CHAIN, url: "http://node.example:8545", stake: 10n ** 21n, slashedTotal: 0n, name: "node" }]);
    const history = new TrafficHistory(1_000, 10_000);
    for (const at of [1_000, 2_000, 3_000, 4_000, 5_000]) history.sample([table], at); // points at 2 000 … 5 000
    // A given clock, read before and after each build: the times it will give, in order.
    const reads: number[] = [];
    const clock = () => reads.shift()!;
    const times = (page: Buffer | null) => (JSON.parse(page!.toString()) as HistoryResponse).chains[0].providers[0].points.map(([at]) => at);

    reads.push(100, 105); // the whole window, built in 5 ms: no large page is built before 150
    const whole = history.page(0, clock);
    expect(whole?.toString()).toBe(JSON.stringify(history.read(0)));
    reads.push(120);
    expect(history.page(2_500, clock)).toBeNull(); // three samples, asked 15 ms after that build: ask again
    expect(history.page(500, clock)).toBe(whole); // the same samples as since=0: the same bytes, not built again
    reads.push(121, 122);
    expect(times(history.page(3_500, clock))).toEqual([4_000, 5_000]); // the newest two: always built
    reads.push(151, 156);
    const three = history.page(2_500, clock);
    expect(three?.toString()).toBe(JSON.stringify(history.read(2_500)));
    expect(times(three)).toEqual([3_000, 4_000, 5_000]);
    expect(reads).toEqual([]);

    // The next sample: new pages, the wait after the last large build still holds (until 201).
    history.sample([table], 6_000);
    reads.push(160);
    expect(history.page(2_500, clock)).toBeNull();
    reads.push(161, 162);
    expect(times(history.page(5_500, clock))).toEqual([6_000]);
    reads.push(202, 203);
    expect(times(history.page(2_500, clock))).toEqual([3_000, 4_000, 5_000, 6_000]);
    expect(reads).toEqual([]);
  });
});
