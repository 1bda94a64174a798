import { resolve } from "node:path";
import { interleave, pooled, start as startRole, stopChild } from "./router.ts";
import { countFlag } from "./table.ts";

// Side by side, in interleaved slices: the router of two checkouts (before and after a change to
// the request path), or the router and a plain proxy. Each target is a role of a checkout's
// scripts/bench/router.ts (`router`, `proxy`, `proxy-request`, `proxy-lean`) written `role@dir`; all share the
// first checkout's upstreams and load generator. It prints, per target, req/s, p50 latency and the
// process's user and system CPU per request over all its slices: CPU is the steadier measure on a
// shared host.
//
//   node scripts/bench/compare.ts --slices 40 --connections 32 router@/tmp/before router@.

/** A role of the bench script of the checkout at `dir`. */
const start = (dir: string, role: string, args: string[]) => startRole(role, args, resolve(dir, "scripts/bench/router.ts"));

const slices = countFlag("--slices") ?? 40;
const connections = countFlag("--connections") ?? 32;
const sliceMs = countFlag("--slice") ?? 250;
const specs = process.argv.slice(2).filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--"));
if (specs.length < 2 || specs.some((s) => !/^(router|proxy|proxy-request|proxy-lean)@./.test(s))) {
  console.error("usage: node scripts/bench/compare.ts [--slices N] [--slice ms] [--connections N] role@dir role@dir … (role: router, proxy, proxy-request, proxy-lean)");
  process.exit(2);
}

const home = specs[0].split("@")[1];
const upstreams = await start(home, "upstreams", []);
const targets = [];
for (const spec of specs) {
  const [role, dir] = spec.split("@");
  targets.push(await start(dir, role, upstreams.message.urls!));
}
const loader = await start(home, "load", [String(connections), ...targets.map((t) => t.message.url!)]);
console.error(`… ${slices} slices of ${sliceMs} ms per target, in turn (about ${Math.ceil((specs.length * (slices * (sliceMs + 60) + 1_000)) / 1_000)} s)`);
let measured;
try {
  measured = await interleave(loader.child, targets.map((t) => t.child), slices, sliceMs, (turn) => {
    if (turn % 10 === 0) console.error(`… turn ${turn}/${slices}`);
  });
} finally {
  for (const t of [loader, ...targets, upstreams]) await stopChild(t.child);
}
console.log(`| target (${connections} conn, ${slices} slices of ${sliceMs} ms) | req/s | p50 µs | user CPU µs/req | system CPU µs/req |`);
console.log("|---|---:|---:|---:|---:|");
for (const [i, spec] of specs.entries()) {
  const f = pooled(measured[i]);
  console.log(`| ${i + 1}. ${spec} | ${f.rps.toFixed(0)} | ${f.p50.toFixed(0)} | ${f.userUs.toFixed(1)} | ${f.systemUs.toFixed(1)} |${f.errors > 0 ? ` ${f.errors} errors` : ""}`);
}
