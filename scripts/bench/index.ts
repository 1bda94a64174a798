import { benchIndexer } from "./indexer.ts";
import { benchRouter } from "./router.ts";
import { formatTable, type BenchRow } from "./table.ts";

// `npm run bench`: every benchmark, then one table. Figures, not pass/fail: the goals are in the
// notes. The router's part alone: `node scripts/bench/router.ts`.

const log = (line: string) => console.error(`… ${line}`);
const rows: BenchRow[] = [];
rows.push(...(await benchIndexer(log)));
log("router: proxy comparison, failover under a kill, provider choice (about 2 minutes)");
rows.push(...(await benchRouter()));
console.log(formatTable(rows));
