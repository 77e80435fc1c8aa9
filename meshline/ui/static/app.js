// The live page of `meshline run --ui`: polls /api/* every second; no build step, no library.
"use strict";

const POLL_MS = 1000;
const NODE_W = 236, NODE_H = 74, COL_GAP = 64, ROW_GAP = 22;
const svgNS = "http://www.w3.org/2000/svg";
const state = { graph: null, last: null, rates: {}, deadAfter: 0, dead: [], tap: { stage: "", id: "" } };

function el(name, attrs, text) {
  const e = document.createElementNS(svgNS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(n) { return Number(n || 0).toLocaleString("en-US"); }

function layout(graph) {
  const cols = {};
  for (const n of graph.nodes) (cols[n.column] = cols[n.column] || []).push(n);
  const pos = {};
  let height = 0;
  for (const [c, nodes] of Object.entries(cols)) {
    nodes.forEach((n, i) => {
      pos[n.id] = { x: 10 + Number(c) * (NODE_W + COL_GAP), y: 10 + i * (NODE_H + ROW_GAP) };
    });
    height = Math.max(height, 10 + nodes.length * (NODE_H + ROW_GAP) + ROW_GAP);
  }
  const width = 20 + (Math.max(...Object.keys(cols).map(Number)) + 1) * (NODE_W + COL_GAP) - COL_GAP;
  return { pos, width, height };
}

function drawGraph(graph) {
  const svg = document.getElementById("graph");
  svg.replaceChildren();
  const { pos, width, height } = layout(graph);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.style.maxHeight = `${height}px`;
  for (const e of graph.edges) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const x2 = b.x, y2 = b.y + NODE_H / 2;
    let d;
    if (e.dead) {  // from the stage's bottom, below the stages between, into the target
      const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H, low = Math.max(y1, y2) + ROW_GAP / 2;
      d = `M${x1},${y1} C${x1},${low} ${x1},${low} ${(x1 + x2) / 2},${low} S${x2 - 30},${y2} ${x2},${y2}`;
    } else {
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, mid = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
    }
    svg.appendChild(el("path", { class: "edge" + (e.dead ? " dead" : ""), d }));
  }
  for (const n of graph.nodes) {
    const p = pos[n.id];
    const g = el("g", { class: `node ${n.stage}`, "data-id": n.id, transform: `translate(${p.x},${p.y})` });
    g.appendChild(el("rect", { width: NODE_W, height: NODE_H }));
    g.appendChild(el("text", { x: 8, y: 17, class: "title" }, n.name));
    g.appendChild(el("text", { x: 8, y: 32, class: "kind" }, `${n.stage} · ${n.type}`));
    g.appendChild(el("text", { x: 8, y: 48, class: "counts" }, ""));
    g.appendChild(el("text", { x: 8, y: 64, class: "dead" }, ""));
    const title = el("title", {}, [n.id, ...(n.filters || [])].join("\n"));
    g.appendChild(title);
    g.addEventListener("click", () => chooseTap(n.id));
    svg.appendChild(g);
  }
  const select = document.getElementById("tap-select");
  for (const n of graph.nodes) {
    const o = document.createElement("option");
    o.value = n.id; o.textContent = n.id;
    select.appendChild(o);
  }
  select.addEventListener("change", () => chooseTap(select.value));
}

function rowKey(r) { return `${r.stage}.${r.name}`; }

function updateStats(stats) {
  const now = stats.seconds;
  const prev = state.last;
  const rows = {};
  for (const r of stats.stages) rows[rowKey(r)] = r;
  for (const g of document.querySelectorAll("#graph .node")) {
    const r = rows[g.dataset.id];
    if (!r) continue;
    const moved = r.stage === "target" || r.stage === "source" ? r.out : r.out;
    let rate = state.rates[g.dataset.id] || 0;
    if (prev && prev.rows[g.dataset.id] && now > prev.seconds) {
      rate = Math.max(0, (moved - prev.rows[g.dataset.id].out) / (now - prev.seconds));
      state.rates[g.dataset.id] = rate;
    }
    const matched = r.matched !== undefined ? ` · ${fmt(r.matched)} matched` : "";
    g.querySelector(".counts").textContent = `${fmt(r.in)} in${matched} · ${fmt(r.out)} out · ${rate.toFixed(1)}/s`;
    g.querySelector(".dead").textContent = r.dead_lettered ? `${fmt(r.dead_lettered)} dead-lettered` : "";
    g.dataset.in = r.in; g.dataset.out = r.out; g.dataset.dead = r.dead_lettered;
  }
  state.last = { seconds: now, rows };
  const lat = Object.entries(stats.latency).map(([t, h]) => {
    const p = (q) => quantile(h.buckets, stats.buckets, h.count, q);
    return `${t}: ${fmt(h.count)} delivered, p50 ≤ ${p(0.5)}, p99 ≤ ${p(0.99)}`;
  });
  const backlog = stats.backlog.map((b) => `${b.source} ${b.kind} ${b.topic || ""}${b.partition ? "[" + b.partition + "]" : ""}: ${fmt(b.value)}`);
  document.getElementById("latency").textContent =
    (lat.length ? "delivery latency — " + lat.join("; ") : "") + (backlog.length ? "  backlog — " + backlog.join("; ") : "");
  const dropped = stats.dropped ? ` · ${fmt(stats.dropped)} failed with no dead-letter target` : "";
  document.getElementById("status").textContent = `running ${Math.round(now)} s${dropped}`;
}

function quantile(buckets, bounds, count, q) {
  if (!count) return "—";
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i];
    if (seen >= q * count) return i < bounds.length ? `${bounds[i] * 1000} ms` : `> ${bounds[bounds.length - 1]} s`;
  }
  return "—";
}

