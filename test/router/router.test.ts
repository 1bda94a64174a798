import { spawn } from "node:child_process";
import { connect } from "node:net";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { freePort } from "../../scripts/freePort.ts";
import { parseRouterFlags } from "../../scripts/router.ts";
import { createLogger } from "../../router/log.ts";
import { compileMethodPolicy } from "../../router/methodPolicy.ts";
import { resolveRoutingOptions } from "../../router/options.ts";
import { writeSnapshot } from "../../router/snapshot.ts";
import { eventually } from "../helpers/chainActions.ts";
import { recordsFor, startFaultyUpstreams, type ProviderNode } from "../helpers/faultyUpstream.ts";
import { childrenAlive, childrenOf } from "../helpers/processes.ts";
import { startRouter, type TestRouter } from "../helpers/startRouter.ts";
import { waitFor } from "./support.ts";

// `npm run router` (scripts/router.ts) as a process: flags in, structured logs out, stops on SIGTERM.

const script = fileURLToPath(new URL("../../scripts/router.ts", import.meta.url));

/** Runs a script with node to its end, or kills it after 20 s (a router that started): exit code, stdout, stderr. */
async function run(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...args], { stdio: ["ignore", "pipe", "pipe"], timeout: 20_000, killSignal: "SIGKILL" });
  let [stdout, stderr] = ["", ""];
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
  return { code, stdout, stderr };
}
let chain: Chain;
let nodes: ProviderNode[];
let dir: string;

beforeAll(async () => {
  chain = await startChain();
  nodes = await startFaultyUpstreams(chain.rpcUrl, 2);
  dir = await mkdtemp(join(tmpdir(), "din-router-cli-"));
});

