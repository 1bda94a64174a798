// Structured logs: one JSON object per line, {"time","level","msg",...fields}.

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type LogFields = Record<string, unknown>;
export type Logger = {
  debug: (msg: string, fields?: LogFields) => void;
  info: (msg: string, fields?: LogFields) => void;
  warn: (msg: string, fields?: LogFields) => void;
  error: (msg: string, fields?: LogFields) => void;
};

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Every level, the most talkative first. */
export const logLevels = Object.keys(rank) as LogLevel[];

/** Whether a logger set to `threshold` writes lines of `level`. */
export function writesAt(threshold: LogLevel, level: LogLevel): boolean {
  return rank[level] >= rank[threshold];
}

export function createLogger(options: { level?: LogLevel; write?: (line: string) => void; base?: LogFields } = {}): Logger {
  const threshold = options.level ?? "info";
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const base = options.base ?? {};
  const emit = (level: Exclude<LogLevel, "silent">) => (msg: string, fields?: LogFields) => {
    if (!writesAt(threshold, level)) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields }, (_key, value: unknown) =>
      typeof value === "bigint" ? value.toString() : value,
    );
    write(`${line}\n`);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}
