// aliasstat's live page. Everything comes from this daemon's JSON API;
// nothing is fetched from anywhere else (the Content-Security-Policy
// forbids it). Charts are plain SVG built here: a polyline per series is
// all a sparkline or a rate chart needs.
"use strict";

const REFRESH_MS = 2000;
const TIMEOUT_MS = 3000;
const SVG = "http://www.w3.org/2000/svg";

const view = {
  sort: "total", order: "desc", filter: "", offset: 0, limit: 50,
  selected: null, // the address whose detail is open
  range: "1h", // of the long-range chart: 1h or 1d
  historyAt: null, historyStep: 0, // when the long range was read, and its point size
};
let lastPage = null;
let lostSince = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.setAttribute("class", v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c === null || c === undefined ? "" : c);
  return e;
}

// A missing endpoint (404: this daemon does not serve it yet) is null, not an error.
async function getJSON(path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    const r = await fetch(path, { signal: ctl.signal, cache: "no-store", credentials: "same-origin" });
    if (r.status === 404) return null;
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${(await r.text()).trim()}`);
    return await r.json();
  } finally {
    clearTimeout(timer);
  }
}

// --- formatting -----------------------------------------------------------

function si(value, unit) {
  const steps = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, prefix] of steps) {
    if (Math.abs(value) >= size) return `${(value / size).toPrecision(3)} ${prefix}${unit}`;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`;
}
const bits = (v) => (v === undefined ? "–" : si(v, "bit/s"));
const packets = (v) => (v === undefined ? "–" : si(v, "pkt/s"));

