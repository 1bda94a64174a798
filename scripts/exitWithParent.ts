// Preloaded (node --import) into the chain and indexer child processes: when the process that
// started one is gone without stopping it (kill -9, a crash), the child would run on as an orphan,
// holding its port and its data folder. Its parent's pid then changes (to init's or a subreaper's),
// and the child stops itself as a Ctrl-C would stop it (Ponder unlocks its schema on SIGINT).
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, "SIGINT");
}, 1_000).unref();
