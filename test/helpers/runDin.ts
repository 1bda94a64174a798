import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const dinScript = fileURLToPath(new URL("../../scripts/din.ts", import.meta.url));

export type DinResult = { code: number; stdout: string; stderr: string };

/** Runs `din …` as a user would, in `cwd` (where .devnet/devnet.json is looked up). */
export async function runDin(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<DinResult> {
  return await new Promise((resolve) => {
    execFile(
      process.execPath,
      [dinScript, ...args],
      { cwd: options.cwd, env: { ...process.env, DIN_PRIVATE_KEY: "", ...options.env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
