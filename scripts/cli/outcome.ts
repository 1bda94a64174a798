/** What a command did: a sentence or a few lines for people, an object for `--json`. */
export type Outcome = { message: string; data: Record<string, unknown> };

export function print(outcome: Outcome, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(outcome.data, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value), 2));
  } else {
    console.log(outcome.message);
  }
}
