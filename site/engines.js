// "One model, several engines": the same model at the same context, batch, cache dtype, TP and GPU
// under each engine, side by side (one bar per engine), with each engine's launch line in its own
// vocabulary. Asks kvcalc.web.compute({op: "compare", engines: [...], models: [one]}); every number
// is the engine module's own. Text only (never HTML); a failure is a sentence, never a blank.
import { fmtGiB, fmtTokens, parseTokens, toGiB } from "./format.js";

const $ = (id) => document.getElementById(id);
const TP = [1, 2, 4, 8];
// Okabe–Ito: distinguishable for colour-blind readers, one per engine of the registry.
const COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
const DEFAULT_MODEL = "meta-llama/Llama-3.1-8B";

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function options(select, items, chosen) {
  select.replaceChildren(...items.map(([value, label]) => {
    const option = el("option", label, { value });
    if (value === chosen) option.selected = true;
    return option;
  }));
}

/** The launch line and terms of one engine for the shown dtype, as one tooltip text. */
export function launchText(launch) {
  if (!launch) return "";
  const terms = Object.entries(launch.terms ?? {}).map(([k, v]) => `${k}: ${v}`);
  return [launch.command, ...terms].filter(Boolean).join("\n");
}

function figure(resp, dtype, labels) {
  const entries = resp.engines.filter((e) => e.row && e.row.cache[dtype] !== undefined);
  const css = getComputedStyle(document.documentElement);
  const fg = css.getPropertyValue("--fg").trim() || "#16181d";
  const grid = css.getPropertyValue("--grid").trim() || "#dfe3ea";
  const names = entries.map((e) => labels[e.engine] ?? e.engine);
  const bytes = entries.map((e) => e.row.cache[dtype]);
  const hover = entries.map((e, i) => [`${names[i]}: ${fmtGiB(bytes[i])} (${bytes[i].toLocaleString("en-US")} bytes)`,
    launchText(e.launch[dtype])].filter(Boolean).join("<br>").replace(/\n/g, "<br>"));
  return {
    data: [{
      type: "bar",
      orientation: "h",
      y: names,
      x: bytes.map(toGiB),
      customdata: bytes,
      marker: { color: entries.map((e) => COLORS[resp.settings.engines.indexOf(e.engine) % COLORS.length]) },
      text: bytes.map(fmtGiB),
      textposition: "auto",
      hovertext: hover,
      hoverinfo: "text",
      name: dtype,
    }],
    layout: {
      margin: { l: 170, r: 20, t: 10, b: 40 },
      height: 60 + 40 * Math.max(entries.length, 1),
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: fg },
      xaxis: { title: { text: "KV cache (GiB)" }, gridcolor: grid, rangemode: "tozero" },
      yaxis: { autorange: "reversed", automargin: true },
      showlegend: false,
    },
  };
}

function renderTable(resp, dtype, labels) {
  const body = $("engines-table").querySelector("tbody");
  body.replaceChildren(...resp.engines.map((e) => {
    const tr = el("tr", null, { "data-engine": e.engine });
    tr.append(el("th", labels[e.engine] ?? e.engine, { scope: "row" }));
    const bytes = e.row?.cache?.[dtype];
    const cache = el("td", bytes === undefined ? "—" : fmtGiB(bytes), { "data-col": "cache" });
    if (bytes !== undefined) cache.dataset.bytes = String(bytes);
    const room = e.row?.room?.bytes;
    const fits = e.row?.fits?.[dtype];
    const roomCell = el("td", room === undefined || room === null ? "—"
      : `${fmtGiB(room)}${fits === true ? " ✓ fits" : fits === false ? " ✗ does not fit" : ""}`, { "data-col": "room" });
    if (e.room_rule) roomCell.title = e.room_rule;
    const launch = e.launch?.[dtype];
    const cmd = el("td", null, { "data-col": "launch" });
    if (launch?.command) cmd.append(el("code", launch.command, { title: launchText(launch) }));
    const terms = Object.entries(launch?.terms ?? {});
    if (terms.length) {
      const list = el("ul", null, { class: "terms" });
      list.append(...terms.map(([k, v]) => {
        const li = el("li");
        li.append(el("code", k), ` ${v}`);
        return li;
      }));
      cmd.append(list);
    }
    const why = [e.error, ...(e.notices ?? [])].filter(Boolean);
    if (why.length) cmd.append(el("p", why.join(" "), { class: e.error ? "error" : "help" }));
    tr.append(cache, roomCell, cmd);
    return tr;
  }));
}

