// Plotly figures from a kvcalc.web "compare" response: a grouped bar chart at the chosen context and a
// log-log chart of cache vs sequence length. Every text that reaches Plotly is escaped first: Plotly
// renders its own pseudo-HTML in labels, and model names are user data.
import { dtypeLabel, fmtGiB, fmtInt, fmtTokens, logSizeTicks, toGiB } from "./format.js";

// Six colours from the Okabe–Ito colour-blind-safe set (orange and sky blue darkened): each has at
// least 3:1 contrast on the light (#fff) and dark (#171a21) chart backgrounds. Past six models a line
// also gets a marker symbol, so 6 × 11 = 66 styles stay distinct (a page holds at most 64 models).
const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#737373", "#B8860B"];
const SYMBOLS = [null, "circle", "square", "diamond", "triangle-up", "x", "cross", "star", "hexagon", "triangle-down", "pentagon"];
/** The same symbols as text (legend and chips). */
const GLYPHS = ["", "●", "■", "◆", "▲", "✕", "✚", "★", "⬢", "▼", "⬟"];
const DTYPE_COLORS = ["#3b6fd8", "#f0a030", "#2ca02c", "#9467bd", "#d62728", "#17becf"];
const DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];
/** How each dtype's line is drawn, in words (for the caption). */
export const LINE_STYLES = ["solid", "dashed", "dotted", "dash-dot", "long dash", "long dash-dot"];
const TOKEN_TICKS = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304];
/** Plotly's config: only local mode-bar buttons (Plotly 4 adds "Share chart…", which uploads the
 * chart to Plotly's cloud, unless told not to); none at all on phones and touch screens. */
function plotConfig(narrow) {
  return {
    responsive: true,
    displaylogo: false,
    showSendToCloud: false,
    showEditInChartStudio: false,
    showLink: false,
    displayModeBar: narrow ? false : "hover",
    modeBarButtons: [["toImage", "zoom2d", "pan2d", "zoomIn2d", "zoomOut2d", "resetScale2d"]],
    scrollZoom: false,
    doubleClick: narrow ? false : "reset+autosize",
  };
}
/** Phones and touch screens: no mode bar, no drag-zoom (a swipe scrolls the page). */
export function isNarrow() {
  return window.matchMedia("(max-width: 640px), (pointer: coarse)").matches;
}
const MAX_LABEL = 40;
/** A model name for an axis label: at most 40 characters (the hover keeps the whole name). */
const shortName = (name) => (name.length > MAX_LABEL ? `${name.slice(0, MAX_LABEL - 1)}…` : name);

/** Identity of one model's line: it depends on neither the context nor the GPU. */
export function lineKey(id, dtype, engine, tp, batch) {
  return `${id}|${dtype}|${engine}|${tp}|${batch}`;
}

/** Text safe to hand to Plotly (it decodes these entities and shows them literally). */
export function plotText(value) {
  return String(value).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Line style of the index-th selected model: {color, symbol (Plotly name or null), glyph}. */
export function modelStyle(index) {
  const k = Math.floor(index / PALETTE.length) % SYMBOLS.length;
  return { color: PALETTE[index % PALETTE.length], symbol: SYMBOLS[k], glyph: GLYPHS[k] };
}

export function modelColor(index) {
  return modelStyle(index).color;
}

function theme() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return { fg: v("--fg"), muted: v("--muted"), grid: v("--grid"), bg: v("--surface"), accent: v("--accent") };
}

const FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
const fontSize = (narrow) => (narrow ? 11 : 12);
let measurer = null;
/** The widest of `texts` in px, in the charts' font (canvas measureText: the same widths Plotly's
 * SVG labels get, checked on the page). The size axes' margins are set from it instead of Plotly's
 * automargin, which lays a chart out a second time whenever a tick label's width changes: a range
 * change on the log-log chart took 40–53 ms with automargin, 8–16 ms without (measured). */
function widest(texts, narrow) {
  measurer ??= document.createElement("canvas").getContext("2d");
  measurer.font = `${fontSize(narrow)}px ${FONT}`;
  return Math.max(0, ...texts.map((text) => measurer.measureText(text).width));
}

