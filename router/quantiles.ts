/**
 * A sliding window of the last `size` latencies of a chain, with a quantile recomputed every
 * `every` samples (a copy and a sort of `size` numbers), so reading it on the hot path is free.
 */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private readonly scratch: Float64Array;
  private count = 0;
  private next = 0;
  private sinceCompute = 0;
  private cached = Number.NaN;
  private readonly quantile: number;
  private readonly every: number;
  private readonly minSamples: number;

  constructor(quantile: number, size = 256, every = 128, minSamples = 32) {
    this.samples = new Float64Array(size);
    this.scratch = new Float64Array(size);
    this.quantile = quantile;
    this.every = every;
    this.minSamples = minSamples;
  }

  add(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    if (this.count < this.samples.length) this.count++;
    if ((++this.sinceCompute >= this.every || Number.isNaN(this.cached)) && this.count >= this.minSamples) this.compute();
  }

  /** The quantile of the window; NaN until `minSamples` samples arrived. */
  value(): number {
    return this.cached;
  }

  private compute(): void {
    this.sinceCompute = 0;
    const view = this.scratch.subarray(0, this.count);
    view.set(this.samples.subarray(0, this.count));
    view.sort();
    this.cached = view[Math.min(this.count - 1, Math.floor(this.quantile * this.count))];
  }
}
