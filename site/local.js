// Local mode, "will it fit on my machine": llama.cpp on a GPU (+ system RAM) or a Mac. Asks
// kvcalc.web.compute({op: "local", …}) (kvcalc/web/local.py → kvcalc/deploy/llamacpp_plan.py) and
// shows the -ngl that fits and a stacked bar: weights on GPU / on CPU, KV cache, compute buffer.
// Text only (never HTML); a failure is a sentence, never a blank.
import { fmtGiB, parseTokens, toGiB } from "./format.js";

const $ = (id) => document.getElementById(id);
const DEFAULT_MODEL = "meta-llama/Llama-3.1-8B";
const DEFAULT_GPU = "rtx-4090";
export const PART_LABELS = { weights: "Weights", kv: "KV cache", compute: "Compute buffer (llama.cpp --fit margin)" };
const PART_COLORS = { weights: "#0072B2", kv: "#E69F00", compute: "#999999" };

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function fill(select, items, chosen) {
  select.replaceChildren(...items.map(([value, label]) => {
    const option = el("option", label, { value });
    if (value === chosen) option.selected = true;
    return option;
  }));
}

/** Where each part lives, in words: a Mac has one memory (the GPU's working set and the rest). */
export function placeLabel(where, resp) {
  if (resp.unified) return where === "gpu" ? "GPU working set" : "Rest of unified memory (CPU)";
  return where === "gpu" ? `GPU${resp.gpu_bytes.length > 1 ? `s (${resp.gpu_bytes.length})` : ""}` : "System RAM (CPU)";
}

function figure(resp) {
  const css = getComputedStyle(document.documentElement);
  const fg = css.getPropertyValue("--fg").trim() || "#16181d";
  const grid = css.getPropertyValue("--grid").trim() || "#dfe3ea";
  const places = ["gpu", "cpu"].map((w) => placeLabel(w, resp));
  const data = ["weights", "kv", "compute"].map((part) => {
    const bytes = ["gpu", "cpu"].map((w) => resp.parts.find((p) => p.part === part && p.where === w)?.bytes ?? 0);
    return {
      type: "bar",
      orientation: "h",
      name: PART_LABELS[part],
      y: places,
      x: bytes.map(toGiB),
      customdata: bytes,
      marker: { color: PART_COLORS[part] },
      hovertext: bytes.map((b, i) => `${PART_LABELS[part]} · ${places[i]}: ${fmtGiB(b)} (${b.toLocaleString("en-US")} bytes)`),
      hoverinfo: "text",
    };
  });
  const budget = resp.gpu_budget_bytes.reduce((a, b) => a + b, 0) + resp.fit_margin_total;
  return {
    data,
    layout: {
      barmode: "stack",
      margin: { l: 190, r: 20, t: 10, b: 40 },
      height: 200,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: fg },
      xaxis: { title: { text: "GiB" }, gridcolor: grid, rangemode: "tozero" },
      yaxis: { autorange: "reversed", automargin: true },
      legend: { orientation: "h", y: -0.35 },
      shapes: [{
        type: "line", x0: toGiB(budget), x1: toGiB(budget), y0: -0.45, y1: 0.45, yref: "y",
        line: { color: fg, width: 2, dash: "dot" },
      }],
      annotations: [{ x: toGiB(budget), y: -0.5, yref: "y", text: "GPU memory", showarrow: false, font: { size: 11 } }],
    },
  };
}

function verdict(resp) {
  if (!resp.fits) return `Does not fit on ${resp.machine}: even with -ngl ${resp.n_gpu_layers} it needs more memory than there is.`;
  if (resp.all_on_gpu) return `Fits: -ngl ${resp.n_gpu_layers}, every layer on the GPU (${resp.offloaded}).`;
  return `Fits with -ngl ${resp.n_gpu_layers}: ${resp.offloaded}; ${resp.n_layer + 1 - resp.n_gpu_layers} run on the CPU (slower).`;
}

function render(resp) {
  $("local-result").hidden = false;
  const out = $("local-verdict");
  out.textContent = verdict(resp);
  out.dataset.fits = resp.fits ? "yes" : "no";
  $("local-ngl").textContent = String(resp.n_gpu_layers);
  $("local-command").textContent = resp.command;
  const body = $("local-table").querySelector("tbody");
  body.replaceChildren(...resp.parts.map((p) => {
    const tr = el("tr", null, { "data-part": p.part, "data-where": p.where });
    tr.append(el("th", PART_LABELS[p.part], { scope: "row" }), el("td", placeLabel(p.where, resp)));
    tr.append(el("td", fmtGiB(p.bytes), { "data-bytes": String(p.bytes) }));
    return tr;
  }));
  $("local-notes").replaceChildren(...[...resp.notes, `${resp.build}: llama.cpp would print:`].map((n) => el("li", n)),
    ...resp.kv_log.map((line) => el("li", null).appendChild(el("code", line)).parentNode));
}