function ago(unix, now) {
  if (unix === null || unix === undefined) return "never";
  const s = Math.max(0, Math.round(now - unix));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// --- charts ----------------------------------------------------------------

// One polyline per series and run of known values (null is a gap), all on
// the same scale; the newest point at the right.
function chart(series, width, height, depth, withAxis) {
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: withAxis ? "big" : "spark" });
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const pad = withAxis ? 14 : 1;
  for (const s of series) {
    const n = s.values.length;
    const runs = [[]];
    s.values.forEach((v, i) => {
      if (v === null) { runs.push([]); return; }
      const x = width - ((n - 1 - i) / Math.max(1, depth - 1)) * width;
      const y = height - pad - (v / max) * (height - 2 * pad);
      runs[runs.length - 1].push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    for (const pts of runs.filter((r) => r.length > 0)) {
      if (pts.length === 1) pts.unshift(`${Math.max(0, Number(pts[0].split(",")[0]) - 2)},${pts[0].split(",")[1]}`);
      svg.append(el("svg:polyline", { points: pts.join(" "), class: s.class }));
    }
  }
  if (withAxis) {
    svg.append(el("svg:line", { x1: 0, y1: height - pad, x2: width, y2: height - pad, class: "axis" }));
    svg.append(el("svg:text", { x: 2, y: 10 }, series[0].format(max)));
  }
  return svg;
}

// --- header ----------------------------------------------------------------

function showStatus(status, page) {
  $("host").textContent = status.host;
  $("version").textContent = `v${status.version}`;
  document.title = `aliasstat · ${status.host}`;
  const list = $("attachments");
  list.replaceChildren(...status.attachments.map((a) =>
    el("li", { class: a.attached ? "attached" : "detached" }, `${a.interface} ${a.hook} ${a.direction}${a.attached ? "" : " (detached)"}`)));
  const warnings = status.attachments.filter((a) => !a.attached)
    .map((a) => `The ${a.hook} ${a.direction} program is not attached to ${a.interface}: its traffic is not counted.`);
  if (page && page.map.capacity > 0 && page.map.entries >= 0.9 * page.map.capacity) {
    warnings.push(`The address map is ${Math.round(100 * page.map.entries / page.map.capacity)}% full (${page.map.entries} of ${page.map.capacity}); new addresses go uncounted when it is full. Raise --map-capacity.`);
  }
  $("warnings").replaceChildren(...warnings.map((w) => el("li", {}, w)));
}

// --- table -----------------------------------------------------------------

function query(extra) {
  const p = new URLSearchParams({ sort: view.sort, order: view.order, offset: view.offset, limit: view.limit });
  if (view.filter) p.set("filter", view.filter);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return `/api/v1/rates?${p}`;
}

function markOf(row) {
  if (row.attention === "undocumented") return ["!", "undocumented address with traffic"];
  if (row.attention === "not_here") return ["!", "traffic for an address this host does not hold"];
  return ["", ""];
}

// "off" says the daemon does not track peers (--peers off), where 0 would claim nobody talked.
function peersCell(row, page) {
  if (!page.peer_tracking) return el("td", { class: "num peers dim", title: "peer tracking is off (aliasstat run --peers off)" }, "off");
  return el("td", { class: "num peers" }, typeof row.peers === "number" ? String(row.peers) : "–");
}

function rowOf(row, page) {
  const r = row.rates;
  const [mark, why] = markOf(row);
  // data-points: how many intervals the sparkline spans, for scripts and tests.
  const tr = el("tr", { "data-address": row.address, "data-points": row.history.rx_bits.length, class: [row.attention ? "attention" : "", row.address === view.selected ? "selected" : ""].join(" ").trim() },
    el("td", { class: "mark", title: why }, mark),
    el("td", { class: "address" }, row.address),
    el("td", { class: "interface" }, row.interface ?? "–"),
    el("td", { class: "label" }, row.label ?? "–"),
    el("td", { class: "alias" }, row.alias ?? "–"),
    el("td", { class: "owner" }, row.owner || "–"),
    el("td", { class: `state ${row.state}` }, row.state),
    el("td", { class: "num rx-bits" }, bits(r?.rx.bits)),
    el("td", { class: "num rx-packets" }, packets(r?.rx.packets)),
    el("td", { class: "num tx-bits" }, bits(r?.tx.bits)),
    el("td", { class: "num tx-packets" }, packets(r?.tx.packets)),
    el("td", { class: "last" }, ago(row.last_traffic, page.read_at)),
    peersCell(row, page),
    el("td", { class: "spark" }, chart([
      { values: row.history.rx_bits, class: "rx" },
      { values: row.history.tx_bits, class: "tx" },
    ], 120, 22, page.depth, false)));
  tr.addEventListener("click", () => openDetail(row.address));
  return tr;
}

function showPage(page) {
  $("rows").replaceChildren(...page.rows.map((row) => rowOf(row, page)));
  const first = page.matched === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.rows.length;
  const filtered = page.matched === page.total ? "" : ` (${page.total} in all)`;
  $("count").textContent = `${first}–${last} of ${page.matched} addresses${filtered}`;
  $("prev").disabled = page.offset === 0;
  $("next").disabled = last >= page.matched;
  const empty = $("empty");
  empty.hidden = page.rows.length > 0;
  empty.textContent = page.read_at === null ? "Waiting for the daemon's first reading…" : "No address matches the filter.";
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.classList.toggle("sorted", th.dataset.sort === page.sort);
    th.classList.toggle("asc", th.dataset.sort === page.sort && page.order === "asc");
    th.classList.toggle("desc", th.dataset.sort === page.sort && page.order === "desc");
  }
}

// --- detail ----------------------------------------------------------------

function fact(list, name, value) {
  if (value === null || value === undefined || value === "") return;
  list.append(el("dt", {}, name), el("dd", {}, String(value)));
}

// An endpoint another part of the daemon serves once built; its absence is said, not hidden.
async function optional(target, path, render, what) {
  try {
    const data = await getJSON(path);
    if (data === null) target.replaceChildren(el("p", { class: "dim" }, `${what} not served by this daemon (${path.split("?")[0]} answered 404).`));
    else target.replaceChildren(render(data));
  } catch (e) {
    target.replaceChildren(el("p", { class: "dim" }, `${what}: ${e.message}`));
  }
}

