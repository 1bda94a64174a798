import { describe, expect, it } from "vitest";
import { TrafficHistory } from "../../router/history.ts";
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

  it("builds a page once per sample for each span asked, and at most a tenth of the time", () => {
    const table = new ChainTable(CHAIN, resolveRoutingOptions());
    table.setProviders([{ address: providerAddress(0), chainId: CHAIN, url: "http://node.example:8545", stake: 10n ** 21n, slashedTotal: 0n, name: "node" }]);
    const history = new TrafficHistory(1_000, 10_000);
    for (const at of [1_000, 2_000, 3_000, 4_000]) history.sample([table], at);
    // A given clock: each build takes 5 ms, so none starts within 45 ms of the last one's end.
    let now = 100;
    const clock = () => {
      const t = now;
      now += 2.5; // read before and after a build: 5 ms apart
      return t;
    };
    const whole = history.page(0, clock);
    expect(whole?.toString()).toBe(JSON.stringify(history.read(0)));
    now = 120;
    expect(history.page(2_500, clock)).toBeNull(); // another span, 15 ms after the last build: ask again
    expect(history.page(500, clock)).toBe(whole); // the same samples as since=0: the same bytes, no build
    now = 152;
    const recent = history.page(2_500, clock);
    expect(recent?.toString()).toBe(JSON.stringify(history.read(2_500)));
    expect(JSON.parse(recent!.toString()).chains[0].providers[0].points.map((p: number[]) => p[0])).toEqual([3_000, 4_000]);
    expect(history.page(3_999, clock)).toBeNull(); // just after: too soon for a build of its own
    // The next sample brings new pages.
    history.sample([table], 5_000);
    now = 1_000;
    expect(history.page(2_500, clock)?.toString()).toBe(JSON.stringify(history.read(2_500)));
    expect(history.page(2_500, clock)).not.toBe(recent);
  });
});
