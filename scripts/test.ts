import { spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

// `npm test`: every test runner in turn, then one summary line `N passed, N failed` over all of
// them (CI reads that line). Exits non-zero when any test failed or a runner broke.

type RunnerResult = { name: string; passed: number; failed: number; exitCode: number };
/** The parts of vitest's JSON report read here (its Jest-compatible format). */
type VitestReport = { numPassedTests: number; numFailedTests: number; testResults: { status: string; assertionResults: { status: string }[] }[] };

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) => `${root}node_modules/.bin/${name}`;

async function run(command: string, args: string[]): Promise<{ exitCode: number; output: string }> {
  return await new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: process.env });
    let output = "";
    const relay = (chunk: Buffer, to: NodeJS.WriteStream) => {
      output += chunk.toString();
      to.write(chunk);
    };
    child.stdout.on("data", (chunk: Buffer) => relay(chunk, process.stdout));
    child.stderr.on("data", (chunk: Buffer) => relay(chunk, process.stderr));
    child.on("close", (code) => resolve({ exitCode: code ?? 1, output }));
  });
}

/** Hardhat's Solidity runner (unit, fuzz and invariant tests), checked against the gas snapshot. */
async function solidityTests(): Promise<RunnerResult> {
  const { exitCode, output } = await run(bin("hardhat"), ["test", "solidity", "--snapshot-check"]);
  // Hardhat prints mocha-style totals: "N passing" and, on failure, "N failing".
  const count = (word: string) => [...output.matchAll(new RegExp(`(\\d+) ${word}`, "g"))].reduce((sum, m) => sum + Number(m[1]), 0);
  return { name: "solidity", passed: count("passing"), failed: Math.max(count("failing"), exitCode !== 0 && count("failing") === 0 ? 1 : 0), exitCode };
}

/** Vitest: the TypeScript tests against real processes. */
async function typescriptTests(): Promise<RunnerResult> {
  const report = `${root}test-results/vitest.json`;
  await rm(report, { force: true });
  const { exitCode } = await run(bin("vitest"), ["run"]);
  try {
    const json = JSON.parse(await readFile(report, "utf8")) as VitestReport;
    // A file that fails outside its tests (a beforeAll that threw) marks the tests it never ran
    // skipped, not failed: each counts as failed here (at least one for the file), so the summary
    // cannot read "0 failed" over a broken file.
    let failed = json.numFailedTests;
    for (const file of json.testResults) {
      if (file.status !== "failed" || file.assertionResults.some((t) => t.status === "failed")) continue;
      failed += Math.max(1, file.assertionResults.filter((t) => t.status === "skipped" || t.status === "pending").length);
    }
    if (exitCode !== 0 && failed === 0) failed = 1;
    return { name: "vitest", passed: json.numPassedTests, failed, exitCode };
  } catch {
    return { name: "vitest", passed: 0, failed: 1, exitCode: exitCode || 1 };
  }
}

// The TypeScript suites need the build (artifacts, the ABIs the indexer is typed with, and the
// dashboard the router serves).
let build = await run(process.execPath, [`${root}node_modules/hardhat/dist/src/cli.js`, "build", "--quiet"]);
for (const step of ["exportAbis.ts", "buildDashboard.ts"]) if (build.exitCode === 0) build = await run(process.execPath, [`${root}scripts/${step}`]);
if (build.exitCode !== 0) {
  console.log("the build failed: no test ran\n0 passed, 1 failed");
  process.exit(1);
}

const results: RunnerResult[] = [];
for (const runner of [solidityTests, typescriptTests]) results.push(await runner());

console.log("");
for (const r of results) console.log(`${r.name.padEnd(9)} ${r.passed} passed, ${r.failed} failed (exit ${r.exitCode})`);
const passed = results.reduce((sum, r) => sum + r.passed, 0);
const failed = results.reduce((sum, r) => sum + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || results.some((r) => r.exitCode !== 0) ? 1 : 0);