// `/api/v1/peers` answers an array of one object per local address,
// `/api/v1/services` the same array under "addresses".
function forAddress(data, address) {
  const list = Array.isArray(data) ? data : (data.addresses || [data]);
  return list.find((o) => o.address === address) || null;
}

function listTable(items, columns) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...columns.map(([name]) => el("th", {}, name)))),
    el("tbody", {}, ...items.map((it) => el("tr", {}, ...columns.map(([, f]) => el("td", {}, f(it)))))));
}

function peersOf(address) {
  return (data) => {
    const entry = forAddress(data, address);
    if (!entry || !entry.peers || entry.peers.length === 0) return el("p", { class: "dim" }, "No peers recorded.");
    return listTable(entry.peers, [["peer", (p) => p.peer], ["rx packets", (p) => p.rx_packets], ["rx bytes", (p) => p.rx_bytes],
      ["tx packets", (p) => p.tx_packets], ["tx bytes", (p) => p.tx_bytes], ["last seen", (p) => p.last_seen ?? ""]]);
  };
}

function servicesOf(address) {
  return (data) => {
    const entry = forAddress(data, address);
    if (!entry || !entry.services || entry.services.length === 0) return el("p", { class: "dim" }, "No services recorded.");
    return listTable(entry.services, [["unit", (s) => s.unit ?? s.cgroup], ["processes", (s) => (s.processes || []).join(", ")],
      ["rx packets", (s) => s.rx_packets], ["rx bytes", (s) => s.rx_bytes], ["tx packets", (s) => s.tx_packets], ["tx bytes", (s) => s.tx_bytes]]);
  };
}

// `/api/v1/history` answers one series per direction, null where the
// store has no interval. data-points: the points with data, for tests.
function longRange(data) {
  view.historyAt = Date.now();
  view.historyStep = data.step_seconds;
  const known = data.rx_bits.filter((v) => v !== null).length;
  const div = el("div", { class: "chart", "data-points": known });
  const from = new Date(data.from * 1000).toLocaleString();
  div.append(el("p", { class: "dim" }, known === 0
    ? "No stored history in this range yet."
    : `From ${from}, one point per ${data.step_seconds} s; gaps are times the daemon recorded nothing.`));
  if (known > 0) {
    div.append(chart([
      { values: data.rx_bits, class: "rx", format: bits },
      { values: data.tx_bits, class: "tx" },
    ], 800, 160, data.points, true));
  }
  return div;
}

function loadLongRange(address) {
  const path = `/api/v1/history?address=${encodeURIComponent(address)}&range=${view.range}`;
  for (const b of document.querySelectorAll("button[data-range]")) b.classList.toggle("chosen", b.dataset.range === view.range);
  return optional($("detail-history"), path, longRange, "Long-range history is");
}

function showDetail(row, page) {
  $("detail-title").textContent = row.alias ? `${row.alias} (${row.address})` : row.address;
  const facts = $("detail-facts");
  facts.replaceChildren();
  fact(facts, "state", row.state);
  fact(facts, "owner", row.owner);
  fact(facts, "purpose", row.purpose);
  fact(facts, "interface", row.interface);
  fact(facts, "label", row.label);
  fact(facts, "prefix", row.prefix_len === null ? null : `/${row.prefix_len}`);
  fact(facts, "scope", row.scope);
  fact(facts, "flags", row.flags.join(", "));
  fact(facts, "rx", row.rates ? `${bits(row.rates.rx.bits)}, ${packets(row.rates.rx.packets)}` : null);
  fact(facts, "tx", row.rates ? `${bits(row.rates.tx.bits)}, ${packets(row.rates.tx.packets)}` : null);
  fact(facts, "last traffic", ago(row.last_traffic, page.read_at));
  $("detail-bits").replaceChildren(chart([
    { values: row.history.rx_bits, class: "rx", format: bits },
    { values: row.history.tx_bits, class: "tx" },
  ], 800, 160, page.depth, true));
  $("detail-packets").replaceChildren(chart([
    { values: row.history.rx_packets, class: "rx", format: packets },
    { values: row.history.tx_packets, class: "tx" },
  ], 800, 160, page.depth, true));
  $("detail-seen").tBodies[0].replaceChildren(...row.seen_on.map((s) => el("tr", {},
    el("td", {}, s.interface), el("td", { class: "num" }, s.rx.packets), el("td", { class: "num" }, s.rx.bytes),
    el("td", { class: "num" }, s.tx.packets), el("td", { class: "num" }, s.tx.bytes))));
}

