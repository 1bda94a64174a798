import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

// The dashboard's files, read once when the router starts and served from memory at `/`. The page
// and its stylesheet are kept as written; the script is built from router/dashboard/*.ts by
// `npm run build` (scripts/buildDashboard.ts) into router/dashboard/dist/app.js.

export type Asset = { body: Buffer; type: string };

const folder = new URL("./dashboard/", import.meta.url);
export const dashboardBundle = fileURLToPath(new URL("dist/app.js", folder));

/** URL path → asset; an empty map when the script is not built (the router then says so at `/`). */
export function loadDashboardAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dashboardBundle)) return assets;
  const read = (name: string) => readFileSync(new URL(name, folder));
  assets.set("/", { body: read("index.html"), type: "text/html; charset=utf-8" });
  assets.set("/dashboard/style.css", { body: read("style.css"), type: "text/css; charset=utf-8" });
  assets.set("/dashboard/app.js", { body: readFileSync(dashboardBundle), type: "text/javascript; charset=utf-8" });
  return assets;
}
