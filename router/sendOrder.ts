/** Starts a send; calls `done` once, with whether a provider answered it. */
export type OrderedSend = (done: (answered: boolean) => void) => void;

type Line = { sends: OrderedSend[]; inFlight: boolean; draining: boolean; ordered: boolean };

/**
 * A client's transactions go to the providers one after another, in the order they came, across
 * its requests as within a batch: as one node takes them. A wallet sending nonces n, n+1, … in
 * several requests at once (ethers' NonceManager splits a burst into batches) must not have n+1
 * reach a node first (a devnet's automine refuses it "nonce too high", where a direct node took
 * them all: a dapp walkthrough). Each send waits for the one before it to be answered; once one
 * gets no provider's answer (none to ask, a provider hanging) the order is moot, and the sends
 * waiting then go at once, each within its own deadline. Keyed by chain and client.
 */
export class SendOrder {
  private readonly lines = new Map<string, Line>();

  /** Sends waiting behind another of their client's, over all clients. */
  get waiting(): number {
    let count = 0;
    for (const line of this.lines.values()) count += line.sends.length;
    return count;
  }

  run(key: string, send: OrderedSend): void {
    let line = this.lines.get(key);
    if (line === undefined) {
      line = { sends: [], inFlight: false, draining: false, ordered: true };
      this.lines.set(key, line);
    }
    line.sends.push(send);
    this.drain(key, line);
  }

  /** Starts what may go now. A loop, not recursion: sends answered at once (no provider) go on in it (a batch of 1,000 overflowed the stack). */
  private drain(key: string, line: Line): void {
    if (line.draining) return;
    line.draining = true;
    while (!line.inFlight && line.sends.length > 0) {
      const send = line.sends.shift()!;
      if (!line.ordered) {
        send(() => {});
        continue;
      }
      line.inFlight = true;
      let settled = false;
      send((answered) => {
        if (settled) return;
        settled = true;
        line.inFlight = false;
        if (!answered) line.ordered = false;
        this.drain(key, line);
      });
    }
    line.draining = false;
    if (!line.inFlight && line.sends.length === 0) this.lines.delete(key);
  }
}
