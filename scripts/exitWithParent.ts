// Preloaded (node --import) into the child processes our scripts start (the chain, Ponder, and the
// services `din` runs): when the process that started one is gone without stopping it (kill -9, a
// crash), the child would run on as an orphan, holding its port and its data folder. A small shell
// beside it watches both: once the parent is gone it stops the child as Ctrl-C would (Ponder
// unlocks its schema on SIGINT), and for good if that has not ended it within ten seconds. A shell,
// not a timer in the child: a child whose event loop is stuck (in its own shutdown) runs no timer.
// The parent names itself in DIN_PARENT_PID: it may be gone before this runs.
import { spawn } from "node:child_process";

const parent = Number(process.env.DIN_PARENT_PID) || process.ppid;
delete process.env.DIN_PARENT_PID; // not inherited by this process's own children
const child = process.pid;
// Leaves as soon as the child is gone (its pid is never signalled after that, bar a second's race).
const watch = `
  while kill -0 ${parent} 2>/dev/null; do kill -0 ${child} 2>/dev/null || exit 0; sleep 1; done
  kill -INT ${child} 2>/dev/null || exit 0
  for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1; kill -0 ${child} 2>/dev/null || exit 0; done
  kill -KILL ${child} 2>/dev/null`;
spawn("sh", ["-c", watch], { detached: true, stdio: "ignore" }).unref();