/** Wire the panel: `data` (the page's preloaded models and catalog), `python()` → boot.js client. */
export function initEngines({ data, python }) {
  const cat = data.catalog;
  const panel = $("engines-panel");
  const form = $("engines-form");
  const ids = data.models.map((m) => m.id);
  options($("eng-model"), data.models.map((m) => [m.id, m.name]), ids.includes(DEFAULT_MODEL) ? DEFAULT_MODEL : ids[0]);
  options($("eng-dtype"), cat.dtypes.map((d) => [d, d]), "bf16");
  options($("eng-tp"), TP.map((t) => [String(t), String(t)]), "1");
  options($("eng-gpu"), [["", "none"], ...cat.gpus.map((g) => [g.id, g.name])], cat.default_request.gpu ?? "");
  const box = $("eng-engines");
  box.append(...cat.engines.map((e) => {
    const label = el("label", null, { class: "toggle" });
    const input = el("input", null, { type: "checkbox", value: e, name: "engine" });
    input.checked = true;
    label.append(input, ` ${cat.engine_labels[e] ?? e}`);
    return label;
  }));

  let seq = 0;
  async function compute() {
    const mine = ++seq;
    const error = $("engines-error");
    const ctx = parseTokens($("eng-ctx").value);
    const batch = Number($("eng-batch").value);
    const engines = [...box.querySelectorAll("input:checked")].map((i) => i.value);
    error.textContent = "";
    if (ctx === null) error.textContent = "Context: write a token count such as 32768, 32k or 1M.";
    else if (!Number.isInteger(batch) || batch < 1) error.textContent = "Sequences: a whole number ≥ 1.";
    else if (!engines.length) error.textContent = "Engines: tick at least one.";
    if (error.textContent) return;
    const id = $("eng-model").value;
    const model = data.models.find((m) => m.id === id);
    const dtype = $("eng-dtype").value;
    const req = {
      op: "compare", engines, models: [{ id, name: model.name, config: model.config }], seq_len: ctx,
      batch_size: batch, kv_dtypes: [dtype], tensor_parallel_size: Number($("eng-tp").value),
      gpu: $("eng-gpu").value || null,
    };
    panel.dataset.busy = "true";
    let resp;
    try {
      const client = python();
      await client.ready;
      resp = await client.call(req);
    } catch (err) {
      resp = { ok: false, error: `the calculator could not run (${err.message})` };
    }
    if (mine !== seq) return; // a later change is on its way
    panel.dataset.busy = "false";
    if (!resp.ok) {
      error.textContent = `Could not compare: ${resp.error}`;
      return;
    }
    const labels = cat.engine_labels;
    $("engines-result").hidden = false;
    $("engines-caption").textContent = `${model.name}: KV cache of ${batch} × ${fmtTokens(ctx)} tokens, `
      + `${dtype}, TP ${req.tensor_parallel_size}${req.gpu ? ` on ${$("eng-gpu").selectedOptions[0].text}` : ""}`;
    renderTable(resp, dtype, labels);
    if (typeof globalThis.Plotly?.react === "function") {
      const fig = figure(resp, dtype, labels);
      await globalThis.Plotly.react($("engines-chart"), fig.data, fig.layout, { displayModeBar: false, responsive: true });
    }
    panel.dataset.rev = String(Number(panel.dataset.rev ?? 0) + 1);
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    compute();
  });
  form.addEventListener("change", () => compute());
  panel.addEventListener("toggle", () => {
    if (panel.open && !panel.dataset.rev) compute();
  });
}
