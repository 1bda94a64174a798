import { lineChart, type Series } from "./chart.ts";
import {
  readHistory,
  readRegistry,
  readStatus,
  type HistoryPoint,
  type Proposal,
  type Registry,
  type RegistryProvider,
  type RouterProvider,
  type RouterStatus,
  type SlashingCase,
} from "./registry.ts";

// The dashboard: polls the router (/status and /history every second) and the registry (GraphQL
// every two seconds) and redraws. Everything shown that came from the chain (names, URLs, reasons)
// is untrusted text and only ever set with textContent.

const windowMs = 5 * 60_000;
const palette = ["#2f6fde", "#e0692b", "#2a9d5b", "#b6408f", "#a07a12", "#1c9fb0", "#d64545", "#6a5acd", "#6b7d12", "#6b6b6b"];
/** Per chain, each provider's colour: kept while the page is open (by stake order at first sight), so a newcomer does not recolour the charts. */
const colours = new Map<number, Map<string, string>>();
function colourOf(chainId: number, address: string): string {
  let chain = colours.get(chainId);
  if (chain === undefined) colours.set(chainId, (chain = new Map()));
  const key = address.toLowerCase();
  let colour = chain.get(key);
  if (colour === undefined) chain.set(key, (colour = palette[chain.size % palette.length]));
  return colour;
}

const model = {
  status: null as RouterStatus | null,
  statusError: null as string | null,
  statusAt: 0,
  registry: null as Registry | null,
  registryError: null as string | null,
  /** The registry chain's time (unix s) when the registry was read, and the page's clock then (ms). */
  chainTime: 0,
  chainTimeReadAt: 0,
  /** chainId|address → name and the samples of the last window */
  history: new Map<string, { chainId: number; address: string; name: string; points: HistoryPoint[] }>(),
  lastPoint: 0,
  /** Why the charts stopped moving (the router refused /history), and how many polls in a row failed (a busy router asks for one again). */
  historyError: null as string | null,
  historyFailures: 0,
};

// ---- formatting ------------------------------------------------------------------------------

type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { class?: string; title?: string; data?: Record<string, string> } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.class) element.className = props.class;
  if (props.title) element.title = props.title;
  for (const [key, value] of Object.entries(props.data ?? {})) element.dataset[key] = value;
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

const wad = 10n ** 18n;
/** Token wei → "20,000.125 DIN": exact, as the CLI says it (a rounded stake or slash would disagree with it). */
function formatTokens(wei: string | null | undefined): string {
  if (wei === null || wei === undefined) return "—";
  const value = BigInt(wei);
  const rest = value % wad;
  const fraction = rest === 0n ? "" : `.${rest.toString().padStart(18, "0").replace(/0+$/, "")}`;
  return `${(value / wad).toLocaleString("en-US")}${fraction} DIN`;
}