function baseLayout(t, narrow) {
  return {
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: FONT, size: fontSize(narrow), color: t.fg },
    hoverlabel: { bgcolor: t.bg, bordercolor: t.grid, font: { color: t.fg } },
    legend: { orientation: "h", x: 0, y: -0.18, yanchor: "top", font: { size: narrow ? 10 : 11 } },
    margin: { l: 8, r: 16, t: 8, b: 8 },
  };
}

function axis(t, extra) {
  // ticklabeloverflow "allow": Plotly otherwise measures every tick label on every update to hide
  // those past the chart (none are: margins make room), a forced layout each time.
  return {
    gridcolor: t.grid, zerolinecolor: t.grid, linecolor: t.grid, tickcolor: t.grid, automargin: true,
    ticklabeloverflow: "allow", ...extra,
  };
}

function breakdownLines(row, parts, labels) {
  return Object.entries(parts)
    .filter(([, bytes]) => bytes > 0)
    .map(([kind, bytes]) => `${plotText(labels[kind] ?? kind)} ×${row.kinds[kind] ?? "?"}: ${fmtGiB(bytes)}`)
    .join("<br>");
}

function fixed(layout, narrow) {
  if (!narrow) return layout;
  layout.dragmode = false;
  layout.xaxis.fixedrange = true;
  layout.yaxis.fixedrange = true;
  return layout;
}

/** Rows in bar order: largest cache (first dtype) at the top. */
export function barOrder(rows, dtypes) {
  return [...rows].sort((a, b) => b.cache[dtypes[0]] - a.cache[dtypes[0]]);
}

let lastBars = { key: null, traces: null };

/** Hover text of one model's room for KV. */
function roomText(row, resp) {
  const room = row.room;
  const gpu = plotText(resp.gpu.name);
  const weights = `weights ${fmtGiB(room.weights)} per GPU`;
  const reserve = room.overhead ? `, vLLM reserve ${fmtGiB(room.overhead)} of ${fmtGiB(room.requested)} it may use` : "";
  if (room.bytes <= 0) return `no room for KV on ${gpu}: ${weights}${reserve}`;
  return `room for KV on ${gpu}: ${fmtGiB(room.bytes)} (${weights}${reserve})`;
}

