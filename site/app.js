// kvcalc page: draws the bar chart precomputed at build time into the page's painted frame first,
// then the controls, line chart, table and insights, then recomputes on every control change
// through kvcalc.web.compute (the one JSON door) in Pyodide (boot.js).
//   window.kvcalc.ready -> Promise<version>;  window.kvcalc.call(request) -> Promise<response> (boot.js)
// <main id="app" data-state="loading|ready|error" data-source="precomputed|live" data-rev="n" data-busy>:
// data-rev counts renders and data-busy is "true" while Python computes, so tests and the benchmark
// can wait for an update.
import { startPython } from "./boot.js";
import {
  LINE_STYLES, barFigure, draw, isNarrow, lineFigure, lineKey, modelStyle, plotlyLoaded, renderLegend,
} from "./charts.js";
import { Controls } from "./controls.js";
import { initCustom } from "./custom.js";
import { initPanels } from "./panels.js";
import { dtypeLabel, fmtTokens } from "./format.js";
import { decodeHash, defaultState, encodeHash, stateKey } from "./state.js";
import { renderLineData, renderTable, tableCSV } from "./table.js";

const $ = (id) => document.getElementById(id);
const app = $("app");

const dataNode = $("kvcalc-data");
const data = dataNode ? JSON.parse(dataNode.textContent) : null;
const timings = [];
window.kvcalcTimings = timings;
window.kvcalcShown = () => shown; // the response on screen (bench/site_bench.py redraws it on a bare page)

let state;
let controls;
let worker = "loading"; // loading | ready | error
let shown = null; // the response on screen
let shownKey = null;
let rev = 0;
let firstChart = true;
/** Resolves once the first render has drawn its bar chart (or found Plotly missing). */
let firstDrawn;
const firstDrawnPromise = new Promise((resolve) => { firstDrawn = resolve; });
let sort = null;
let pendingStart = null;
let computing = false;
let queued = false;
let hashNotes = [];
const sent = new Set(); // model ids whose config the worker has parsed and cached
const lines = new Map(); // lineKey → line: lines do not depend on the context or GPU, so fetch them once

function setStatus(stateName, message) {
  app.dataset.state = stateName;
  $("status").textContent = message;
}

function showNotice(messages) {
  const note = $("notice");
  note.textContent = messages.join(" ");
  note.hidden = !messages.length;
}

const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));
/** After the next frame is painted (or 200 ms, e.g. in a background tab where frames wait). */
const afterPaint = () => new Promise((resolve) => {
  requestAnimationFrame(() => setTimeout(resolve, 0));
  setTimeout(resolve, 200);
});
/** A performance.measure named "kvcalc:<name>" from `start` to now (the benchmark reads them);
 * the timeline is emptied now and then, so a long session does not keep thousands. */
let spans = 0;
function span(name, start) {
  if (++spans > 1000) {
    performance.clearMeasures();
    spans = 0;
  }
  performance.measure(`kvcalc:${name}`, { start });
}

// ------------------------------------------------------------------ rendering

function renderInsights(resp) {
  const list = $("insights");
  const items = (resp.insights ?? []).map((i) => {
    const li = document.createElement("li");
    li.dataset.kind = i.kind;
    li.textContent = i.text;
    return li;
  });
  if (resp.insights === null) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "Insights for this selection appear once the calculator is ready.";
    items.push(li);
  } else if (!items.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "Select models to compare.";
    items.push(li);
  }
  list.replaceChildren(...items);
}

/** Under the bar chart: what the room marks mean and which engine arithmetic they assume. */
function renderBarNote(resp) {
  const note = $("bar-note");
  const past = resp.models.filter((m) => m.beyond_max).length;
  const parts = [];
  if (!resp.models.length) {
    note.textContent = "No models selected: add some with “Add or remove models” above.";
    return;
  }
  if (resp.room_rule) parts.push(`│ = room for the KV cache per GPU after the weights — ${resp.room_rule}. ✕: the weights alone do not fit.`);
  else parts.push("Choose a GPU to see how much room for the KV cache each model leaves.");
  if (past) parts.push(`Hatched bars and ⚠: the chosen context is past that model's max context.`);
  note.textContent = parts.join(" ");
}

