// A small SVG line chart: one line per provider over a fixed time window, y from zero to a round
// maximum. A missing value (no latency measured in that second) is stepped over; a gap longer than
// `maxGapMs` (the provider was away, or the page was hidden) breaks the line.

const svgNs = "http://www.w3.org/2000/svg";
const width = 600;
const height = 150;
const maxGapMs = 5_000;

export type Series = { label: string; color: string; points: [number, number | null][] };

/** 1, 2 or 5 times a power of ten, at least `value`. */
function roundUp(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number>): SVGElementTagNameMap[K] {
  const element = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

export function lineChart(title: string, unit: string, series: Series[], windowMs: number, now: number): HTMLElement {
  const from = now - windowMs;
  let max = 0;
  for (const s of series) for (const [t, v] of s.points) if (t >= from && v !== null && v > max) max = v;
  const top = roundUp(max);

  const figure = document.createElement("figure");
  figure.className = "chart";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  const scale = document.createElement("span");
  scale.className = "scale";
  scale.textContent = `max ${top.toLocaleString("en-US")} ${unit}`;
  caption.append(scale);

  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": `${title}, last ${Math.round(windowMs / 60_000)} minutes` });
  for (const fraction of [0.25, 0.5, 0.75]) {
    chart.append(svg("line", { x1: 0, x2: width, y1: height * fraction, y2: height * fraction, class: "grid" }));
  }
  for (const s of series) {
    let d = "";
    let last = -Infinity;
    for (const [t, v] of s.points) {
      if (t < from || v === null) continue;
      const x = ((t - from) / windowMs) * width;
      const y = height - (v / top) * (height - 4) - 2;
      d += `${t - last <= maxGapMs ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)}`;
      last = t;
    }
    if (d === "") continue;
    const line = svg("path", { d, stroke: s.color, class: "line" });
    line.dataset.series = s.label;
    line.append(svg("title", {}));
    line.lastElementChild!.textContent = s.label;
    chart.append(line);
  }

  const axis = document.createElement("div");
  axis.className = "axis";
  axis.innerHTML = `<span>${Math.round(windowMs / 60_000)} min ago</span><span>now</span>`;
  figure.append(caption, chart, axis);
  return figure;
}