export function barFigure(resp, labels, narrow) {
  const t = theme();
  const { kv_dtypes: dtypes, seq_len: seq, tensor_parallel_size: tp } = resp.settings;
  const rows = barOrder(resp.models, dtypes);
  const names = rows.map((r) => plotText(r.name));
  // Same bars as last time (e.g. only the GPU changed): hand Plotly the same objects, so react()
  // sees unchanged data and only redoes the layout.
  const key = JSON.stringify([seq, dtypes, rows.map((r) => [r.id, r.name, r.beyond_max, dtypes.map((d) => r.cache[d])])]);
  const traces = key === lastBars.key ? lastBars.traces : dtypes.map((d, i) => ({
    type: "bar",
    orientation: "h",
    name: dtypeLabel(d),
    y: names,
    x: rows.map((r) => toGiB(r.cache[d])),
    // Past a model's max context: hatched bars (and "⚠ past max" on its label).
    marker: { color: DTYPE_COLORS[i % DTYPE_COLORS.length], pattern: { shape: rows.map((r) => (r.beyond_max ? "/" : "")), solidity: 0.5 } },
    customdata: rows.map((r) => [
      `${fmtGiB(r.cache[d])} (${fmtInt(r.cache[d])} bytes)`,
      `${fmtInt(r.token_bytes[d])} bytes/token` +
        (r.long_token_bytes[d] !== r.token_bytes[d] ? `, ${fmtInt(r.long_token_bytes[d])} past the window` : ""),
      breakdownLines(r, r.breakdown[d], labels),
      r.beyond_max ? `<br><b>⚠ past its max context (${fmtTokens(r.max_context)})</b>` : "",
    ]),
    hovertemplate: `<b>%{y}</b> · ${dtypeLabel(d)} at ${fmtTokens(seq)} tokens<br>%{customdata[0]}<br>%{customdata[1]}<br>%{customdata[2]}%{customdata[3]}<extra></extra>`,
  }));
  lastBars = { key, traces };
  const perBar = 16 * dtypes.length + 8;
  const data = [...traces];
  const withRoom = resp.gpu ? rows.filter((r) => r.room) : [];
  if (withRoom.length) {
    // One mark per model: the KV cache must end left of it to fit (weights and the engine's reserve
    // come first). A model whose weights alone do not fit gets an ✕ at 0.
    data.push({
      type: "scatter",
      mode: "markers",
      name: "room for KV",
      y: withRoom.map((r) => plotText(r.name)),
      x: withRoom.map((r) => toGiB(Math.max(0, r.room.bytes))),
      marker: {
        symbol: withRoom.map((r) => (r.room.bytes > 0 ? "line-ns" : "x-thin")),
        size: withRoom.map((r) => (r.room.bytes > 0 ? perBar : 12)),
        color: t.fg,
        line: { width: 2.5, color: withRoom.map((r) => (r.room.bytes > 0 ? t.fg : "#D55E00")) },
      },
      customdata: withRoom.map((r) => [roomText(r, resp), dtypes.map((d) => `${dtypeLabel(d)} ${r.fits[d] === null ? "?" : r.fits[d] ? "fits" : "does not fit"}`).join(", ")]),
      hovertemplate: "<b>%{y}</b><br>%{customdata[0]}<br>%{customdata[1]}<extra></extra>",
    });
  }
  const maxX = Math.max(1e-9, ...traces.flatMap((tr) => tr.x), ...withRoom.map((r) => toGiB(Math.max(0, r.room.bytes))));
  const ticktext = rows.map((r) => plotText(shortName(r.name)) + (r.beyond_max ? " ⚠" : ""));
  const layout = {
    ...baseLayout(t, narrow),
    barmode: "group",
    bargap: 0.25,
    height: Math.max(260, 90 + rows.length * perBar),
    // Explicit ranges: Plotly then skips autoranging (and a second layout pass) on every update.
    xaxis: axis(t, {
      ...barTicks(maxX, seq, narrow),
      range: [-0.02 * maxX, 1.06 * maxX], // a little left of 0: the ✕ of a model with no room shows
    }),
    yaxis: axis(t, {
      autorange: false, range: [rows.length - 0.5, -0.5], ticklabelstandoff: 4, tickmode: "array", tickvals: names, ticktext,
      automargin: false,
    }),
    uirevision: JSON.stringify([rows.map((r) => r.id), dtypes]),
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    // room for the longest name with its "⚠" whether shown or not: a context crossing a model's max
    // context then leaves the margin as it is (ticks, standoff and padding: 21 px, as automargin had)
    margin: { l: Math.ceil(widest(rows.map((r) => `${shortName(r.name)} ⚠`), narrow) + 21), r: 16, t: 36, b: 8 },
  };
  return { data, layout: fixed(layout, narrow) };
}

/** The bar chart's size axis: Plotly's ticks in GiB up to 1024 GiB; past it, ticks at a round step
 * of TiB (or PiB) labelled in that unit (the values stay GiB), as format.js prints sizes. */
function barTicks(maxX, seq, narrow) {
  const unitTitle = (u) => ({ text: narrow ? u : `KV cache at ${fmtTokens(seq)} tokens (${u})` });
  const [unit, scale] = maxX >= 1024 ** 2 ? ["PiB", 1024 ** 2] : ["TiB", 1024];
  if (maxX < 1024) return { title: unitTitle("GiB"), exponentformat: "none", separatethousands: true };
  const span = (1.06 * maxX) / scale;
  const raw = span / 5;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((v) => v >= raw);
  const vals = [];
  for (let v = 0; v <= span + 1e-9; v += step) vals.push(Number(v.toPrecision(12)));
  const label = new Intl.NumberFormat("en-US", { maximumFractionDigits: 6 });
  return {
    title: unitTitle(unit), tickmode: "array", tickvals: vals.map((v) => v * scale), ticktext: vals.map((v) => label.format(v)),
  };
}

const lineTraces = new Map(); // key → trace object, reused while its numbers and style are unchanged

/** "same as X" text for a line that coincides with others (they hide each other on the chart). */
function sameAs(row, d) {
  const others = row.same_as?.[d] ?? [];
  return others.length ? `same line as ${others.join(", ")}` : "";
}

