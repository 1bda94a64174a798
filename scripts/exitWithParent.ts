// Preloaded (node --import) into the child processes our scripts start (the chain, Ponder, and the
// services `din` runs): when the process that started one is gone without stopping it (kill -9, a
// crash), the child would run on as an orphan, holding its port and its data folder. Its parent's
// pid then changes (to init's or a subreaper's), and the child stops itself as Ctrl-C would (Ponder
// unlocks its schema on SIGINT), or for good if that has not ended it within ten seconds.
// The parent names itself in DIN_PARENT_PID: it may be gone before this runs.
const parent = Number(process.env.DIN_PARENT_PID) || process.ppid;
delete process.env.DIN_PARENT_PID; // not inherited by this process's own children
let orphanedAt = 0;
const check = () => {
  if (process.ppid === parent) return;
  if (orphanedAt === 0) {
    orphanedAt = Date.now();
    process.kill(process.pid, "SIGINT");
  } else if (Date.now() - orphanedAt > 10_000) process.kill(process.pid, "SIGKILL");
};
check();
setInterval(check, 1_000).unref();