function addDeadLetters(items) {
  const body = document.querySelector("#dead tbody");
  for (const d of items) {
    state.deadAfter = Math.max(state.deadAfter, d.n);
    const tr = document.createElement("tr");
    tr.dataset.n = d.n;
    const cells = [new Date(d.time * 1000).toLocaleTimeString(), d.stage, d.trigger, d.step, d.reason];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      td.textContent = c || "";
      if (i === 4) td.className = "reason";
      tr.appendChild(td);
    });
    tr.addEventListener("click", () => {
      const pre = document.getElementById("dead-event");
      pre.hidden = false;
      pre.textContent = JSON.stringify(d.event, null, 2);
    });
    body.insertBefore(tr, body.firstChild);
  }
  while (body.children.length > 50) body.removeChild(body.lastChild);
  document.getElementById("dead-count").textContent = `${state.deadAfter} so far (the last 50 shown; click one for its event)`;
}

function chooseTap(stage) {
  state.tap = { stage, id: "" };
  document.getElementById("tap-select").value = stage;
  document.getElementById("tap-stage").textContent = stage || "no stage chosen";
  document.getElementById("tap-events").replaceChildren();
  for (const g of document.querySelectorAll("#graph .node")) g.classList.toggle("tapped", g.dataset.id === stage);
  if (stage) history.replaceState(null, "", `#tap=${encodeURIComponent(stage)}`);
}

function addTapped(events) {
  const box = document.getElementById("tap-events");
  for (const e of events) {
    const pre = document.createElement("pre");
    pre.className = "tap-event";
    pre.textContent = JSON.stringify(e, null, 2);
    box.insertBefore(pre, box.firstChild);
  }
  while (box.children.length > 20) box.removeChild(box.lastChild);
}

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

async function tick() {
  try {
    const [stats, dead] = await Promise.all([get("/api/stats"), get(`/api/dead-letters?after=${state.deadAfter}`)]);
    updateStats(stats);
    addDeadLetters(dead.dead_letters);
    if (state.tap.stage) {
      const stage = state.tap.stage;
      const t = await get(`/api/tap?stage=${encodeURIComponent(stage)}&id=${state.tap.id}`);
      if (state.tap.stage === stage) {
        state.tap.id = t.id;
        addTapped(t.events);
      }
    }
  } catch (err) {
    document.getElementById("status").textContent = `not answering (${err.message}); the run may have ended`;
  }
  setTimeout(tick, POLL_MS);
}

async function start() {
  state.graph = await get("/api/graph");
  document.getElementById("names").textContent = state.graph.integrations.join(", ");
  drawGraph(state.graph);
  const m = /^#tap=(.+)$/.exec(location.hash);
  if (m) chooseTap(decodeURIComponent(m[1]));
  tick();
}

start();
