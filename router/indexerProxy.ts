// POST /graphql on the router goes to the indexer's /graphql, so a dashboard (or a dapp) needs
// one origin only and the indexer can stay on a private address. The indexer is the gateway's own
// (configured, trusted), but its answer is still capped in size and time.

export type GraphqlAnswer = { status: number; body: Buffer };

const maxAnswerBytes = 8 * 1024 * 1024;
const timeoutMs = 10_000;

export async function forwardGraphql(indexerUrl: string, body: Buffer): Promise<GraphqlAnswer> {
  let response: Response;
  try {
    response = await fetch(new URL("/graphql", indexerUrl), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: new Uint8Array(body),
      redirect: "error",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    return failure(502, `the indexer at ${indexerUrl} is unreachable (${(error as Error).message})`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body ?? []) {
      size += chunk.length;
      if (size > maxAnswerBytes) {
        await response.body?.cancel();
        return failure(502, `the indexer's answer is larger than ${maxAnswerBytes} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    return failure(504, `the indexer did not finish its answer (${(error as Error).message})`);
  }
  return { status: response.status, body: Buffer.concat(chunks, size) };
}

/** A GraphQL-shaped error, so GraphQL clients show the message. */
function failure(status: number, message: string): GraphqlAnswer {
  return { status, body: Buffer.from(JSON.stringify({ errors: [{ message }] })) };
}
