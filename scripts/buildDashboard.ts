import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dashboardBundle } from "../router/dashboardAssets.ts";

// Bundles the dashboard's TypeScript (router/dashboard/app.ts and what it imports) into the one
// script the router serves. Run by `npm run build`, `npm test` and `npm start` (when missing).

const entry = fileURLToPath(new URL("../router/dashboard/app.ts", import.meta.url));
await build({ entryPoints: [entry], outfile: dashboardBundle, bundle: true, format: "esm", target: "es2022", minify: false, logLevel: "warning" });
console.log(`wrote ${dashboardBundle}`);