function renderErrors(resp) {
  const list = $("model-errors");
  list.replaceChildren(...resp.errors.map((e) => {
    const li = document.createElement("li");
    li.dataset.id = e.id;
    if (e.refused) li.dataset.refused = "true";
    const name = document.createElement("strong");
    name.textContent = e.name;
    li.append(name, `: ${e.error}`);
    return li;
  }));
}

function renderTableNow() {
  const dtypes = shown.settings.kv_dtypes;
  if (!sort || (sort.key.includes(":") && !dtypes.includes(sort.key.split(":")[1]))) {
    sort = { key: `cache:${dtypes[0]}`, dir: -1 };
  }
  renderTable($("table"), shown, sort, (key, kind) => {
    sort = sort.key === key ? { key, dir: -sort.dir } : { key, dir: kind === "text" ? 1 : -1 };
    renderTableNow();
    $("table").querySelector(`button[data-sort="${CSS.escape(key)}"]`)?.focus(); // focus stays on the heading
  }, data.validation ?? null);
  const tp = shown.settings.tensor_parallel_size;
  $("table-help").textContent = `Cache per GPU for batch ${shown.settings.batch_size} at ${fmtTokens(shown.settings.seq_len)} tokens, ${shown.settings.engine} engine`
    + (tp > 1 ? `, tensor parallel ${tp} (weights and cache per GPU)` : "")
    + ". Weights in the checkpoint's own format. Click a column heading to sort.";
}

/** The line chart's data table, built only while it is open (a slider step does not pay for it). */
function renderLineDataNow() {
  if ($("line-data").open && shown) renderLineData($("line-data-table"), shown);
}

let legendKey = null; // what the line chart's legend shows (see renderNow)
let renders = Promise.resolve();
/** Draw a response: charts, table, insights. Renders run one after another, never interleaved. */
function render(resp, source) {
  const job = renders.then(() => renderNow(resp, source));
  renders = job.catch(() => {});
  return job;
}

/** Everything but the charts: table, data table, insights, errors, notices. */
function renderText(resp) {
  const t = performance.now();
  renderTableNow();
  renderLineDataNow();
  renderInsights(resp);
  renderErrors(resp);
  showNotice([...hashNotes, ...(resp.notices ?? [])]);
  span("table", t);
}

async function renderNow(resp, source) {
  const first = firstChart;
  firstChart = false;
  shown = resp;
  const narrow = isNarrow();
  const labels = data.catalog.kind_labels;
  const charts = $("charts");
  const { seq_len: seq, batch_size: batch, tensor_parallel_size: tp } = resp.settings;
  const per = `${batch > 1 ? ` · batch ${batch}` : ""}${tp > 1 ? ` · per GPU (TP ${tp})` : ""}`;
  $("bar-title").textContent = `KV cache at ${fmtTokens(seq)} tokens${per}`;
  const dashes = resp.settings.kv_dtypes.length > 1
    ? ` · ${resp.settings.kv_dtypes.map((d, i) => `${dtypeLabel(d)} ${LINE_STYLES[i % LINE_STYLES.length]}`).join(", ")}`
    : "";
  $("line-title").textContent = `KV cache vs sequence length (log–log)${per}${dashes}`;
  renderBarNote(resp);
  charts.classList.toggle("empty", !resp.models.length); // no axes without data
  if (plotlyLoaded()) {
    charts.classList.remove("failed");
    let t = performance.now();
    await draw($("bar-chart"), barFigure(resp, labels, narrow), narrow);
    span("bar", t);
    if (first) {
      performance.mark("kvcalc:first-chart");
      firstDrawn();
    }
    await nextTask(); // a turn for the browser between the charts: no task over ~50 ms
    t = performance.now();
    const lineChart = $("line-chart");
    await draw(lineChart, lineFigure(resp, labels, state.models, narrow), narrow);
    // The legend depends on the models and their notes, not on the context: a moved marker keeps it.
    const key = JSON.stringify([resp.models.map((r) => [r.id, r.name, r.beyond_max, r.max_context, r.same_as]), state.models, resp.settings.kv_dtypes]);
    if (lineChart.dataset.update === "full" || key !== legendKey) renderLegend($("line-legend"), lineChart, resp, state.models);
    legendKey = key;
    span("line", t);
  } else {
    charts.classList.add("failed");
    $("bar-chart").textContent = "The charting library (Plotly) did not load; the table below has every number.";
    if (first) firstDrawn();
  }
  await nextTask(); // the table and insights in a task of their own
  renderText(resp);
  app.dataset.source = source;
  app.dataset.rev = String(++rev);
}

