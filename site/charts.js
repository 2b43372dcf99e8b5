// Plotly figures from a kvcalc.web "compare" response: a grouped bar chart at the chosen context and a
// log-log chart of cache vs sequence length. Every text that reaches Plotly is escaped first: Plotly
// renders its own pseudo-HTML in labels, and model names are user data.
import { dtypeLabel, fmtGiB, fmtInt, fmtTokens, toGiB } from "./format.js";

const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#6b6ecf", "#ad494a",
  "#637939", "#e7969c", "#3182bd", "#843c39",
];
const DTYPE_COLORS = ["#3b6fd8", "#f0a030", "#2ca02c", "#9467bd", "#d62728", "#17becf"];
const DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];
/** How each dtype's line is drawn, in words (for the caption). */
export const LINE_STYLES = ["solid", "dashed", "dotted", "dash-dot", "long dash", "long dash-dot"];
const TOKEN_TICKS = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304];
const CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
};

/** Identity of one model's line: it depends on neither the context nor the GPU. */
export function lineKey(id, dtype, engine, tp, batch) {
  return `${id}|${dtype}|${engine}|${tp}|${batch}`;
}

/** Text safe to hand to Plotly (it decodes these entities and shows them literally). */
export function plotText(value) {
  return String(value).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

export function modelColor(index) {
  return PALETTE[index % PALETTE.length];
}

function theme() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return { fg: v("--fg"), muted: v("--muted"), grid: v("--grid"), bg: v("--surface"), accent: v("--accent") };
}

function baseLayout(t, narrow) {
  return {
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: narrow ? 11 : 12, color: t.fg },
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

function gpuLabel(gpu, tp) {
  return `${plotText(gpu.name)}: ${fmtGiB(gpu.bytes)}${tp > 1 ? " per GPU" : ""}`;
}

/** Rows in bar order: largest cache (first dtype) at the top. */
export function barOrder(rows, dtypes) {
  return [...rows].sort((a, b) => b.cache[dtypes[0]] - a.cache[dtypes[0]]);
}

let lastBars = { key: null, traces: null };

export function barFigure(resp, labels, narrow) {
  const t = theme();
  const { kv_dtypes: dtypes, seq_len: seq, tensor_parallel_size: tp } = resp.settings;
  const rows = barOrder(resp.models, dtypes);
  const names = rows.map((r) => plotText(r.name));
  // Same bars as last time (e.g. only the GPU changed): hand Plotly the same objects, so react()
  // sees unchanged data and only redoes the layout.
  const key = JSON.stringify([seq, dtypes, rows.map((r) => [r.id, r.name, dtypes.map((d) => r.cache[d])])]);
  const traces = key === lastBars.key ? lastBars.traces : dtypes.map((d, i) => ({
    type: "bar",
    orientation: "h",
    name: dtypeLabel(d),
    y: names,
    x: rows.map((r) => toGiB(r.cache[d])),
    marker: { color: DTYPE_COLORS[i % DTYPE_COLORS.length] },
    customdata: rows.map((r) => [
      `${fmtGiB(r.cache[d])} (${fmtInt(r.cache[d])} bytes)`,
      `${fmtInt(r.token_bytes[d])} bytes/token` +
        (r.long_token_bytes[d] !== r.token_bytes[d] ? `, ${fmtInt(r.long_token_bytes[d])} past the window` : ""),
      breakdownLines(r, r.breakdown[d], labels),
    ]),
    hovertemplate: `<b>%{y}</b> · ${dtypeLabel(d)} at ${fmtTokens(seq)} tokens<br>%{customdata[0]}<br>%{customdata[1]}<br>%{customdata[2]}<extra></extra>`,
  }));
  lastBars = { key, traces };
  const figureKey = JSON.stringify([key, resp.gpu, tp, narrow, t]);
  const shapes = [];
  const annotations = [];
  if (resp.gpu) {
    const x = toGiB(resp.gpu.bytes);
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1, line: { color: t.muted, width: 1.5, dash: "dash" } });
    annotations.push({ xref: "x", yref: "paper", x, y: 1, yanchor: "bottom", xanchor: "right", showarrow: false, text: gpuLabel(resp.gpu, tp), font: { size: 10, color: t.muted } });
  }
  const perBar = 16 * dtypes.length + 8;
  const layout = {
    ...baseLayout(t, narrow),
    barmode: "group",
    bargap: 0.25,
    height: Math.max(260, 90 + rows.length * perBar),
    // Explicit ranges: Plotly then skips autoranging (and a second layout pass) on every update.
    xaxis: axis(t, {
      title: { text: narrow ? "GiB" : `KV cache at ${fmtTokens(seq)} tokens (GiB)` },
      range: [0, 1.06 * Math.max(1e-9, ...traces.flatMap((tr) => tr.x), resp.gpu ? toGiB(resp.gpu.bytes) : 0)],
    }),
    yaxis: axis(t, { autorange: false, range: [rows.length - 0.5, -0.5], ticklabelstandoff: 4 }),
    uirevision: JSON.stringify([rows.map((r) => r.id), dtypes]),
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    margin: { l: 8, r: 16, t: 36, b: 8 },
    shapes,
    annotations,
  };
  return { data: traces, layout };
}

