import { resolve } from "node:path";
import { cpuOf, middle, start as startRole, type LoadResult } from "./router.ts";
import { countFlag } from "./table.ts";

// Side by side, in interleaved rounds: the router of two checkouts (before and after a change to
// the request path), or the router and a plain proxy. Each target is a role of a checkout's
// scripts/bench/router.ts (`router`, `proxy`, `proxy-request`, `proxy-lean`) written `role@dir`; all share the
// first checkout's upstreams and load generator. It prints, per target, the medians over rounds
// of req/s, p50 latency and the process's user and system CPU per request: CPU is the steadier
// measure on a shared host, where throughput drifts from one minute to the next.
//
//   node scripts/bench/compare.ts --rounds 8 --connections 32 router@/tmp/before router@.

/** A role of the bench script of the checkout at `dir`. */
const start = (dir: string, role: string, args: string[]) => startRole(role, args, resolve(dir, "scripts/bench/router.ts"));

const rounds = countFlag("--rounds") ?? 8;
const connections = countFlag("--connections") ?? 32;
const durationMs = countFlag("--duration") ?? 2_000;
const specs = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--"));
if (specs.length < 2 || specs.some((s) => !/^(router|proxy|proxy-request|proxy-lean)@./.test(s))) {
  console.error("usage: node scripts/bench/compare.ts [--rounds N] [--connections N] [--duration ms] role@dir role@dir … (role: router, proxy, proxy-request, proxy-lean)");
  process.exit(2);
}

const home = specs[0].split("@")[1];
const upstreams = await start(home, "upstreams", []);
const targets = [];
for (const [i, spec] of specs.entries()) {
  const [role, dir] = spec.split("@");
  targets.push({ label: `${i + 1}. ${spec}`, ...(await start(dir, role, upstreams.message.urls!)) });
}
const samples = new Map<string, { rps: number; p50: number; user: number; system: number }[]>();
try {
  for (let round = 0; round < rounds; round++) {
    // Reversed every other round, so that no target always runs right after another.
    for (const t of round % 2 === 0 ? targets : targets.toReversed()) {
      const load = await start(home, "load", [t.message.url!, String(connections), "500", String(durationMs)]);
      const before = await cpuOf(t.child);
      const result = await new Promise<LoadResult>((done) => load.child.on("message", (m: { result?: LoadResult }) => m.result && done(m.result)));
      const after = await cpuOf(t.child);
      load.child.kill("SIGTERM");
      const n = result.requests;
      const list = samples.get(t.label) ?? [];
      list.push({ rps: n / result.seconds, p50: result.p50 * 1000, user: (after.user - before.user) / n, system: (after.system - before.system) / n });
      samples.set(t.label, list);
      console.error(`… round ${round + 1}/${rounds}: ${t.label} ${(n / result.seconds).toFixed(0)} req/s${result.errors > 0 ? `, ${result.errors} errors` : ""}`);
    }
  }
} finally {
  for (const t of [...targets, upstreams]) t.child.kill("SIGTERM");
}
console.log(`| target (${connections} conn, ${rounds} rounds of ${durationMs} ms) | req/s | p50 µs | user CPU µs/req | system CPU µs/req |`);
console.log("|---|---:|---:|---:|---:|");
for (const [label, list] of samples) {
  const m = (pick: (s: (typeof list)[number]) => number) => middle(list.map(pick));
  console.log(`| ${label} | ${m((s) => s.rps).toFixed(0)} | ${m((s) => s.p50).toFixed(0)} | ${m((s) => s.user).toFixed(1)} | ${m((s) => s.system).toFixed(1)} |`);
}
process.exit(0);
