import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { eventually } from "../helpers/chainActions.ts";
import { childrenOf, running } from "../helpers/processes.ts";

// scripts/exitWithParent.ts, the preload that stops a child whose parent was killed outright.

const childProcessModule = new URL("../../scripts/childProcess.ts", import.meta.url).href;

/** Starts a parent that starts `childCode` with the preload and, after `afterMs`, kills itself: the child's pid. */
async function orphan(childCode: string, afterMs: number): Promise<number> {
  const parent = `
    const { spawn } = await import("node:child_process");
    const { exitWithParent } = await import(${JSON.stringify(childProcessModule)});
    const child = spawn(process.execPath, [...exitWithParent.flags, "-e", ${JSON.stringify(childCode)}], { env: exitWithParent.env(), stdio: "ignore", detached: true });
    setTimeout(() => { console.log(child.pid); process.kill(process.pid, "SIGKILL"); }, ${afterMs});`;
  const started = spawn(process.execPath, ["--input-type=module", "-e", parent], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  started.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await new Promise((resolve) => started.once("close", resolve));
  const pid = Number(output.trim());
  expect(pid).toBeGreaterThan(0);
  return pid;
}

async function expectStopped(pid: number, what: string, timeoutMs: number): Promise<void> {
  try {
    await eventually(what, async () => ((await running(pid)) ? undefined : true), timeoutMs);
  } finally {
    if (await running(pid)) process.kill(pid, "SIGKILL");
  }
}

describe("a child started with exitWithParent", () => {
  it("stops even when its parent was killed before the child's preload ran", async () => {
    // The parent kills itself at once: the child may not have run its preload yet.
    await expectStopped(await orphan("setTimeout(() => {}, 60000)", 0), "the orphaned child to stop", 15_000);
  });

  it("stops for good a child that hangs once asked to stop (its event loop stuck: no timer of its own runs)", async () => {
    // The fresh-clone CI once saw Ponder outlive its killed devnet by 30 s: a timer inside the
    // child never fired. This child spins for ever on SIGINT.
    const hung = `process.on("SIGINT", () => { for (;;); }); setTimeout(() => {}, 60000);`;
    await expectStopped(await orphan(hung, 500), "the hung orphan to be killed", 25_000);
  }, 40_000);
});

describe("npm run router", () => {
  // A persona walkthrough: SIGTERM to npm (as systemd or docker stop send) ended npm and its shell,
  // and the router served on, unparented. SIGKILL: npm cannot pass anything on.
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it(`stops its router when npm itself gets ${signal}`, async () => {
      const root = new URL("../..", import.meta.url).pathname;
      const npm = spawn("npm", ["run", "--silent", "router", "--", "--indexer", "http://127.0.0.1:9", "--port", "0", "--devnet"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] });
      let output = "";
      npm.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      try {
        await eventually("the router listening", async () => (output.includes('"msg":"router listening"') ? true : undefined), 30_000);
        const below = async (pid: number): Promise<{ pid: number; command: string }[]> =>
          (await Promise.all((await childrenOf(pid)).map(async (c) => [c, ...(await below(c.pid))]))).flat();
        const router = (await below(npm.pid!)).find((p) => p.command.includes("scripts/router.ts") && !p.command.startsWith("sh "));
        expect(router).toBeDefined();
        npm.kill(signal);
        await expectStopped(router!.pid, "the router to stop once npm is gone", 15_000);
      } finally {
        npm.kill("SIGKILL");
      }
    }, 60_000);
  }
});
