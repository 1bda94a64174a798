import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DevnetInfo } from "../../scripts/devnet.ts";
import { startProviderNode, type ProviderNode } from "../../scripts/providerNode.ts";
import { eventually } from "../helpers/chainActions.ts";
import { childrenAlive, childrenOf } from "../helpers/processes.ts";
import { runDin } from "../helpers/runDin.ts";

// The devnet as a user meets it: `npm start` in a child process, then only the CLI and HTTP.

const root = fileURLToPath(new URL("../..", import.meta.url));
let devnet: ChildProcess;
let output = "";
let cwd: string;
let dir: string;
let info: DevnetInfo;
let sixthNode: ProviderNode | undefined;

type StatusProvider = { address: string; name: string; state: string; served: number };
type Status = { chains: { chainId: number; providers: StatusProvider[] }[] };

async function rpc(method: string, params: unknown[] = []): Promise<{ status: number; provider: string | null; body: { result?: unknown; error?: unknown } }> {
  const response = await fetch(`${info.routerUrl}/rpc/${info.chainId}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  return { status: response.status, provider: response.headers.get("x-din-provider"), body: (await response.json()) as { result?: unknown } };
}

async function routerProviders(): Promise<StatusProvider[]> {
  const status = (await (await fetch(`${info.routerUrl}/status`)).json()) as Status;
  return status.chains.find((c) => c.chainId === info.chainId)?.providers ?? [];
}

async function din(args: string[], key?: string) {
  return await runDin(args, { cwd, env: key ? { DIN_PRIVATE_KEY: key } : {} });
}

/** Moves the chain's clock, over plain JSON-RPC to the node. */
async function advance(seconds: number): Promise<void> {
  for (const [method, params] of [["evm_increaseTime", [seconds]], ["evm_mine", []]] as const) {
    await fetch(info.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  }
}

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), "opendin-devnet-"));
  dir = join(cwd, ".devnet");
  devnet = spawn("npm", ["start", "--", "--dir", dir, "--chain-port", "0", "--indexer-port", "0", "--router-port", "0"], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, so the test can stop everything it started
  });
  devnet.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  devnet.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  info = await eventually(
    "npm start to write devnet.json and print where everything is",
    async () => {
      if (devnet.exitCode !== null) throw new Error(`npm start exited with ${devnet.exitCode}:\n${output}`);
      const written = JSON.parse(await readFile(join(dir, "devnet.json"), "utf8")) as DevnetInfo;
      // The summary is printed just after the file is written: on a busy machine, a moment later.
      return output.includes("Ctrl-C stops everything.") ? written : undefined;
    },
    240_000,
  );
});

afterAll(async () => {
  await sixthNode?.stop();
  if (devnet?.pid && devnet.exitCode === null) {
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-devnet.pid!, signal);
      } catch {
        // the group is gone already
      }
    };
    const exited = new Promise((done) => devnet.once("exit", done));
    signalGroup("SIGINT"); // what Ctrl-C sends
    await Promise.race([exited, new Promise((done) => setTimeout(done, 15_000))]);
    signalGroup("SIGKILL");
  }
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

describe("npm start", () => {
  it("prints where everything is and writes devnet.json, having refused no call of its own on the way", async () => {
    expect(output).toContain("OpenDIN devnet is running.");
    // (It waited on /health: its early calls were five unknown_chain refusals in /metrics.)
    expect(await (await fetch(`${info.routerUrl}/metrics`)).text()).not.toMatch(/^din_router_refused_total/m);
    expect(output).toContain(`${info.routerUrl}/rpc/${info.chainId}`);
    expect(info.chainId).toBe(31337);
    expect(info.providers).toHaveLength(5);
    expect(new Set(info.providers.map((p) => p.stake)).size).toBe(5);
    expect(Object.keys(info.contracts).sort()).toEqual(["DinGovernor", "DinToken", "ProviderRegistry", "SlashingManager", "TimelockController"]);
  });

  it("serves JSON-RPC through the router from a registered provider", async () => {
    const answer = await rpc("eth_blockNumber");
    expect(answer.status).toBe(200);
    expect(answer.body.result).toMatch(/^0x[0-9a-f]+$/);
    expect(info.providers.map((p) => p.address.toLowerCase())).toContain(answer.provider);
  });

  it("refuses a second devnet in the same folder, and the running one goes on", async () => {
    const second = spawn(process.execPath, ["scripts/devnet.ts", "--dir", dir, "--chain-port", "0", "--indexer-port", "0", "--router-port", "0"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    second.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((done) => second.once("exit", done));
    expect(code).toBe(1);
    expect(stderr).toContain(`devnet: a devnet is already running in ${dir} (pid `);
    // Nothing of the first one was touched: its files, its indexer, its router.
    expect((JSON.parse(await readFile(join(dir, "devnet.json"), "utf8")) as DevnetInfo).routerUrl).toBe(info.routerUrl);
    const providers = await fetch(`${info.indexerUrl}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ providers { totalCount } }" }),
    });
    expect(((await providers.json()) as { data: { providers: { totalCount: number } } }).data.providers.totalCount).toBeGreaterThanOrEqual(5);
    expect((await rpc("eth_blockNumber")).body.result).toMatch(/^0x[0-9a-f]+$/);
  });

  it("routes to a sixth provider registered through the CLI", async () => {
    sixthNode = await startProviderNode({ upstreamUrl: info.rpcUrl, latencyMs: 0, adminPort: null });
    const spare = info.accounts.find((a) => a.role.startsWith("operator"))!;
    const registered = await din(["provider", "register", "--name", "sixth", "--stake", "30000", "--endpoint", `${info.chainId}=${sixthNode.url}`], spare.privateKey);
    expect(registered.stderr).toMatch(/^(sent \S+ \(tx 0x[0-9a-f]{64}\); waiting for it to be mined…\n){3}$/); // progress only
    expect(registered.stdout).toMatch(/^registered sixth/);
    const askedByCli = sixthNode.stats().requests; // the CLI asked it its chain id
    expect(askedByCli).toBeGreaterThan(0);
    const inSet = await eventually("the router to send traffic to the sixth provider", async () => {
      await rpc("eth_blockNumber");
      const listed = (await routerProviders()).find((p) => p.address === spare.address.toLowerCase());
      return listed !== undefined && sixthNode!.stats().requests > askedByCli ? listed : undefined;
    }, 60_000);
    expect(inSet.name).toBe("sixth");

    // A second chain whose node is down: the operator's standing shows the router's view per chain.
    expect((await din(["provider", "endpoint", "set", "1", "http://127.0.0.1:9/"], spare.privateKey)).code).toBe(0);
    const standing = await eventually("the router to list the sixth provider on chain 1 too", async () => {
      const status = await din(["provider", "status"], spare.privateKey);
      return status.stdout.includes("chain 1: ") ? status.stdout : undefined;
    }, 60_000);
    expect(standing).toMatch(/router +chain 1: [a-z_]+, score [0-9.]+, [0-9.]+% of traffic; chain /);
    expect(standing).toMatch(new RegExp(`; chain ${info.chainId}: (healthy|probation), score [0-9.]+, [0-9.]+% of traffic\n`));
  });

  it("loses no client request when a provider goes down, and slashes and jails it through a vote", async () => {
    const victim = info.providers[4];
    const typo = await fetch(`${victim.adminUrl}/fault`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: "refused" }) });
    expect(typo.status).toBe(400);
    expect(((await typo.json()) as { error: string }).error).toMatch(/^unknown fault kind "refused": one of none, refuse, reset, hang, /);
    // Its parameters too (a gateway walkthrough's {"kind":"behind","blocks":20} was taken and echoed), and GET /faults lists them.
    const fault = async (body: object) => {
      const answer = await fetch(`${victim.adminUrl}/fault`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return [answer.status, ((await answer.json()) as { error?: string }).error];
    };
    expect(await fault({ kind: "behind", blocks: 20 })).toEqual([400, 'fault "behind" takes head (optional), not "blocks"']);
    expect(await fault({ kind: "wrongChain" })).toEqual([400, 'fault "wrongChain" needs chainId (it takes chainId)']);
    expect(await fault({ kind: "dribble", ms: 5 })).toEqual([400, 'fault "dribble" takes no parameter, not "ms"']);
    expect(await (await fetch(`${victim.adminUrl}/faults`)).json()).toMatchObject({ behind: ["head?"], status: ["status", "method?"], refuse: [] });
    expect(((await (await fetch(`${victim.adminUrl}/stats`)).json()) as { fault: { kind: string } }).fault.kind).toBe("none");
    const latencyOf = async () => ((await (await fetch(`${victim.adminUrl}/stats`)).json()) as { latencyMs: number }).latencyMs;
    const before = await latencyOf();
    const vague = await fetch(`${victim.adminUrl}/latency`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(vague.status).toBe(400);
    expect(((await vague.json()) as { error: string }).error).toBe('latency must be {"ms": <0 to 600000>}, not null');
    expect(await latencyOf()).toBe(before);
    const down = await fetch(`${victim.adminUrl}/fault`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: "refuse" }) });
    expect(down.ok).toBe(true);
    const answers = [];
    for (let i = 0; i < 60; i++) answers.push(await rpc("eth_getBalance", [victim.address, "latest"]));
    expect(answers.filter((a) => a.status !== 200 || a.body.result === undefined)).toEqual([]);
    expect(answers.map((a) => a.provider)).not.toContain(victim.address.toLowerCase());

    const watcher = info.accounts.find((a) => a.role === "watcher")!;
    const voter = info.accounts.find((a) => a.role === "voter")!;
    const evidence = join(cwd, "evidence.txt");
    await (await import("node:fs/promises")).writeFile(evidence, `refused connections at ${new Date().toISOString()}`);
    const opened = await din(["case", "open", "--provider", victim.address, "--amount", "400", "--evidence", evidence, "--json"], watcher.privateKey);
    expect(opened.stderr).toBe("");
    const caseId = (JSON.parse(opened.stdout) as { caseId: string }).caseId;
    const proposed = await din(["gov", "propose-slash", "--case", caseId, "--jail", "--json"], voter.privateKey);
    expect(proposed.stderr).toBe("");
    const proposalId = (JSON.parse(proposed.stdout) as { proposalId: string }).proposalId;
    await advance(2);
    expect((await din(["gov", "vote", "--proposal", proposalId, "--support", "for"], voter.privateKey)).code).toBe(0);
    await advance(31);
    expect((await din(["gov", "queue", "--proposal", proposalId], voter.privateKey)).code).toBe(0);
    await advance(6);
    const executed = await din(["gov", "execute", "--proposal", proposalId], voter.privateKey);
    expect(executed.stdout).toMatch(/^executed proposal/);

    const status = await din(["provider", "status", victim.address]);
    expect(status.stdout).toContain(`provider ${victim.address}: jailed`);
    expect(status.stdout).toMatch(/active stake\s+600 DIN/);
    const topUp = await din(["provider", "stake", "10"], victim.privateKey);
    expect(topUp.stdout).toMatch(/^staked 10 DIN; active stake is now 610 DIN \(tx 0x[0-9a-f]+\)\n  you are jailed: routers send you no traffic until governance unjails you/);
    await eventually("the router to drop the jailed provider", async () =>
      (await routerProviders()).some((p) => p.address === victim.address.toLowerCase()) ? undefined : true,
    60_000);
  });

  it("lets an operator unbond and withdraw after the unbonding period", async () => {
    const operator = info.providers[0];
    const unbond = await din(["provider", "unbond", "100"], operator.privateKey);
    expect(unbond.stdout).toMatch(/^unbonding 100 DIN: withdrawable from/);
    await advance(121);
    const withdrawn = await din(["provider", "withdraw"], operator.privateKey);
    expect(withdrawn.stdout).toMatch(/^withdrew 100 DIN/);
  });

  it("starts its indexer again when it exits on its own, also while it starts again, and the router takes the set from it again", async () => {
    // A gateway walkthrough: the devnet's indexer ended, the devnet said nothing, and no README said
    // how to restart it. Another: killed while it started again, it was left dead after two ends,
    // said two minutes later (an end by a signal was not seen until the start's deadline).
    const devnetPid = Number(await readFile(join(dir, "devnet.pid"), "utf8"));
    const ponderPid = async () => (await childrenOf(devnetPid)).find((c) => c.command.includes("ponder/dist/esm/bin/ponder.js"))?.pid;
    const state = async () => ((await (await fetch(`${info.routerUrl}/status`)).json()) as { providerSet: { state: string } }).providerSet.state;
    const running = (await ponderPid())!;
    process.kill(running, "SIGKILL");
    const starting = await eventually("the indexer starting again", async () => {
      const pid = await ponderPid();
      return pid !== running ? pid : undefined;
    }, 60_000);
    process.kill(starting, "SIGKILL"); // (Ponder takes seconds to be ready: this is before)
    await eventually("the devnet to say the indexer is back", async () => (output.includes("the indexer is back at") ? true : undefined), 120_000);
    expect(output).toMatch(/the indexer exited \(signal SIGKILL\): starting it again/);
    expect(output).toMatch(/the indexer could not be started again \(the indexer exited \(signal SIGKILL\) before it was ready\): starting it again/);
    await eventually("the router's provider set live again", async () => ((await state()) === "live" ? true : undefined), 60_000);
    const call = await fetch(`${info.routerUrl}/rpc/${info.chainId}`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}' });
    expect(((await call.json()) as { result?: string }).result).toMatch(/^0x[0-9a-f]+$/);
  });

  // Last: it ends the devnet.
  it("leaves no chain or indexer running when npm start is killed with SIGKILL", async () => {
    const devnetPid = Number(await readFile(join(dir, "devnet.pid"), "utf8"));
    const children = await childrenOf(devnetPid);
    const commands = children.map((c) => c.command).join("\n");
    expect(commands).toContain("hardhat/dist/src/cli.js node");
    expect(commands).toContain("ponder/dist/esm/bin/ponder.js");
    try {
      process.kill(devnetPid, "SIGKILL"); // no chance to stop them itself
      await eventually("the chain and the indexer to stop", async () => ((await childrenAlive(children)).length === 0 ? true : undefined), 30_000);
    } finally {
      const left = await childrenAlive(children);
      if (left.length > 0) console.error("still running after the devnet was killed:", left);
      for (const child of left) process.kill(child.pid, "SIGKILL");
    }
  });
});