export function lineFigure(resp, labels, order, narrow) {
  const t = theme();
  const { kv_dtypes: dtypes, tensor_parallel_size: tp, engine, batch_size: batch, seq_len: seq } = resp.settings;
  const traces = [];
  const keys = [];
  const past = []; // shapes: each line past its model's max context
  if (lineTraces.size > 500) lineTraces.clear();
  resp.models.forEach((row, n) => {
    const style = modelStyle(order.indexOf(row.id) < 0 ? n : order.indexOf(row.id));
    dtypes.forEach((d, i) => {
      const same = sameAs(row, d);
      const key = [lineKey(row.id, d, engine, tp, batch), row.name, style.color, style.symbol, i, same].join("|");
      keys.push(key);
      if (!lineTraces.has(key)) {
        const line = row.lines[d];
        const perToken = `${fmtInt(row.token_bytes[d])} bytes/token`;
        lineTraces.set(key, {
          type: "scatter",
          mode: style.symbol ? "lines+markers" : "lines",
          name: plotText(row.name),
          meta: row.id,
          x: line.x,
          y: line.y.map(toGiB),
          line: { color: style.color, width: 2, dash: DASHES[i % DASHES.length] },
          ...(style.symbol ? { marker: { symbol: style.symbol, size: 7, color: style.color, maxdisplayed: 12 } } : {}),
          customdata: line.x.map((x, j) => {
            const parts = Object.fromEntries(Object.entries(line.parts).map(([k, v]) => [k, v[j]]));
            return [fmtTokens(x), fmtGiB(line.y[j]), breakdownLines(row, parts, labels)];
          }),
          hovertemplate: `<b>%{fullData.name}</b> · ${dtypeLabel(d)}${same ? `<br><i>${plotText(same)}</i>` : ""}<br>%{customdata[0]} tokens: %{customdata[1]}<br>${perToken}<br>%{customdata[2]}<extra></extra>`,
        });
      }
      traces.push(lineTraces.get(key));
      // Past the model's max context (the bars show the chosen context anyway): a thin, faded
      // dotted continuation from its last point to the chosen context, ending in an ✕ — shapes, not
      // traces, so a context change redraws them without Plotly recalculating a single line.
      const line = row.lines[d];
      const end = line.x[line.x.length - 1];
      if (row.beyond_max && seq > end) past.push(...pastMax(row.id, style.color, end, line.y[line.y.length - 1], seq, row.cache[d]));
    });
  });
  // The chosen context: a vertical rule, labelled (shape 0).
  const shapes = [contextRule(seq, t), ...past];
  // Explicit log ranges (Plotly then skips autoranging on updates): all lines, the chosen context, 5% padding.
  const xs = [seq, ...traces.flatMap((tr) => [tr.x[0], tr.x[tr.x.length - 1]])];
  const ys = [...traces.flatMap((tr) => tr.y.filter((v) => v > 0)), ...past.filter((p) => p.y1 > 0 && !p.xsizemode).map((p) => p.y1)];
  const pad = (lo, hi) => [Math.log10(lo) - 0.05 * Math.log10(hi / lo || 10), Math.log10(hi) + 0.05 * Math.log10(hi / lo || 10)];
  const xRange = xs.length ? pad(Math.min(...xs), Math.max(...xs)) : [3, 5];
  const yRange = ys.length ? pad(Math.min(...ys), Math.max(...ys)) : [-2, 2];
  const ticks = yTicks(yRange);
  const layout = {
    ...baseLayout(t, narrow),
    height: narrow ? 340 : 420,
    showlegend: false,
    xaxis: axis(t, {
      type: "log",
      range: xRange,
      title: { text: "Sequence length (tokens)", standoff: 6 },
      tickvals: TOKEN_TICKS,
      ticktext: TOKEN_TICKS.map(fmtTokens),
    }),
    yaxis: axis(t, { type: "log", range: yRange, title: { text: "KV cache" }, ...ticks, automargin: false }),
    uirevision: JSON.stringify([resp.models.map((r) => r.id), dtypes, engine, tp, batch]),
    hovermode: "closest",
    margin: { l: logMargin(ticks, yRange, narrow), r: 16, t: 24, b: 8 },
    shapes,
  };
  // The traces do not depend on the context: when they are the ones drawn (same dataKey), draw()
  // hands Plotly only the context's shapes and the axis ranges (Plotly.relayout), not a trace.
  const dataKey = JSON.stringify([keys, narrow, t]);
  const yTickFields = Object.fromEntries(Y_TICK_FIELDS.map((k) => [`yaxis.${k}`, layout.yaxis[k] ?? null]));
  return {
    data: traces, layout: fixed(layout, narrow), key: JSON.stringify([keys, seq, narrow, t, shapes]), dataKey,
    marker: { shapes, "xaxis.range": xRange, "yaxis.range": yRange, ...yTickFields, "margin.l": layout.margin.l },
  };
}

