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
});