const lineTraces = new Map(); // key → trace object, reused while its numbers and style are unchanged

export function lineFigure(resp, labels, order, narrow) {
  const t = theme();
  const { kv_dtypes: dtypes, tensor_parallel_size: tp, engine, batch_size: batch } = resp.settings;
  const traces = [];
  const keys = [];
  if (lineTraces.size > 500) lineTraces.clear();
  for (const row of resp.models) {
    const color = modelColor(order.indexOf(row.id) < 0 ? traces.length : order.indexOf(row.id));
    dtypes.forEach((d, i) => {
      const key = [lineKey(row.id, d, engine, tp, batch), row.name, color, i].join("|");
      keys.push(key);
      if (lineTraces.has(key)) {
        traces.push(lineTraces.get(key));
        return;
      }
      const line = row.lines[d];
      const perToken = `${fmtInt(row.token_bytes[d])} bytes/token`;
      lineTraces.set(key, {
        type: "scatter",
        mode: "lines",
        name: plotText(row.name),
        meta: row.id,
        x: line.x,
        y: line.y.map(toGiB),
        line: { color, width: 2, dash: DASHES[i % DASHES.length] },
        customdata: line.x.map((x, j) => {
          const parts = Object.fromEntries(Object.entries(line.parts).map(([k, v]) => [k, v[j]]));
          return [fmtTokens(x), fmtGiB(line.y[j]), breakdownLines(row, parts, labels)];
        }),
        hovertemplate: `<b>%{fullData.name}</b> · ${dtypeLabel(d)}<br>%{customdata[0]} tokens: %{customdata[1]}<br>${perToken}<br>%{customdata[2]}<extra></extra>`,
      });
      traces.push(lineTraces.get(key));
    });
  }
  const shapes = [];
  const annotations = [];
  if (resp.gpu) {
    const y = toGiB(resp.gpu.bytes);
    shapes.push({ type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: y, y1: y, line: { color: t.muted, width: 1.5, dash: "dash" } });
    annotations.push({ xref: "paper", yref: "y", x: 0, y: Math.log10(y), xanchor: "left", yanchor: "bottom", showarrow: false, text: gpuLabel(resp.gpu, tp), font: { size: 10, color: t.muted } });
  }
  // Explicit log ranges (Plotly then skips autoranging on updates): all lines, the GPU line, 5% padding.
  const xs = traces.flatMap((tr) => [tr.x[0], tr.x[tr.x.length - 1]]);
  const ys = traces.flatMap((tr) => tr.y.filter((v) => v > 0));
  if (resp.gpu) ys.push(toGiB(resp.gpu.bytes));
  const pad = (lo, hi) => [Math.log10(lo) - 0.05 * Math.log10(hi / lo || 10), Math.log10(hi) + 0.05 * Math.log10(hi / lo || 10)];
  const xRange = xs.length ? pad(Math.min(...xs), Math.max(...xs)) : [3, 5];
  const yRange = ys.length ? pad(Math.min(...ys), Math.max(...ys)) : [-2, 2];
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
    yaxis: axis(t, {
      type: "log", range: yRange, title: { text: "KV cache (GiB)" }, dtick: 1, exponentformat: "none", tickformat: "~g",
    }),
    uirevision: JSON.stringify([resp.models.map((r) => r.id), dtypes, engine, tp, batch]),
    hovermode: "closest",
    margin: { l: 8, r: 16, t: 24, b: 8 },
    shapes,
    annotations,
  };
  return { data: traces, layout, key: JSON.stringify([keys, resp.gpu, tp, narrow, t]) };
}

/** The line chart's legend as HTML (names as text): one toggle button per model, hiding its lines. */
export function renderLegend(list, chart, resp, order) {
  const hidden = new Set([...list.querySelectorAll("button[aria-pressed='false']")].map((b) => b.dataset.id));
  const items = resp.models.map((row) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.id = row.id;
    button.setAttribute("aria-pressed", hidden.has(row.id) ? "false" : "true");
    button.title = "Show or hide this model's lines";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = modelColor(order.indexOf(row.id) < 0 ? 0 : order.indexOf(row.id));
    const name = document.createElement("span");
    name.textContent = row.name;
    button.append(swatch, name);
    button.addEventListener("click", () => {
      const show = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", String(show));
      setVisible(chart, row.id, show);
    });
    li.append(button);
    return li;
  });
  list.replaceChildren(...items);
  for (const id of hidden) setVisible(chart, id, false);
}

function setVisible(chart, id, show) {
  const idx = (chart.data ?? []).flatMap((tr, i) => (tr.meta === id ? [i] : []));
  if (idx.length) globalThis.Plotly.restyle(chart, { visible: show ? true : "legendonly" }, idx);
}

/** Draw (first time) or update (Plotly.react: no full redraw) one chart; skip it when unchanged. */
const drawnKeys = new WeakMap();
export async function draw(el, fig) {
  if (fig.key && drawnKeys.get(el) === fig.key) return el;
  await globalThis.Plotly.react(el, fig.data, fig.layout, CONFIG);
  drawnKeys.set(el, fig.key);
  return el;
}

export function plotlyLoaded() {
  return typeof globalThis.Plotly?.react === "function";
}