/** The chosen-context rule: a dashed vertical line across the plot, labelled at its top. A shape's
 * label, not an annotation: replacing the shapes redraws only them (~1 ms), while an edited
 * annotation makes Plotly measure text again (~25 ms; both measured on the built page). */
function contextRule(seq, t) {
  return {
    type: "line", xref: "x", yref: "paper", x0: seq, x1: seq, y0: 0, y1: 1, line: { color: t.fg, width: 1.5, dash: "dash" },
    label: { text: `chosen: ${fmtTokens(seq)}`, textangle: 0, textposition: "end", xanchor: "right", yanchor: "bottom", font: { size: 10, color: t.fg } },
  };
}

const PAST_OPACITY = 0.55;
/** One line past its model's max context: the dotted segment from its last point (end, yEnd bytes)
 * to the chosen context (seq, bytes), and an ✕ (two 10 px strokes) at its end; `name` is the model
 * id (highlight and hide find its shapes by it). */
function pastMax(id, color, end, yEnd, seq, bytes) {
  const common = { name: id, xref: "x", yref: "y", opacity: PAST_OPACITY, visible: true };
  const cross = ([y0, y1]) => ({
    ...common, type: "line", xsizemode: "pixel", ysizemode: "pixel", xanchor: seq, yanchor: toGiB(bytes),
    x0: -5, x1: 5, y0, y1, line: { color, width: 2 },
  });
  return [
    { ...common, type: "line", x0: end, x1: seq, y0: toGiB(yEnd), y1: toGiB(bytes), line: { color, width: 1, dash: "dot" } },
    cross([-5, 5]),
    cross([5, -5]),
  ];
}

/** The log-log chart's left margin: its widest size label (of `ticks`, yTicks) in range, the rotated
 * title, ticks and padding (31 px, as automargin had), rounded up to 8 px so that most range changes
 * keep it. */
function logMargin(ticks, range, narrow) {
  const shown = (ticks.ticktext ?? []).filter((_, i) => {
    const v = Math.log10(ticks.tickvals[i]);
    return v >= range[0] && v <= range[1];
  });
  return 8 * Math.ceil((widest(shown.length ? shown : ["0.001 GiB"], narrow) + 31) / 8);
}

const Y_TICK_FIELDS = ["tickmode", "tickvals", "ticktext", "dtick", "exponentformat", "tickformat"];
/** The log-log chart's size ticks: labelled values in GiB, TiB, PiB (format.js logSizeTicks), else
 * Plotly's own powers of ten. */
function yTicks(range) {
  // every tick of the chosen density, not only those in range: a context change that moves the
  // range then leaves the tick list as it is (new tick labels cost Plotly a second layout pass)
  const ticks = logSizeTicks(range[0], range[1], true);
  return ticks ? { tickmode: "array", ...ticks } : { dtick: 1, exponentformat: "none", tickformat: "~g" };
}

/** The line chart's legend as HTML (names as text): one toggle button per model, hiding its lines;
 * hovering or focusing one fades the other models' lines. */
export function renderLegend(list, chart, resp, order) {
  const hidden = new Set([...list.querySelectorAll("button[aria-pressed='false']")].map((b) => b.dataset.id));
  const d0 = resp.settings.kv_dtypes[0];
  const items = resp.models.map((row, n) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.id = row.id;
    button.setAttribute("aria-pressed", hidden.has(row.id) ? "false" : "true");
    button.title = "Show or hide this model's lines";
    const style = modelStyle(order.indexOf(row.id) < 0 ? n : order.indexOf(row.id));
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = style.color;
    swatch.textContent = style.glyph;
    const name = document.createElement("span");
    name.textContent = row.name;
    button.append(swatch, name);
    const same = sameAs(row, d0);
    if (same) {
      const note = document.createElement("span");
      note.className = "same-as";
      note.textContent = ` (${same})`;
      button.append(note);
    }
    if (row.beyond_max) {
      const note = document.createElement("span");
      note.className = "past-max";
      note.textContent = ` ⚠ max ${fmtTokens(row.max_context)}`;
      button.append(note);
    }
    button.addEventListener("click", () => {
      const show = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", String(show));
      setVisible(chart, row.id, show);
    });
    for (const on of ["mouseenter", "focus"]) button.addEventListener(on, () => highlight(chart, row.id));
    for (const off of ["mouseleave", "blur"]) button.addEventListener(off, () => highlight(chart, null));
    li.append(button);
    return li;
  });
  list.replaceChildren(...items);
  hiddenModels.set(chart, new Set());
  for (const id of hidden) setVisible(chart, id, false);
}

