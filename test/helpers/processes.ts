import { readdir, readFile } from "node:fs/promises";

// Child processes as Linux shows them in /proc: for tests of what is left running after a kill.

/** The processes whose parent is `pid`, with their command lines (from /proc). */
export async function childrenOf(pid: number): Promise<{ pid: number; command: string }[]> {
  const found: { pid: number; command: string }[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]); // after "(comm) state"
      if (parent === pid) found.push({ pid: Number(entry), command: (await readFile(`/proc/${entry}/cmdline`, "utf8")).replaceAll("\0", " ") });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** Those of `processes` still running (the same pid with the same command line). */
export async function childrenAlive(processes: { pid: number; command: string }[]): Promise<{ pid: number; command: string }[]> {
  const alive: { pid: number; command: string }[] = [];
  for (const p of processes) {
    const command = await readFile(`/proc/${p.pid}/cmdline`, "utf8").catch(() => "");
    if (command.replaceAll("\0", " ") === p.command) alive.push(p);
  }
  return alive;
}

/** Whether a process with this pid is running (a zombie, exited but not yet reaped, counts as gone). */
export async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && stat[stat.lastIndexOf(")") + 2] !== "Z";
}