afterAll(async () => {
  for (const node of nodes ?? []) await node.stop();
  await chain?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("scripts/router.ts", () => {
  it("parses its flags and explains bad ones", () => {
    const snapshot = join(dir, "s.json");
    expect(parseRouterFlags(["--indexer", "http://127.0.0.1:42069", "--port", "0", "--devnet", "--snapshot", snapshot])).toEqual({
      indexer: "http://127.0.0.1:42069",
      port: 0,
      host: "127.0.0.1",
      snapshot,
      devnet: true,
      trustProxy: [],
      logLevel: "info",
    });
    expect(parseRouterFlags([], { DIN_INDEXER_URL: "http://indexer:1" }).indexer).toBe("http://indexer:1");
    expect(() => parseRouterFlags([])).toThrow(/needs --indexer/);
    const indexer = ["--indexer", "http://127.0.0.1:42069"];
    expect(() => parseRouterFlags([...indexer, "--port", "99999"])).toThrow(/--port must be/);
    expect(() => parseRouterFlags([...indexer, "--port", ""])).toThrow(/--port must be/);
    expect(() => parseRouterFlags([...indexer, "--port", " 80"])).toThrow(/--port must be/);
    expect(() => parseRouterFlags([...indexer, "--bogus"])).toThrow();
    expect(() => parseRouterFlags(["--indexer", "not a url"])).toThrow(/--indexer must be a URL/);
    expect(() => parseRouterFlags(["--indexer", "ftp://indexer.example"])).toThrow(/http:\/\/ or https:\/\//);
    expect(() => parseRouterFlags(["--indexer", "http://user:secret@indexer.example"])).toThrow(/user name or password/);
    // The devnet prints the indexer's GraphQL URL (a gateway walkthrough gave it; the router started and served nothing).
    expect(() => parseRouterFlags(["--indexer", "http://127.0.0.1:42069/graphql"])).toThrow(/^--indexer is the indexer's base URL, not its \/graphql endpoint: give http:\/\/127\.0\.0\.1:42069$/);
    expect(() => parseRouterFlags(["--indexer", "https://indexer.example/din/sql/"])).toThrow(/not its \/sql endpoint: give https:\/\/indexer\.example\/din$/);
    expect(parseRouterFlags(["--indexer", "https://indexer.example/din"]).indexer).toBe("https://indexer.example/din");
    // A value from the environment is named as such; an empty flag is a script's unset variable (an empty --host would listen everywhere).
    expect(() => parseRouterFlags([], { DIN_INDEXER_URL: "notaurl" })).toThrow(/^DIN_INDEXER_URL must be a URL such as http:\/\/127\.0\.0\.1:42069, got "notaurl"$/);
    expect(() => parseRouterFlags([...indexer, "--host", ""])).toThrow(/^--host is empty: give it a value, or leave the flag out$/);
    expect(() => parseRouterFlags([...indexer, "--config", " "])).toThrow(/^--config is empty: give it a value, or leave the flag out$/);
    expect(parseRouterFlags(indexer, { DIN_ROUTER_CONFIG: "" }).routing).toBeUndefined(); // set but empty: none
    expect(() => parseRouterFlags(indexer, { DIN_ROUTER_CONFIG: join(dir, "missing.json") })).toThrow(/^DIN_ROUTER_CONFIG .*missing\.json: cannot read it \(ENOENT\)$/);
    expect(parseRouterFlags([...indexer, "--trust-proxy", "127.0.0.1, 10.0.0.0/8,fd00::/8"]).trustProxy).toEqual(["127.0.0.1", "10.0.0.0/8", "fd00::/8"]);
    expect(parseRouterFlags(indexer, { DIN_TRUST_PROXY: "192.168.1.2" }).trustProxy).toEqual(["192.168.1.2"]);
    expect(parseRouterFlags(indexer, { DIN_TRUST_PROXY: "" }).trustProxy).toEqual([]); // set but empty: none
    for (const bad of ["localhost", "10.0.0.0/33", "10.0.0.0/8/1", "10.0.0.0/", "::1/129"]) {
      expect(() => parseRouterFlags([...indexer, "--trust-proxy", bad]), bad).toThrow(/a trusted proxy must be an IP address or a CIDR block/);
    }
  });

  it("refuses an empty or ambiguous --trust-proxy instead of trusting something else than meant", () => {
    const indexer = ["--indexer", "http://127.0.0.1:42069"];
    // The flag given empty is a script's unset variable; the environment variable set empty means none.
    expect(() => parseRouterFlags([...indexer, "--trust-proxy", ""])).toThrow(/^--trust-proxy is empty: name the proxies in front of the router, or leave the flag out$/);
    expect(() => parseRouterFlags([...indexer, "--trust-proxy", " "])).toThrow(/^--trust-proxy is empty/);
    for (const bad of [",", "10.0.0.1,", "10.0.0.1,,10.0.0.2"]) {
      expect(() => parseRouterFlags([...indexer, "--trust-proxy", bad]), bad).toThrow(/^--trust-proxy ".*": a trusted proxy entry is empty/);
    }
    expect(() => parseRouterFlags(indexer, { DIN_TRUST_PROXY: "10.0.0.1," })).toThrow(/^DIN_TRUST_PROXY "10\.0\.0\.1,": a trusted proxy entry is empty/);
    // An interface address with its netmask: the network, or the one proxy? Said, not guessed.
    expect(() => parseRouterFlags([...indexer, "--trust-proxy", "10.0.0.1/8"])).toThrow(
      'the trusted proxy block "10.0.0.1/8" has bits set past its /8 prefix: write 10.0.0.0/8 for the network, or 10.0.0.1 alone for one proxy',
    );
    // Every address is a valid, if unwise, choice: it starts, with a warning (see "warns at start").
    expect(parseRouterFlags([...indexer, "--trust-proxy", "0.0.0.0/0,::/0"]).trustProxy).toEqual(["0.0.0.0/0", "::/0"]);
  });

  it("says what is wrong with --port, --log-level and --snapshot", async () => {
    const indexer = ["--indexer", "http://127.0.0.1:42069"];
    expect(() => parseRouterFlags([...indexer, "--port", "-1"])).toThrow(/^--port must be a number 0…65535, got "-1"$/);
    expect(() => parseRouterFlags([...indexer, "--port=-1"])).toThrow(/^--port must be a number 0…65535, got "-1"$/);
    expect(() => parseRouterFlags([...indexer, "--host", "-x"])).toThrow(/^--host needs a value, and "-x" reads as a flag: write --host=-x if it is the value$/);
    expect(() => parseRouterFlags([...indexer, "--bogus"])).toThrow(/^Unknown option '--bogus' \(router --help lists the flags\)$/);
    expect(parseRouterFlags([...indexer, "--log-level", "silent"]).logLevel).toBe("silent");
    expect(() => parseRouterFlags([...indexer, "--log-level", "loud"])).toThrow(/^--log-level must be debug, info, warn, error or silent, got "loud"$/);
    // The snapshot is written long after start: a path it can never be written at is refused at once.
    const file = join(dir, "a-file");
    await writeFile(file, "");
    const refused: [string, RegExp][] = [
      ["", /^--snapshot: .* cannot be used: the path is empty: name a file such as \.router\/providers\.json$/],
      [dir, new RegExp(`^--snapshot: the provider-set snapshot at ${dir} cannot be used: it is a directory: name a file in it, such as ${dir}/providers\\.json$`)],
      [join(file, "providers.json"), new RegExp(`^--snapshot: the provider-set snapshot at ${file}/providers\\.json cannot be used: ${file} is a file, not a directory$`)],
      [join(file, "deeper", "providers.json"), new RegExp(`^--snapshot: .* cannot be used: ${file} is a file, not a directory$`)],
    ];
    if (process.platform === "linux") {
      refused.push(["/proc/nope.json", /^--snapshot: .* cannot be used: no file can be written in \/proc \(E[A-Z]+\)$/]);
      // Where Node's own recursive mkdir never returns.
      refused.push(["/proc/nope/providers.json", /^--snapshot: .* cannot be used: its directory \/proc\/nope cannot be created \(ENOENT\)$/]);
    }
    for (const [path, message] of refused) expect(() => parseRouterFlags([...indexer, "--snapshot", path]), path).toThrow(message);
    // A file in a directory yet to be made is fine: the check makes the directory and leaves no file.
    const fresh = join(dir, "new", "providers.json");
    expect(parseRouterFlags([...indexer, "--snapshot", fresh]).snapshot).toBe(fresh);
    expect(await readdir(join(dir, "new"))).toEqual([]);
  });

  it("reads routing parameters from a --config file, and refuses one it cannot use, saying why", async () => {
    const indexer = ["--indexer", "http://127.0.0.1:42069"];
    const config = async (name: string, text: string) => {
      const path = join(dir, name);
      await writeFile(path, text);
      return path;
    };
    const good = await config("good.json", JSON.stringify({ limits: { maxCallsInFlight: 32_768 }, failover: { hedge: false }, shareWindowMs: 5_000 }));
    expect(parseRouterFlags([...indexer, "--config", good]).routing).toEqual({ limits: { maxCallsInFlight: 32_768 }, failover: { hedge: false }, shareWindowMs: 5_000 });
    expect(parseRouterFlags(indexer, { DIN_ROUTER_CONFIG: good }).routing).toEqual(parseRouterFlags([...indexer, "--config", good]).routing);
    expect(parseRouterFlags(indexer).routing).toBeUndefined();
    // A reason of one's own adds to the default ones.
    const reasons = await config("reasons.json", JSON.stringify({ methods: { refusalReasons: { eth_foo: "ask the operator" } } }));
    const check = compileMethodPolicy(resolveRoutingOptions(parseRouterFlags([...indexer, "--config", reasons]).routing).methods);
    expect([check("eth_foo"), check("eth_sendTransaction"), check("eth_call")]).toEqual(["ask the operator", expect.stringMatching(/^signing needs the node's keys/), null]);
    // A list of one's own: eth_chainId and net_version, answered by the router itself, stay allowed,
    // and no reason speaks of what the list leaves out.
    const reads = await config("reads.json", JSON.stringify({ methods: { allowedMethods: ["eth_blockNumber", "eth_call"], refusalReasons: { eth_foo: "ask the operator" } } }));
    const own = compileMethodPolicy(resolveRoutingOptions(parseRouterFlags([...indexer, "--config", reads]).routing).methods);
    expect(["eth_chainId", "net_version", "eth_call"].map(own)).toEqual([null, null, null]);
    expect(own("eth_getBalance")).toBe("not among the methods this gateway serves");
    expect(own("eth_sendTransaction")).toBe("signing needs the node's keys"); // not "use eth_sendRawTransaction": it is not served
    expect(own("eth_subscribe")).toBe("subscriptions need a WebSocket and this gateway speaks HTTP");
    expect(own("eth_accounts")).toBe("a gateway has no accounts: a wallet holds them");
    expect(own("eth_foo")).toBe("ask the operator");
    expect(own("web3_clientVersion")).toBe("the web3_ namespace is not served by this gateway (served: eth_, net_)");
    const writes = compileMethodPolicy(resolveRoutingOptions({ methods: { allowedMethods: ["eth_call", "eth_sendRawTransaction"] } }).methods);
    expect(writes("eth_sendTransaction")).toBe("signing needs the node's keys: sign locally and use eth_sendRawTransaction");
    const refused: [string, RegExp][] = [
      ["{ limits: 1", /not valid JSON/],
      ["[1]", /must be a JSON object/],
      ['{"limit": {"maxBatchItems": 2}}', /unknown section "limit" \(known: scoring, circuit, probe, failover, limits, methods, shareWindowMs\)/],
      ['{"limits": {"maxBatchItem": 2}}', /unknown option limits\.maxBatchItem \(limits has: maxBodyBytes, maxBatchItems,/],
      ['{"limits": {"constructor": 2}}', /unknown option limits\.constructor/],
      ['{"__proto__": {"maxBatchItems": 2}}', /unknown section "__proto__"/],
      ['{"toString": 5}', /unknown section "toString"/],
      ['{"shareWindowMs": null}', /shareWindowMs must be a number/],
      ['{"limits": {"maxBatchItems": 0}}', /router option limits\.maxBatchItems must be a whole number ≥ 1 and ≤ 1000000, got 0/],
      ['{"limits": {"maxCallsInFlight": "32768"}}', /router option limits\.maxCallsInFlight must be a whole number ≥ 1 and ≤ 100000000, got a string \("32768"\)/],
      ['{"scoring": {"latencyAlpha": [0.5]}}', /router option scoring\.latencyAlpha must be a number > 0 and ≤ 1, got a list/],
      ['{"failover": {"hedge": "no"}}', /router option failover\.hedge must be true or false/],
      ['{"limits": 5}', /"limits" must be an object of options/],
      ['{"methods": {"allowedMethods": ["eth_call", "not a method"]}}', /methods\.allowedMethods must be a list of method names/],
    ];
    for (const [text, message] of refused) {
      const path = await config("bad.json", text);
      expect(() => parseRouterFlags([...indexer, "--config", path]), text).toThrow(new RegExp(`^--config ${path}: ${message.source}`));
    }
    expect(() => parseRouterFlags([...indexer, "--config", join(dir, "missing.json")])).toThrow(/--config .*missing\.json: cannot read it \(ENOENT\)/);
  });

  it("stops when the `din` that runs it is killed outright (SIGKILL), rather than serve on as an orphan", async () => {
    const snapshot = join(dir, "orphan.json");
    const indexer = `http://127.0.0.1:${await freePort()}`;
    await writeSnapshot(snapshot, recordsFor(nodes, 31337, [1_000]), indexer);
    const din = fileURLToPath(new URL("../../scripts/din.ts", import.meta.url));
    const child = spawn(process.execPath, [din, "router", "--indexer", indexer, "--port", "0", "--snapshot", snapshot, "--devnet"], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    let router: { pid: number; command: string }[] = [];
    try {
      const url = await eventually("the router to listen", async () => /"msg":"router listening".*?"url":"([^"]+)"/.exec(output)?.[1], 60_000);
      expect((await fetch(`${url}/health`)).status).toBe(200);
      router = await childrenOf(child.pid!);
      expect(router.map((p) => p.command).join("\n")).toContain("scripts/router.ts");
      child.kill("SIGKILL");
      await eventually("the router to stop once its parent is gone", async () => ((await childrenAlive(router)).length === 0 ? true : undefined), 20_000);
    } finally {
      child.kill("SIGKILL");
      for (const left of await childrenAlive(router)) process.kill(left.pid, "SIGKILL");
    }
  });

  it("runs as a process: serves from its snapshot with the indexer away, logs JSON lines, takes its --config, stops on SIGTERM", async () => {
    const snapshot = join(dir, "providers.json");
    const indexer = `http://127.0.0.1:${await freePort()}`;
    await writeSnapshot(snapshot, recordsFor(nodes, 31337, [1_000, 1_000]), indexer);
    const config = join(dir, "router.json");
    await writeFile(config, JSON.stringify({ limits: { maxBatchItems: 2 } }));
    const child = spawn(process.execPath, [script, "--indexer", indexer, "--port", "0", "--snapshot", snapshot, "--devnet", "--config", config], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: Record<string, unknown>[] = [];
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      const parts = text.split("\n");
      text = parts.pop()!;
      for (const line of parts) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    try {
      await waitFor(() => lines.some((l) => l.msg === "router listening"), "the router to listen", 60_000);
      const url = lines.find((l) => l.msg === "router listening")!.url as string;
      for (const line of lines) expect(line).toMatchObject({ time: expect.any(String), level: expect.any(String), service: "router" });
      expect(lines.some((l) => l.msg === "indexer unreachable at start-up: serving the provider-set snapshot")).toBe(true);
      const answer = await fetch(`${url}/rpc/31337`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber" }),
      });
      expect(((await answer.json()) as { result: string }).result).toMatch(/^0x/);
      const call = { jsonrpc: "2.0", id: 1, method: "eth_blockNumber" };
      const batch = await fetch(`${url}/rpc/31337`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify([call, call, call]) });
      expect(batch.status).toBe(413);
      expect(await batch.text()).toContain("a batch holds at most 2 calls (got 3)");
      const status = (await (await fetch(`${url}/status`)).json()) as { providerSet: { servingFrom: string; state: string } };
      expect(status.providerSet).toMatchObject({ servingFrom: "snapshot", state: "unreachable" });
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  });

  it("says where it listens on stderr when its --log-level hides the info line that says so", async () => {
    const snapshot = join(dir, "quiet.json");
    const indexer = `http://127.0.0.1:${await freePort()}`;
    await writeSnapshot(snapshot, recordsFor(nodes, 31337, [1_000]), indexer);
    for (const level of ["warn", "silent"]) {
      const child = spawn(process.execPath, [script, "--indexer", indexer, "--port", "0", "--snapshot", snapshot, "--devnet", "--log-level", level], { stdio: ["ignore", "pipe", "pipe"] });
      let [stdout, stderr] = ["", ""];
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      try {
        const url = await eventually("the router to say where it listens", async () => /^router listening on (http:\/\/127\.0\.0\.1:[0-9]+) \(JSON-RPC: POST \1\/rpc\/<chainId>\)\n$/.exec(stderr)?.[1], 60_000);
        expect((await fetch(`${url}/health`)).status).toBe(200);
        expect(stdout).not.toContain("router listening"); // no info line at this level
      } finally {
        const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
        child.kill("SIGTERM");
        expect(await exited).toBe(0);
      }
    }
  });

  it("says so when its port is taken, and exits 1", async () => {
    const snapshot = join(dir, "taken.json");
    const indexer = `http://127.0.0.1:${await freePort()}`;
    await writeSnapshot(snapshot, recordsFor(nodes, 31337, [1_000]), indexer);
    const port = new URL(chain.rpcUrl).port;
    const { code, stdout, stderr } = await run([script, "--indexer", indexer, "--port", port, "--snapshot", snapshot, "--devnet"]);
    expect(stderr.trim()).toBe(`cannot listen on 127.0.0.1:${port}: the port is in use (by another router? a chain node?); choose another with --port`);
    expect(code).toBe(1);
    // At once: before it waited for the indexer, loaded the snapshot or probed a provider.
    expect(stdout).toBe("");
    // An address that is not this machine's (192.0.2.1 is documentation's own).
    const elsewhere = await run([script, "--indexer", indexer, "--host", "192.0.2.1", "--port", "0", "--snapshot", snapshot, "--devnet"]);
    expect(elsewhere.stderr.trim()).toBe("cannot listen on 192.0.2.1:0: 192.0.2.1 is not an address of this machine (EADDRNOTAVAIL); --host takes one of its own, 0.0.0.0 for all");
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stdout).toBe(""); // at once, with --port 0 too
  });

  it("prints its usage on --help to stdout and exits 0, as `din router --help` too", async () => {
    const din = fileURLToPath(new URL("../../scripts/din.ts", import.meta.url));
    for (const args of [[script, "--help"], [script, "-h"], [din, "router", "--help"]]) {
      const { code, stdout, stderr } = await run(args);
      expect(stderr, args.join(" ")).toBe("");
      expect(stdout).toMatch(/^usage: router --indexer <url> .*\[--log-level debug\|info\|warn\|error\|silent\]\n/);
      expect(stdout).toContain("--log-level  the least level");
      expect(code).toBe(0);
    }
  });

  it("refuses at start a --snapshot it could never write, or any bad argument, and exits 2 as din does for bad arguments", async () => {
    const indexer = `http://127.0.0.1:${await freePort()}`;
    const { code, stdout, stderr } = await run([script, "--indexer", indexer, "--port", "0", "--snapshot", dir, "--devnet"]);
    expect(stderr.trim()).toBe(`--snapshot: the provider-set snapshot at ${dir} cannot be used: it is a directory: name a file in it, such as ${join(dir, "providers.json")}`);
    expect(stdout).toBe(""); // nothing started
    expect(code).toBe(2);
    // (A gateway walkthrough: these exited 1, which din's help keeps for failures.)
    const port = await run([script, "--indexer", indexer, "--port", "abc"]);
    expect([port.code, port.stderr.trim(), port.stdout]).toEqual([2, '--port must be a number 0…65535, got "abc"', ""]);
    const din = fileURLToPath(new URL("../../scripts/din.ts", import.meta.url));
    expect((await run([din, "router", "--indexer", indexer, "--bogus"])).code).toBe(2);
    // The other services alike (a review: they still exited 1).
    for (const service of ["indexer", "devnet"]) {
      const bogus = await run([din, service, "--bogus"]);
      expect([bogus.code, bogus.stderr.trim()]).toEqual([2, `${service}: Unknown option '--bogus' (${service} --help lists the flags)`]);
    }
  });

  it("warns at start of trusted proxy ranges that cover everyone and of dangerous methods let through, and serves eth_chainId whatever the list", async () => {
    const lines: { level: string; msg: string; [field: string]: unknown }[] = [];
    const log = createLogger({ level: "warn", write: (line) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
    const allowedMethods = ["eth_blockNumber", "eth_getBlockByNumber", "eth_sendTransaction", "personal_sign", "debug_traceTransaction", "admin_peers", "eth_accounts"];
    const router = await startRouter({
      records: recordsFor(nodes, 31337, [1_000]),
      trustProxy: ["0.0.0.0/0", "::/0", "10.0.0.0/8", "fd00::/8"],
      routing: { methods: { allowedMethods } },
      log,
    });
    try {
      expect(lines.find((l) => /^trusting X-Forwarded-For from very wide address ranges/.test(l.msg))).toMatchObject({ level: "warn", ranges: ["0.0.0.0/0", "::/0"] });
      expect(lines.find((l) => /^methods\.allowedMethods lets clients call methods the default policy refuses/.test(l.msg))).toMatchObject({
        level: "warn",
        methods: ["eth_sendTransaction", "personal_sign", "debug_traceTransaction", "admin_peers", "eth_accounts"],
      });
      const answer = await router.post(31337, [
        { jsonrpc: "2.0", id: 1, method: "eth_chainId" },
        { jsonrpc: "2.0", id: 2, method: "net_version" },
        { jsonrpc: "2.0", id: 3, method: "eth_getBalance", params: ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"] },
      ]);
      expect(answer.json()).toEqual([
        { jsonrpc: "2.0", id: 1, result: "0x7a69" },
        { jsonrpc: "2.0", id: 2, result: "31337" },
        { jsonrpc: "2.0", id: 3, error: { code: -32601, message: "method eth_getBalance is not allowed: not among the methods this gateway serves" } },
      ]);
    } finally {
      await router.stop();
    }
    // The default policy and proxies of one's own network: nothing to warn of.
    lines.length = 0;
    const quiet = await startRouter({ records: recordsFor(nodes, 31337, [1_000]), trustProxy: ["10.0.0.0/8", "127.0.0.1"], log });
    await quiet.stop();
    expect(lines.filter((l) => /X-Forwarded-For|allowedMethods/.test(l.msg))).toEqual([]);
  });
});

describe("stopping", () => {
  const call = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_getBalance", params: ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"] });

  /** Sends one call over a raw connection; resolves with everything received once the router closes it. */
  function rawCall(router: TestRouter): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect({ host: "127.0.0.1", port: router.port });
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      socket.on("error", () => {});
      socket.on("close", () => resolve(text));
      socket.write(`POST /rpc/31337 HTTP/1.1\r\nhost: router\r\ncontent-type: application/json\r\ncontent-length: ${call.length}\r\n\r\n${call}`);
    });
  }
  const inFlight = (router: TestRouter) => Number(/^din_router_in_flight_requests (\d+)$/m.exec(router.metrics())?.[1]);
  const refused = (router: TestRouter) =>
    new Promise<string>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port: router.port });
      socket.on("connect", () => resolve("connected"));
      socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    });

  it("answers the calls in flight, takes no new connection, then stops", async () => {
    const router = await startRouter({ records: recordsFor(nodes, 31337, [1_000, 1_000]) });
    await waitFor(() => router.status().chains[0].eligibleProviders === 2, "both providers eligible");
    for (const node of nodes) node.setLatency(400);
    try {
      const answered = rawCall(router);
      await waitFor(() => inFlight(router) === 1, "the call in flight");
      const stopped = router.stop({ drainMs: 5_000 });
      expect(await refused(router)).toBe("ECONNREFUSED");
      const text = await answered; // the router closed the connection after answering
      expect(text).toMatch(/^HTTP\/1\.1 200 .*\r\nconnection: close\r\n.*"result":"0x[0-9a-f]+"/s);
      await stopped;
    } finally {
      for (const node of nodes) node.setLatency(0);
    }
  });

  it("cuts what still runs when the drain time is over", async () => {
    const router = await startRouter({ records: recordsFor(nodes, 31337, [1_000, 1_000]) });
    await waitFor(() => router.status().chains[0].eligibleProviders === 2, "both providers eligible");
    for (const node of nodes) await node.setFault({ kind: "hang" });
    try {
      const answered = rawCall(router);
      await waitFor(() => inFlight(router) === 1, "the call in flight");
      const started = performance.now();
      await router.stop({ drainMs: 300 });
      expect(performance.now() - started).toBeLessThan(5_000); // not the call's 8 s deadline
      expect(await answered).toBe(""); // closed without an answer
    } finally {
      for (const node of nodes) await node.setFault({ kind: "none" });
    }
  });
});