async function refreshDetail(loadOptional) {
  const address = view.selected;
  if (address === null) return;
  const page = await getJSON(query({ address, offset: 0, limit: 1 }));
  if (view.selected !== address || page === null) return;
  const row = page.rows[0];
  if (!row) {
    $("detail-title").textContent = `${address}: no longer known to the daemon`;
    return;
  }
  showDetail(row, page);
  // The long range moves by one point per step: read again once a step has passed.
  if (!loadOptional && view.historyAt !== null && Date.now() - view.historyAt >= 1000 * view.historyStep) {
    await loadLongRange(address);
  }
  if (loadOptional) {
    const a = encodeURIComponent(address);
    await Promise.all([
      loadLongRange(address),
      optional($("detail-peers"), `/api/v1/peers?address=${a}`, peersOf(address), "Peers are"),
      optional($("detail-services"), `/api/v1/services?address=${a}`, servicesOf(address), "Services are"),
    ]);
  }
}

function openDetail(address) {
  view.selected = address;
  view.historyAt = null;
  $("detail").hidden = false;
  for (const tr of $("rows").children) tr.classList.toggle("selected", tr.dataset.address === address);
  for (const id of ["detail-history", "detail-peers", "detail-services"]) $(id).replaceChildren(el("p", { class: "dim" }, "loading…"));
  refreshDetail(true).catch(lost);
}

// --- the loop ----------------------------------------------------------------

function lost(e) {
  if (lostSince === null) lostSince = new Date();
  const banner = $("connection");
  banner.hidden = false;
  banner.textContent = `Lost contact with the daemon since ${lostSince.toLocaleTimeString()} (${e.message || e}). Retrying every ${REFRESH_MS / 1000} s; the table shows the last data received.`;
  document.body.classList.add("offline");
}

function found() {
  lostSince = null;
  $("connection").hidden = true;
  document.body.classList.remove("offline");
}

let pending = null;
async function refresh() {
  clearTimeout(pending);
  try {
    const [status, page] = await Promise.all([getJSON("/api/v1/status"), getJSON(query())]);
    if (status === null || page === null) throw new Error("the daemon answered 404 for its own API");
    lastPage = page;
    showStatus(status, page);
    showPage(page);
    await refreshDetail(false);
    found();
  } catch (e) {
    lost(e);
  } finally {
    pending = setTimeout(refresh, REFRESH_MS);
  }
}

function wire() {
  let typing = null;
  $("filter").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => { view.filter = e.target.value.trim(); view.offset = 0; refresh(); }, 200);
  });
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      if (view.sort === key) view.order = view.order === "asc" ? "desc" : "asc";
      else { view.sort = key; view.order = /bits|packets|total|last|peers/.test(key) ? "desc" : "asc"; }
      view.offset = 0;
      refresh();
    });
  }
  $("prev").addEventListener("click", () => { view.offset = Math.max(0, view.offset - view.limit); refresh(); });
  $("next").addEventListener("click", () => { if (lastPage && view.offset + view.limit < lastPage.matched) { view.offset += view.limit; refresh(); } });
  $("limit").addEventListener("change", (e) => { view.limit = Number(e.target.value); view.offset = 0; refresh(); });
  for (const b of document.querySelectorAll("button[data-range]")) {
    b.addEventListener("click", () => {
      view.range = b.dataset.range;
      if (view.selected !== null) loadLongRange(view.selected).catch(lost);
    });
  }
  $("detail-close").addEventListener("click", () => { view.selected = null; $("detail").hidden = true; refresh(); });
}

wire();
refresh();
