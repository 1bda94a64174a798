/** One benchmark figure. */
export type BenchRow = { name: string; value: number; unit: string; note: string };

/** The positive whole number after `name` on the command line, undefined without the flag; exits 2 on another value. */
export function countFlag(name: string): number | undefined {
  const at = process.argv.indexOf(name);
  if (at < 0) return undefined;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} takes a positive whole number (got ${process.argv[at + 1] ?? "nothing"})`);
    process.exit(2);
  }
  return value;
}

/** A plain-text table, one row a figure. */
export function formatTable(rows: readonly BenchRow[]): string {
  const value = (r: BenchRow) => (Math.abs(r.value) >= 100 ? r.value.toFixed(0) : r.value.toFixed(3));
  const widths = [Math.max(...rows.map((r) => r.name.length), 6), Math.max(...rows.map((r) => value(r).length), 5), Math.max(...rows.map((r) => r.unit.length), 4)];
  const line = (cells: string[]) => `| ${cells[0].padEnd(widths[0])} | ${cells[1].padStart(widths[1])} | ${cells[2].padEnd(widths[2])} | ${cells[3]}`;
  return [line(["figure", "value", "unit", "note"]), `|${"-".repeat(widths[0] + 2)}|${"-".repeat(widths[1] + 2)}|${"-".repeat(widths[2] + 2)}|------`, ...rows.map((r) => line([r.name, value(r), r.unit, r.note]))].join("\n");
}