/** A wide table's box, scrolled sideways on a narrow screen: focusable, so a keyboard can scroll it too. */
function scrollRegion(label: string, table: HTMLTableElement): HTMLDivElement {
  const region = h("div", { class: "table-wrap" }, table);
  region.tabIndex = 0;
  region.setAttribute("role", "region");
  region.setAttribute("aria-label", label);
  return region;
}
const percent = (x: number) => `${(x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0)}%`;
const short = (address: string) => `${address.slice(0, 6)}…${address.slice(-4)}`;
/** A registry time on the viewer's clock with its zone, and its date when not today (a case's deadline may be days away). */
function clock(unixSeconds: string | number): string {
  const at = new Date(Number(unixSeconds) * 1000);
  const date = at.toDateString() === new Date().toDateString() ? {} : ({ day: "numeric", month: "short" } as const);
  return at.toLocaleString("en-GB", { ...date, hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
}
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

function registryProvider(address: string): RegistryProvider | undefined {
  return model.registry?.providers.items.find((p) => same(p.address, address));
}
function providerLabel(address: string): HTMLElement {
  const name = registryProvider(address)?.name;
  return h("span", { class: "who", title: address }, name ?? short(address), name ? h("small", {}, ` ${short(address)}`) : null);
}

const stateLabels: Record<string, string> = {
  checking: "checking",
  healthy: "healthy",
  probation: "probation",
  circuit_open: "circuit open",
  half_open: "half open",
  lagging: "lagging",
  wrong_chain: "wrong chain",
  refused: "refused address",
  not_routed: "not routed",
};
const badge = (kind: string, text: string, title?: string) => h("span", { class: "badge", title, data: { kind } }, text);

/** Why a provider is in its state, in words under its badge (a tooltip alone cannot be read on a phone or copied). */
function stateDetail(p: RouterProvider): string | null {
  const last = p.lastFailure ? `last failure ${p.lastFailureSecondsAgo ?? "?"} s ago: ${p.lastFailure}` : null;
  switch (p.state) {
    case "circuit_open":
      return [p.circuitReopensInMs !== null ? `tried again in ${Math.ceil(p.circuitReopensInMs / 1000)} s` : null, last].filter(Boolean).join(" · ");
    case "half_open":
      return ["being tried again", last].filter(Boolean).join(" · ");
    case "lagging":
      return `${p.lagBlocks.toLocaleString("en-US")} blocks behind the median head`;
    case "wrong_chain":
      return p.reportedChainId !== null ? `answers as chain ${p.reportedChainId}` : last;
    case "probation":
      return `${p.probationLeft} more good answers to full share`;
    case "refused":
      return p.lastFailure ?? "its endpoint's address is one this router refuses (loopback, private, link-local…): allowed only in devnet mode";
    default:
      return null;
  }
}

// ---- providers per chain ---------------------------------------------------------------------

type Row = { address: string; name: string; router?: RouterProvider; registry?: RegistryProvider; color: string };

/** The chain's providers: those the router routes over, and those registered for the chain that it does not (jailed, below minimum). */
function chainRows(chainId: number, routed: RouterProvider[]): Row[] {
  const rows = new Map<string, Row>();
  for (const p of routed) rows.set(p.address.toLowerCase(), { address: p.address, name: p.name, router: p, color: "" });
  for (const p of model.registry?.providers.items ?? []) {
    const key = p.address.toLowerCase();
    const row = rows.get(key);
    if (row !== undefined) row.registry = p;
    else if (p.endpoints.items.some((e) => Number(e.chainId) === chainId)) rows.set(key, { address: p.address, name: p.name, registry: p, color: "" });
  }
  const stake = (r: Row) => BigInt(r.registry?.activeStake ?? r.router?.stake ?? "0");
  const sorted = [...rows.values()].sort((a, b) => (stake(b) > stake(a) ? 1 : stake(b) < stake(a) ? -1 : a.address.localeCompare(b.address)));
  for (const r of sorted) r.color = colourOf(chainId, r.address);
  return sorted;
}

function cell(label: string, field: string, ...children: Child[]): HTMLTableCellElement {
  return h("td", { data: { label, field } }, ...children);
}

function providerRow(r: Row): HTMLTableRowElement {
  const p = r.router;
  const state = p?.state ?? "not_routed";
  const parts = p?.parts;
  const share = h("div", { class: "share-bar", title: p ? `recent traffic ${percent(p.trafficShare)}, formula ${percent(p.expectedShare)}` : "" });
  if (p) {
    const fill = h("div", { class: "fill" });
    fill.style.width = percent(Math.min(1, p.trafficShare));
    const mark = h("div", { class: "expected" });
    mark.style.left = percent(Math.min(1, p.expectedShare));
    share.append(fill, mark);
  }
  const swatch = h("span", { class: "swatch" });
  swatch.style.background = r.color;
  const onChain = r.registry?.status ?? "unknown";
  const why = p ? stateDetail(p) : null;
  return h(
    "tr",
    { data: { provider: r.address.toLowerCase(), state } },
    cell("Provider", "name", swatch, h("strong", {}, r.name), h("small", { class: "address", title: r.address }, short(r.address))),
    cell("Stake", "stake", formatTokens(r.registry?.activeStake ?? p?.stake)),
    cell("Unbonding", "unbonding", r.registry && r.registry.unbondingStake !== "0" ? formatTokens(r.registry.unbondingStake) : "—"),
    cell(
      "On chain",
      "status",
      badge(onChain, onChain.replace("_", " ")),
      r.registry && r.registry.openCases > 0 ? badge("case", `${r.registry.openCases} open case${r.registry.openCases > 1 ? "s" : ""}`) : null,
    ),
    cell("State", "state", badge(state, stateLabels[state] ?? state), why ? h("small", { class: "why" }, why) : null),
    cell(
      "Score",
      "score",
      p ? h("strong", {}, p.score.toFixed(2)) : "—",
      parts
        ? h(
            "small",
            { class: "parts", title: "weight = √stake (after the operator cap) · latency · errors · lag · slash · probation" },
            `√stake ${parts.stake.toFixed(0)}${parts.cappedStake > 0 && parts.cappedStake < parts.stake - 0.5 ? ` (capped ${parts.cappedStake.toFixed(0)})` : ""} · latency ${parts.latency.toFixed(2)} · errors ${parts.errors.toFixed(2)} · lag ${parts.lag.toFixed(2)} · slash ${parts.slash.toFixed(2)}${parts.probation < 1 ? ` · probation ${parts.probation}` : ""}`,
          )
        : null,
    ),
    cell("Traffic share", "share", share, p ? h("small", {}, `${percent(p.trafficShare)} · formula ${percent(p.expectedShare)}`) : "—"),
    cell("Latency", "latency", p?.latencyMs != null && p.state !== "circuit_open" ? `${p.latencyMs.toFixed(p.latencyMs < 10 ? 1 : 0)} ms` : "—"),
    cell("Served", "served", p ? p.served.toLocaleString("en-US") : "—"),
  );
}

function charts(chainId: number, rows: Row[]): HTMLElement {
  const now = model.lastPoint || Date.now();
  const perProvider = rows.map((r) => ({ row: r, points: model.history.get(`${chainId}|${r.address.toLowerCase()}`)?.points ?? [] }));
  const series = (pick: (p: HistoryPoint) => number | null): Series[] =>
    perProvider.map(({ row, points }) => ({ label: row.name, color: row.color, points: points.map((p) => [p[0], pick(p)] as [number, number | null]) }));
  const legend = h("ul", { class: "legend" });
  for (const r of rows) {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = r.color;
    legend.append(h("li", {}, swatch, r.name));
  }
  return h(
    "div",
    { class: "charts" },
    lineChart("Requests per second", "req/s", series((p) => p[1]), windowMs, now),
    lineChart("Latency (mean of successful attempts)", "ms", series((p) => p[2]), windowMs, now),
    legend,
  );
}

function chainSection(chainId: number, routed: RouterStatus["chains"][number] | undefined): HTMLElement {
  const rows = chainRows(chainId, routed?.providers ?? []);
  const head = h(
    "thead",
    {},
    h("tr", {}, ...["Provider", "Stake", "Unbonding", "On chain", "State", "Score", "Traffic share", "Latency", "Served"].map((t) => h("th", {}, t))),
  );
  const unrouted = rows.filter((r) => r.router === undefined).length;
  const facts = routed
    ? `${routed.eligibleProviders} of ${routed.providers.length} routed providers receive traffic${unrouted > 0 ? ` · ${unrouted} registered, not routed` : ""} · median head ${routed.medianHead ?? "unknown"}`
    : "the router has no providers for this chain";
  return h(
    "section",
    { class: "panel chain", data: { chain: String(chainId) } },
    h("h2", {}, `Chain ${chainId}`, h("small", {}, ` · ${facts}`)),
    h("p", { class: "rpc" }, "JSON-RPC for dapps and wallets: ", h("code", {}, `${location.origin}/rpc/${chainId}`)),
    scrollRegion(`Providers of chain ${chainId}`, h("table", { class: "providers" }, head, h("tbody", {}, ...rows.map(providerRow)))),
    charts(chainId, rows),
  );
}

function renderChains(): void {
  const target = document.getElementById("chains")!;
  const ids = new Set<number>(model.status?.chains.map((c) => c.chainId) ?? []);
  for (const p of model.registry?.providers.items ?? []) for (const e of p.endpoints.items) ids.add(Number(e.chainId));
  if (ids.size === 0) return;
  target.replaceChildren(...[...ids].sort((a, b) => a - b).map((id) => chainSection(id, model.status?.chains.find((c) => c.chainId === id))));
}

// ---- cases, proposals, votes -----------------------------------------------------------------

/** The registry chain's clock now (governance deadlines are in chain time, which a devnet moves at will). */
function chainNow(): number {
  return model.chainTime > 0 ? model.chainTime + (Date.now() - model.chainTimeReadAt) / 1000 : Date.now() / 1000;
}

function proposalSummary(p: Proposal, c: SlashingCase): HTMLElement {
  const now = chainNow();
  let phase: string;
  if (p.state === "executed") phase = "executed";
  else if (p.state === "canceled") phase = "canceled";
  else if (p.state === "queued") {
    // The case's deadline passes first: its execution would fail (the case can only be expired).
    const late = c.status === "open" && p.eta !== null && Number(p.eta) > Number(c.expiresAt);
    phase = `queued, executable from ${p.eta ? clock(p.eta) : "—"}${late ? ", after the case's deadline: it cannot run" : ""}`;
  }
  else if (now < Number(p.voteStart)) phase = `voting opens ${clock(p.voteStart)}`;
  else if (now <= Number(p.voteEnd)) phase = `voting until ${clock(p.voteEnd)}`;
  else phase = "vote closed";
  const resolves = p.action === "uphold_case" ? "uphold (slash)" : p.action === "reject_case" ? "reject" : "other";
  const action = p.jails === null ? resolves : `${resolves} and jail ${short(p.jails)}`;
  const support = ["against", "for", "abstain"];
  return h(
    "div",
    { class: "proposal", data: { proposal: p.id } },
    h("div", {}, h("strong", {}, `Proposal ${short(p.id)}`), ` · ${action} · `, badge(p.state, phase)),
    h("div", { class: "muted" }, "id ", h("code", { class: "proposal-id" }, p.id), phase.startsWith("voting until") ? ` · vote with din gov vote --proposal ${p.id} --support for|against|abstain` : null),
    h("div", { class: "tally" }, `for ${formatTokens(p.forVotes)} · against ${formatTokens(p.againstVotes)} · abstain ${formatTokens(p.abstainVotes)}`),
    p.votes.items.length > 0
      ? h(
          "ul",
          { class: "votes" },
          ...p.votes.items.map((v) => h("li", {}, h("span", { title: v.voter }, short(v.voter)), ` voted ${support[v.support] ?? "?"} with ${formatTokens(v.weight)}`, v.reason ? h("q", {}, v.reason) : null)),
        )
      : h("div", { class: "muted" }, "no votes yet"),
  );
}

function caseCard(c: SlashingCase, proposals: Proposal[]): HTMLElement {
  // Past its deadline, governance can no longer resolve it: anyone may expire it (its bond goes back).
  const lapsed = c.status === "open" && chainNow() > Number(c.expiresAt);
  const facts =
    c.status === "open"
      ? `asks ${formatTokens(c.amount)} · bond ${formatTokens(c.bond)} · opened ${clock(c.openedAt)} · ${lapsed ? `past its deadline ${clock(c.expiresAt)}: anyone may expire it (din case expire --case ${c.id})` : `expires ${clock(c.expiresAt)}`}`
      : `asked ${formatTokens(c.amount)} · ${c.slashed !== null ? `slashed ${formatTokens(c.slashed)} · ` : ""}opened ${clock(c.openedAt)} · closed ${c.resolvedAt ? clock(c.resolvedAt) : "—"}`;
  return h(
    "article",
    { class: "case", data: { case: c.id, status: c.status } },
    h("header", {}, h("strong", {}, `Case #${c.id}`), " against ", providerLabel(c.provider), " ", badge(c.status, lapsed ? "open, past its deadline" : c.status)),
    h("div", { class: "muted" }, facts, " · watcher ", h("span", { title: c.watcher }, short(c.watcher))),
    ...(proposals.length > 0 ? proposals.map((p) => proposalSummary(p, c)) : [h("div", { class: "muted" }, "no proposal yet")]),
  );
}

function renderRegistry(): void {
  const registry = model.registry;
  if (registry === null) {
    if (model.registryError === null) return; // still loading
    const why = `The registry cannot be read (${model.registryError}); retrying.`;
    for (const id of ["cases", "stake-events"]) document.getElementById(id)!.replaceChildren(h("p", { class: "empty" }, why));
    return;
  }
  const cases = registry.slashingCases.items;
  document.getElementById("cases")!.replaceChildren(
    ...(cases.length === 0
      ? [h("p", { class: "empty" }, "No slashing cases. Watchers open one with `din case open`.")]
      : cases.map((c) => caseCard(c, registry.proposals.items.filter((p) => p.caseId === c.id)))),
  );
  const kinds: Record<string, string> = { stake: "staked", unbond: "unbond requested", withdraw: "withdrew", slash: "slashed", deregister: "deregistered" };
  const events = registry.stakeEvents.items;
  document.getElementById("stake-events")!.replaceChildren(
    events.length === 0
      ? h("p", { class: "empty" }, "No stake events yet.")
      : scrollRegion(
          "Stake events",
          h(
            "table",
            { class: "events" },
            h("thead", {}, h("tr", {}, ...["Time", "Provider", "Event", "Amount", "Active after", "Unbonding after"].map((t) => h("th", {}, t)))),
            h(
              "tbody",
              {},
              ...events.map((e) =>
                h(
                  "tr",
                  { data: { kind: e.kind } },
                  cell("Time", "time", clock(e.timestamp)),
                  cell("Provider", "provider", providerLabel(e.provider)),
                  cell("Event", "kind", kinds[e.kind] ?? e.kind, e.releaseAt ? h("small", {}, ` (free at ${clock(e.releaseAt)})`) : null),
                  cell("Amount", "amount", formatTokens(e.amount)),
                  cell("Active after", "active", formatTokens(e.activeStake)),
                  cell("Unbonding after", "unbonding", formatTokens(e.unbondingStake)),
                ),
              ),
            ),
          ),
        ),
  );
}

// ---- connection line and notices -------------------------------------------------------------

function renderConnection(): void {
  const line = document.getElementById("connection")!;
  const set = model.status?.providerSet;
  let state: string;
  let text: string;
  if (model.statusError !== null) {
    const from = model.statusAt > 0 ? `; the providers below are as it last answered, at ${new Date(model.statusAt).toLocaleTimeString("en-GB")}` : "";
    [state, text] = ["down", `router unreachable (${model.statusError}); retrying${from}`];
  } else if (set && set.state !== "live" && set.state !== "static") {
    const source = set.servingFrom === "snapshot" ? "the set it saved to disk" : set.servingFrom === "none" ? "no providers yet" : "the last set the indexer gave";
    // When the indexer last gave the set (not when the set last changed, maybe long before); a snapshot's: when it was loaded.
    const given = set.confirmedAt ?? set.lastUpdateAt;
    const at = given ? ` (from ${new Date(given).toLocaleTimeString("en-GB")})` : "";
    [state, text] = ["degraded", `indexer ${set.state}: the router routes on ${source}${at}`];
  }
  // Two clocks: the page's for when it last heard from the router, the chain's for every registry time below.
  else [state, text] = ["live", `live · updated ${new Date(model.statusAt).toLocaleTimeString("en-GB")}${model.chainTime > 0 ? ` · chain clock ${clock(Math.floor(chainNow()))} (registry times below)` : ""}`];
  if (selectionHeld()) text += " · paused while text is selected";
  line.dataset.state = state;
  line.textContent = text;
  document.body.dataset.stale = String(model.statusError !== null);
  const minStake = model.registry?.parameters.items.find((p) => p.name === "minStake");
  const notices: Child[] = [];
  if (model.registryError !== null) notices.push(h("p", { class: "notice" }, `Registry unavailable: ${model.registryError}`));
  if (model.historyFailures >= 3) notices.push(h("p", { class: "notice" }, `Charts not updating: ${model.historyError}`));
  if (model.status?.devnet) notices.push(h("p", { class: "note" }, "Devnet mode: loopback provider endpoints are allowed."));
  if (minStake) notices.push(h("p", { class: "note" }, `Minimum stake ${formatTokens(minStake.value)}.`));
  // Rewritten only when they change: a reader may be copying an error's text.
  const box = document.getElementById("notices")!;
  const shown = notices.filter((n): n is HTMLElement => n instanceof HTMLElement);
  if (shown.map((n) => n.outerHTML).join("") !== box.innerHTML) box.replaceChildren(...shown);
}

/** Redrawn parts in which a reader may select text (to copy an address or an id): redrawing would drop it. */
const redrawn = ["chains", "cases", "stake-events"];
/** A selection pauses redraws this long at most: a screen left with one must not freeze for good. */
const pauseMs = 30_000;
let selectedSince = 0;

/** Whether the reader holds a selection in a redrawn part (for up to pauseMs). */
function selectionHeld(): boolean {
  const selection = document.getSelection();
  const held = selection !== null && !selection.isCollapsed && selection.rangeCount > 0 && redrawn.some((id) => selection.getRangeAt(0).intersectsNode(document.getElementById(id)!));
  if (!held) selectedSince = 0;
  else if (selectedSince === 0) selectedSince = Date.now();
  return held && Date.now() - selectedSince < pauseMs;
}

function render(): void {
  renderConnection();
  if (selectionHeld()) return;
  keepingRegions(() => {
    renderChains();
    renderRegistry();
  });
}

/** Runs a redraw keeping each table region's sideways scroll and the keyboard's focus on one (found again by its label). */
function keepingRegions(redraw: () => void): void {
  const regions = () => [...document.querySelectorAll<HTMLElement>(".table-wrap[aria-label]")];
  const scrolled = new Map(regions().map((region) => [region.getAttribute("aria-label"), region.scrollLeft]));
  const active = document.activeElement;
  const focused = active instanceof HTMLElement && active.matches(".table-wrap") ? active.getAttribute("aria-label") : null;
  redraw();
  for (const region of regions()) {
    const label = region.getAttribute("aria-label");
    region.scrollLeft = scrolled.get(label) ?? 0;
    if (label === focused) region.focus({ preventScroll: true });
  }
}

// ---- polling ---------------------------------------------------------------------------------

async function pollRouter(): Promise<void> {
  try {
    // The router may ask a reader to come back for /history (busy building pages): the charts then
    // catch up at the next poll, from the last point they have.
    const [status, history] = await Promise.all([
      readStatus(),
      readHistory(model.lastPoint).then(
        (answer) => ((model.historyFailures = 0), answer),
        (error: Error) => ((model.historyError = error.message), model.historyFailures++, { chains: [] }),
      ),
    ]);
    model.status = status;
    model.statusError = null;
    model.statusAt = Date.now();
    for (const chain of history.chains) {
      for (const p of chain.providers) {
        const key = `${chain.chainId}|${p.address.toLowerCase()}`;
        let series = model.history.get(key);
        if (series === undefined) model.history.set(key, (series = { chainId: chain.chainId, address: p.address, name: p.name, points: [] }));
        series.name = p.name;
        series.points.push(...p.points);
        for (const point of p.points) if (point[0] > model.lastPoint) model.lastPoint = point[0];
      }
    }
    for (const series of model.history.values()) {
      const from = model.lastPoint - windowMs;
      while (series.points.length > 0 && series.points[0][0] < from) series.points.shift();
    }
  } catch (error) {
    model.statusError = (error as Error).message;
  }
  render();
}

async function pollRegistry(): Promise<void> {
  try {
    model.registry = await readRegistry();
    model.registryError = null;
    const times = Object.values(model.registry._meta.status).map((c) => c.block.timestamp);
    if (times.length > 0) [model.chainTime, model.chainTimeReadAt] = [Math.max(...times), Date.now()];
  } catch (error) {
    model.registryError = (error as Error).message;
  }
  render();
}

/** Runs `poll` now and then `everyMs` after each run ends, skipping while the tab is hidden. */
function every(everyMs: number, poll: () => Promise<void>): void {
  const run = async () => {
    try {
      if (!document.hidden) await poll();
    } finally {
      setTimeout(run, everyMs); // a failed redraw must not stop the updates
    }
  };
  void run();
}

every(1_000, pollRouter);
every(2_000, pollRegistry);