/** Fade every line but model `id`'s (null: show all as drawn), its past-max shapes with it. */
function highlight(chart, id) {
  const traces = chart.data ?? [];
  if (!traces.length || !globalThis.Plotly) return;
  const opacity = traces.map((tr) => (id === null || tr.meta === id ? 1 : 0.12));
  globalThis.Plotly.restyle(chart, { opacity });
  const shapes = chart.layout?.shapes ?? [];
  if (shapes.some((s) => s.name)) {
    const faded = shapes.map((s) => (s.name ? { ...s, opacity: id === null || s.name === id ? PAST_OPACITY : 0.12 } : s));
    globalThis.Plotly.relayout(chart, { shapes: faded });
  }
}

function setVisible(chart, id, show) {
  const hidden = hiddenModels.get(chart) ?? new Set();
  hiddenModels.set(chart, hidden);
  if (show) hidden.delete(id);
  else hidden.add(id);
  const idx = (chart.data ?? []).flatMap((tr, i) => (tr.meta === id ? [i] : []));
  if (idx.length) globalThis.Plotly.restyle(chart, { visible: show ? true : "legendonly" }, idx);
  const shapes = chart.layout?.shapes ?? [];
  if (shapes.some((s) => s.name === id)) {
    globalThis.Plotly.relayout(chart, { shapes: shapes.map((s) => (s.name === id ? { ...s, visible: show } : s)) });
  }
}

/** Draw (first time) or update (Plotly.react: no full redraw) one chart; skip it when unchanged
 * (`el.dataset.update` says which: none, marker or full).
 * A figure whose traces are the ones drawn (same `dataKey`) and differs only in its `marker` fields
 * (the chosen context's shapes, the axis ranges and ticks) is updated by one Plotly.relayout of those fields:
 * its traces are not touched, so a context change costs the bars and redrawn shapes. */
const drawnKeys = new WeakMap();
const drawnData = new WeakMap();
export async function draw(el, fig, narrow = isNarrow()) {
  if (fig.key && drawnKeys.get(el) === fig.key) {
    el.dataset.update = "none";
    return el;
  }
  el.dataset.update = "full"; // what this draw did: none | marker | full (app.js then skips the legend)
  if (fig.dataKey && drawnData.get(el) === fig.dataKey && el.data && el.layout) {
    el.dataset.update = "marker";
    await globalThis.Plotly.relayout(el, markerPatch(el, fig.marker));
  } else {
    await globalThis.Plotly.react(el, fig.data, withHidden(el, fig.layout), plotConfig(narrow));
  }
  drawnKeys.set(el, fig.key);
  drawnData.set(el, fig.dataKey);
  return el;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
/** The relayout fields that differ from what `el` shows: the shapes always (replacing the whole
 * array redraws only the shapes), an axis field only when it changed (a range redraws every line,
 * ~10–20 ms; an unchanged tick field passed anyway made it 45–100 ms, measured). Shapes of models
 * hidden from the legend stay hidden. */
function markerPatch(el, marker) {
  const patch = { shapes: hideShapes(el, marker.shapes) };
  for (const [k, v] of Object.entries(marker)) {
    const [ax, field] = k.split(".");
    // only fields that change: an unchanged tick field (even null over unset) costs a recalculation
    if (field && !same(el.layout[ax]?.[field] ?? null, v)) patch[k] = v;
  }
  return patch;
}

const hiddenModels = new WeakMap(); // chart → model ids hidden from its legend
function hideShapes(el, shapes) {
  const hidden = hiddenModels.get(el);
  return hidden?.size ? shapes.map((s) => (s.name && hidden.has(s.name) ? { ...s, visible: false } : s)) : shapes;
}
function withHidden(el, layout) {
  return hiddenModels.get(el)?.size ? { ...layout, shapes: hideShapes(el, layout.shapes ?? []) } : layout;
}

export function plotlyLoaded() {
  return typeof globalThis.Plotly?.react === "function";
}