/** Wire the panel: `data` (the page's preloaded models), `python()` → boot.js client. */
export function initLocal({ data, python }) {
  const panel = $("local-panel");
  const form = $("local-form");
  const error = $("local-error");
  let catalog = null;
  let seq = 0;
  const ids = data.models.map((m) => m.id);
  fill($("local-model"), data.models.map((m) => [m.id, m.name]), ids.includes(DEFAULT_MODEL) ? DEFAULT_MODEL : ids[0]);

  async function client() {
    const c = python();
    await c.ready;
    return c;
  }

  async function loadCatalog() {
    const resp = await (await client()).call({ op: "local_catalog" });
    if (!resp.ok) throw new Error(resp.error);
    catalog = resp;
    fill($("local-quant"), resp.quants.map((q) => [q, q]), resp.default_quant);
    const machine = $("local-machine");
    const gpus = el("optgroup", null, { label: "GPU + system RAM" });
    const macs = el("optgroup", null, { label: "Mac (unified memory)" });
    fill(gpus, resp.gpus.map((g) => [`gpu:${g.id}`, g.name]), `gpu:${DEFAULT_GPU}`);
    fill(macs, resp.macs.map((m) => [`mac:${m.id}`, m.name]), null);
    machine.replaceChildren(gpus, macs);
    machine.value = `gpu:${DEFAULT_GPU}`;
    for (const id of ["local-ctk", "local-ctv"]) fill($(id), resp.cache_types.map((t) => [t, t]), "f16");
    syncMachine();
  }

  function syncMachine() {
    const mac = $("local-machine").value.startsWith("mac:");
    $("local-gpu-extra").hidden = mac;
    $("local-mac-extra").hidden = !mac;
  }

  function request() {
    const ctx = parseTokens($("local-ctx").value);
    const np = Number($("local-np").value);
    if (ctx === null) throw new Error("-c: write a token count such as 32768, 32k or 128k.");
    if (!Number.isInteger(np) || np < 1) throw new Error("-np: a whole number ≥ 1.");
    const [kind, id] = $("local-machine").value.split(/:(.*)/s);
    const wired = $("local-wired").value.trim();
    if (kind === "mac" && wired && !(Number.isInteger(Number(wired)) && Number(wired) > 0)) {
      throw new Error("iogpu.wired_limit_mb: a whole number of MB, or empty for macOS's default.");
    }
    const machine = kind === "mac" ? { mac: id, wired_limit_mb: wired ? Number(wired) : null }
      : { gpu: id, count: Number($("local-count").value), ram_gb: Number($("local-ram").value) };
    const model = data.models.find((m) => m.id === $("local-model").value);
    const moe = $("local-moe").value;
    return {
      op: "local", model: { id: model.id, name: model.name, config: model.config }, quant: $("local-quant").value,
      machine, n_ctx: ctx, n_parallel: np, type_k: $("local-ctk").value, type_v: $("local-ctv").value,
      n_cpu_moe: moe === "auto" ? "auto" : Number(moe),
    };
  }

  async function compute() {
    const mine = ++seq;
    error.textContent = "";
    panel.dataset.busy = "true";
    let resp;
    try {
      if (!catalog) await loadCatalog();
      resp = await (await client()).call(request());
    } catch (err) {
      resp = { ok: false, error: err.message };
    }
    if (mine !== seq) return;
    panel.dataset.busy = "false";
    if (!resp.ok) {
      error.textContent = `Could not plan: ${resp.error}`;
      $("local-result").hidden = true;
    } else {
      resp.fit_margin_total = catalog.fit_margin_bytes * (resp.unified ? 1 : resp.gpu_bytes.length);
      render(resp);
      if (typeof globalThis.Plotly?.react === "function") {
        const fig = figure(resp);
        await globalThis.Plotly.react($("local-chart"), fig.data, fig.layout, { displayModeBar: false, responsive: true });
      }
    }
    panel.dataset.rev = String(Number(panel.dataset.rev ?? 0) + 1);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    compute();
  });
  form.addEventListener("change", (event) => {
    if (event.target.id === "local-machine") syncMachine();
    compute();
  });
  panel.addEventListener("toggle", () => {
    if (panel.open && !panel.dataset.rev) compute();
  });
}
