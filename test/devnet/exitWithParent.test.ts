import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { eventually } from "../helpers/chainActions.ts";
import { running } from "../helpers/processes.ts";

// scripts/exitWithParent.ts, the preload that stops a child whose parent was killed outright.

const childProcessModule = new URL("../../scripts/childProcess.ts", import.meta.url).href;

describe("a child started with exitWithParent", () => {
  it("stops even when its parent was killed before the child's preload ran", async () => {
    // The parent starts a child that would idle for a minute, prints its pid, and kills itself at once.
    const parent = `
      const { spawn } = await import("node:child_process");
      const { exitWithParent } = await import(${JSON.stringify(childProcessModule)});
      const child = spawn(process.execPath, [...exitWithParent.flags, "-e", "setTimeout(() => {}, 60000)"], { env: exitWithParent.env(), stdio: "ignore", detached: true });
      console.log(child.pid);
      process.kill(process.pid, "SIGKILL");`;
    const started = spawn(process.execPath, ["--input-type=module", "-e", parent], { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    started.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await new Promise((resolve) => started.once("close", resolve));
    const pid = Number(output.trim());
    expect(pid).toBeGreaterThan(0);
    try {
      await eventually("the orphaned child to stop", async () => ((await running(pid)) ? undefined : true), 15_000);
    } finally {
      if (await running(pid)) process.kill(pid, "SIGKILL");
    }
  });
});
