import { db } from "ponder:api";
import schema from "ponder:schema";
import { Hono } from "hono";
import { client, graphql } from "ponder";

// GraphQL for gateways and dashboards, SQL over HTTP for @ponder/client live queries (the router's
// provider set). Ponder serves /health, /ready and /metrics itself.
const app = new Hono();
app.use("/sql/*", client({ db, schema }));
app.use("/graphql", graphql({ db, schema }));
export default app;