// ------------------------------------------------------------------ precomputed data

function sameControls(a, b) {
  return a.seq === b.seq && a.batch === b.batch && a.engine === b.engine && a.tp === b.tp && a.gpu === b.gpu
    && a.dtypes.join() === b.dtypes.join();
}

/** The build-time response filtered to `s`, when `s` asks for nothing more than it holds. */
function precomputedFor(s) {
  const initial = data.initial;
  const byId = new Map(initial.models.map((m) => [m.id, m]));
  if (!sameControls(s, defaultState(data)) || !s.models.every((id) => byId.has(id))) return null;
  const sameSet = s.models.length === initial.models.length;
  return {
    ...initial,
    models: s.models.map((id) => byId.get(id)),
    insights: sameSet ? initial.insights : null,
    errors: [],
  };
}

// ------------------------------------------------------------------ live computation

function entryFor(id) {
  if (sent.has(id)) return { id };
  const pre = data.models.find((m) => m.id === id);
  if (pre) return { id, name: pre.name, config: pre.config };
  const custom = state.custom.find((c) => c.id === id);
  return { id, name: custom?.name || undefined, config_text: custom?.text ?? "" };
}

function stateLineKeys(s) {
  return s.models.flatMap((id) => s.dtypes.map((d) => lineKey(id, d, s.engine, s.tp, s.batch)));
}

/** Cache a response's lines, or fill them in from the cache; false when one is missing. */
function withLines(resp) {
  const { engine, tensor_parallel_size: tp, batch_size: batch, kv_dtypes: dtypes } = resp.settings;
  for (const m of resp.models) {
    if (m.lines) {
      for (const [d, line] of Object.entries(m.lines)) lines.set(lineKey(m.id, d, engine, tp, batch), line);
      continue;
    }
    const keys = dtypes.map((d) => lineKey(m.id, d, engine, tp, batch));
    if (!keys.every((k) => lines.has(k))) return false;
    m.lines = Object.fromEntries(dtypes.map((d, i) => [d, lines.get(keys[i])]));
  }
  return true;
}

function request(s, forceLines = false) {
  if (lines.size > 2000) lines.clear();
  return {
    op: "compare",
    lines: forceLines || !stateLineKeys(s).every((k) => lines.has(k)),
    models: s.models.map(entryFor),
    seq_len: s.seq,
    batch_size: s.batch,
    kv_dtypes: s.dtypes,
    engine: s.engine,
    tensor_parallel_size: s.tp,
    gpu: s.gpu || null,
  };
}

async function recompute() {
  if (worker !== "ready") return;
  if (computing) {
    queued = true;
    return;
  }
  computing = true;
  app.dataset.busy = "true";
  try {
    do {
      queued = false;
      const key = stateKey(state);
      const start = pendingStart;
      const asked = performance.now();
      let resp = await startPython().call(request(state));
      if (resp.ok && !withLines(resp)) resp = await startPython().call(request(state, true)); // e.g. settings adjusted by Python
      if (!resp.ok) {
        showNotice([`Could not compute: ${resp.error}`]);
        continue;
      }
      withLines(resp);
      span("compute", asked);
      for (const m of resp.models) sent.add(m.id);
      if (queued) continue; // the controls moved on: compute the latest state instead
      if (key === shownKey && app.dataset.source !== "live" && sameNumbers(resp, shown)) {
        // Python agrees with the build-time numbers: keep the charts, adopt the live data.
        shown = resp;
        renderTableNow();
        renderInsights(resp);
        app.dataset.source = "live";
        app.dataset.rev = String(++rev);
      } else if (key !== shownKey || app.dataset.source !== "live") {
        await render(resp, "live");
        shownKey = key;
        if (start !== null) timings.push({ kind: "control", ms: performance.now() - start });
      }
      pendingStart = null;
    } while (queued);
  } catch (error) {
    showNotice([`Could not compute: ${error.message}`]);
  } finally {
    computing = false;
    app.dataset.busy = "false";
  }
}

