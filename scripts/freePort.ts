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

/** Whether nothing listens on `port` of `host` right now (false: EADDRINUSE; other errors throw). */
export async function portIsFree(host: string, port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", (error: NodeJS.ErrnoException) => (error.code === "EADDRINUSE" ? resolve(false) : reject(error)));
    server.listen(port, host, () => server.close(() => resolve(true)));
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
