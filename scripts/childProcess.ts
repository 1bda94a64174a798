import type { ChildProcess } from "node:child_process";

/** The Node flags and environment that make a child process stop itself once this one is gone (see exitWithParent.ts). */
export const exitWithParent = {
  flags: ["--import", new URL("./exitWithParent.ts", import.meta.url).href],
  env: (env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv => ({ ...env, DIN_PARENT_PID: String(process.pid) }),
};

/**
 * Keeps the last `limit` characters a child printed (for error messages) and hands each line to
 * `onLine`. Returns a function that reads what was kept.
 */
export function collectOutput(child: ChildProcess, onLine?: (line: string) => void, limit = 20_000): () => string {
  let output = "";
  // Each stream's unfinished line: a chunk may end anywhere, a line is passed on whole.
  const collector = () => {
    let rest = "";
    return (chunk: Buffer) => {
      const text = chunk.toString();
      output = (output + text).slice(-limit);
      if (!onLine) return;
      const lines = (rest + text).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) onLine(line);
    };
  };
  child.stdout?.on("data", collector());
  child.stderr?.on("data", collector());
  return () => output;
}

/** `signal` (SIGTERM), then SIGKILL if the child is still there after `graceMs`; resolves once it exited. */
export async function stopChild(child: ChildProcess, graceMs: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