function sameNumbers(a, b) {
  const numbers = (r) => JSON.stringify(r.models.map((m) => [m.id, m.name, m.cache, m.total, m.lines]));
  return numbers(a) === numbers(b) && JSON.stringify(a.insights) === JSON.stringify(b.insights);
}

let hashSeq = 0;
let hashTimer = null;
/** Put the state in the location hash once the controls rest for 250 ms: replaceState costs the
 * browser ~3 ms (measured), which a change should not wait for, and a slider drag fires dozens. */
function writeHash() {
  clearTimeout(hashTimer);
  hashTimer = setTimeout(() => {
    const mine = ++hashSeq;
    encodeHash(state).then((hash) => {
      if (mine === hashSeq && hash !== window.location.hash) window.history.replaceState(null, "", hash);
    });
  }, 250);
}

function onChange(patch) {
  pendingStart = performance.now();
  state = { ...state, ...patch };
  controls.sync(state);
  writeHash();
  hashNotes = [];
  if (worker === "ready") {
    recompute();
    return;
  }
  const pre = precomputedFor(state);
  if (pre) {
    const key = stateKey(state);
    render(pre, "precomputed").then(() => { shownKey = key; });
  } else if (worker === "loading") {
    showNotice(["These settings will be computed as soon as the calculator has loaded."]);
  } else {
    showNotice(["The calculator could not start, so only the precomputed default view is available."]);
  }
}

/** A config's content, parsed and re-serialised with sorted keys (null when not JSON): two pastes of
 * the same config.json, however indented or ordered, give the same string. */
function normalisedConfig(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return JSON.stringify(value, (key, v) => (v && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
    : v));
}

/** The custom model already added with this Hub id or the same config content (then it is selected):
 * {name, duplicate: true}, or null when there is none. */
function findAdded({ text, hub }) {
  const key = text === undefined ? null : normalisedConfig(text);
  const same = state.custom.find((c) => (hub && c.hub === hub) || (key !== null && normalisedConfig(c.text) === key));
  if (!same) return null;
  if (!state.models.includes(same.id)) onChange({ models: [...state.models, same.id] });
  return { name: same.name, duplicate: true };
}

/** Names a new model must not take: every selected model's and every custom model's. */
function takenNames() {
  return [...state.models.map((id) => controls.nameOf(id)), ...state.custom.map((c) => c.name)].filter(Boolean);
}

/** Add a pasted or fetched config: {error} or {name, duplicate} (see custom.js). Python names it
 * (kvcalc.web.names: typed, the config's own, or "Custom N (architecture)", unique on the page). */
async function addCustomModel({ text, name, hub }) {
  if (worker === "error") return { error: "The calculator could not start, so custom models cannot be computed here." };
  const known = findAdded({ text, hub });
  if (known) return known;
  try {
    await startPython().ready;
  } catch (error) {
    return { error: `The calculator could not start: ${error.message}` };
  }
  const again = findAdded({ text, hub }); // added meanwhile (e.g. a second click while Python loaded)
  if (again) return again;
  const used = state.custom.map((c) => Number(c.id.split("-")[1]));
  const id = `custom-${Math.max(0, ...used) + 1}`;
  const resp = await startPython().call({
    op: "load", models: [{ id, name: name || undefined, config_text: text }], taken: takenNames(),
  });
  if (!resp.ok) return { error: resp.error };
  if (resp.errors.length) return { error: resp.errors[0].error };
  sent.add(id);
  const added = { id, name: resp.models[0].name, text, ...(hub ? { hub } : {}) };
  const custom = [...state.custom, added];
  controls.setCustom(custom);
  onChange({ custom, models: [...state.models, id] });
  return { name: added.name, duplicate: false };
}

// ------------------------------------------------------------------ start

