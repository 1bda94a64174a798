import { createServer } from "node:net";

/** A TCP port on 127.0.0.1 that the OS reports free right now (the caller binds it soon after). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The error for a port an indexer was told to listen on and cannot. */
export function indexerPortTaken(host: string, port: number): Error {
  return new Error(`port ${port} on ${host} is taken (by another indexer?): stop what holds it or give another --port`);
}

/** Throws indexerPortTaken when something listens on `port` of `host` already. */
export async function assertPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", (error: NodeJS.ErrnoException) => reject(error.code === "EADDRINUSE" ? indexerPortTaken(host, port) : error));
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/**
 * Runs `start` on a free port, and again on another (three tries in all) when `taken` says the
 * port was taken before `start` bound it (by anything listening on port 0 meanwhile, such as a
 * parallel test's server).
 */
export async function onFreePort<T>(start: (port: number) => Promise<T>, taken: (error: unknown) => boolean): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort());
    } catch (error) {
      if (attempt === 3 || !taken(error)) throw error;
    }
  }
}
