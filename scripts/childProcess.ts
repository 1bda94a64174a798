import type { ChildProcess } from "node:child_process";

/**
 * Keeps the last `limit` characters a child printed (for error messages) and hands each line to
 * `onLine`. Returns a function that reads what was kept.
 */
export function collectOutput(child: ChildProcess, onLine?: (line: string) => void, limit = 20_000): () => string {
  let output = "";
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-limit);
    if (onLine) for (const line of text.split("\n")) if (line.trim()) onLine(line);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  return () => output;
}

/** SIGTERM, then SIGKILL if the child is still there after `graceMs`; resolves once it exited. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