function knownValues() {
  return {
    models: new Set(data.models.map((m) => m.id)),
    dtypes: data.catalog.dtypes,
    engines: data.catalog.engines,
    gpus: new Set(data.catalog.gpus.map((g) => g.id)),
  };
}

async function applyHash() {
  const { state: next, ignored } = await decodeHash(window.location.hash, defaultState(data), knownValues());
  hashNotes = ignored.length ? [`Ignored from the link: ${ignored.join("; ")}.`] : [];
  state = next;
  syncControls();
}

function syncControls() {
  if (!controls) return; // built after the first charts (see main)
  controls.setCustom(state.custom);
  controls.sync(state);
}

function initTheme() {
  const button = $("theme");
  const modes = ["auto", "light", "dark"];
  let mode = "auto";
  try {
    mode = modes.includes(localStorage.getItem("kvcalc-theme")) ? localStorage.getItem("kvcalc-theme") : "auto";
  } catch {
    // storage may be disabled; the theme then follows the system
  }
  const apply = () => {
    if (mode === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = mode;
    button.textContent = `Theme: ${mode}`;
    button.setAttribute("aria-label", `Colour theme: ${mode === "auto" ? "follow the system" : mode}. Change`);
  };
  apply();
  const redraw = () => shown && render(shown, app.dataset.source);
  button.addEventListener("click", () => {
    mode = modes[(modes.indexOf(mode) + 1) % modes.length];
    try {
      localStorage.setItem("kvcalc-theme", mode);
    } catch {
      // ignore: the choice lasts for this page only
    }
    apply();
    redraw();
  });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => mode === "auto" && redraw());
  let narrow = isNarrow();
  window.addEventListener("resize", () => {
    const now = isNarrow();
    if (now !== narrow) {
      narrow = now;
      redraw();
    }
  });
}

function initCSV() {
  $("line-data").addEventListener("toggle", renderLineDataNow);
  $("csv").addEventListener("click", () => {
    if (!shown) return;
    const order = [...document.querySelectorAll("#table tbody tr")].map((tr) => tr.dataset.id);
    const blob = new Blob([tableCSV(shown, order)], { type: "text/csv;charset=utf-8" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `kvcalc-${fmtTokens(shown.settings.seq_len)}-tokens.csv`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });
}

async function main() {
  if (!data) {
    setStatus("error", "This page was built without its data (model_configs.json); rebuild with python3 build.py.");
    return;
  }
  initTheme();
  withLines(data.initial); // the build-time lines: the first live request can leave them out
  state = defaultState(data);
  await applyHash();
  // The build-time bar chart first (the page's frame is painted already), then the controls while
  // the line chart waits for its task.
  const pre = precomputedFor(state);
  const first = pre ? render(pre, "precomputed") : null;
  if (pre) await Promise.race([firstDrawnPromise, first.catch(() => {})]);
  controls = new Controls({ data, onChange, styleOf: modelStyle });
  syncControls();
  app.dataset.controls = "ready";
  initCSV();
  initCustom(addCustomModel, findAdded);
  initPanels({ data, python: startPython });
  window.addEventListener("hashchange", async () => {
    await applyHash();
    if (worker === "ready") recompute();
    else onChange({});
  });
  if (pre) {
    await first;
    shownKey = stateKey(state);
  } else {
    showNotice([...hashNotes, "Computing the linked view once the calculator has loaded…"]);
  }

  // Python starts once the first charts are out (see boot.js).
  await afterPaint();
  startPython().ready.then(
    (version) => {
      $("kvcalc-version").textContent = version;
      worker = "ready";
      performance.mark("kvcalc:ready");
      setStatus("ready", `Ready: kvcalc ${version} recomputes every change in your browser.`);
      recompute();
    },
    async (error) => {
      worker = "error";
      console.error("kvcalc failed to start:", error);
      setStatus("error", `Could not start the calculator: ${error.message}. The charts below were computed when the site was built and stay usable; changing settings needs the calculator.`);
      if (!shown) {
        hashNotes = [];
        await render(data.initial, "precomputed");
        showNotice(["Showing the default view: the linked settings need the calculator, which could not start."]);
      }
    },
  );
}

main();
