import { benchIndexer } from "./indexer.ts";
import { formatTable, type BenchRow } from "./table.ts";

// `npm run bench`: every benchmark, then one table. Figures, not pass/fail: goals are in the notes.

const rows: BenchRow[] = [];
const log = (line: string) => console.error(`… ${line}`);
rows.push(...(await benchIndexer(log)));
console.log(formatTable(rows));
