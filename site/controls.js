// The controls: model picker (searchable, grouped by family) with chips, context (log slider + text),
// batch, cache dtypes, engine, tensor parallel, GPU. Each user action calls onChange(patch).
import { dtypeLabel, fmtGiB, fmtInt, fmtTokens, parseTokens } from "./format.js";
import { MAX_BATCH, MAX_DTYPES, TP_CHOICES } from "./state.js";

const $ = (id) => document.getElementById(id);

/** Slider stops: 1K, 1.5K, 2K, 3K … 8M, 10M (a log scale people recognise). */
export const CONTEXT_STOPS = (() => {
  const stops = [];
  for (let p = 10; p <= 23; p++) stops.push(2 ** p, 3 * 2 ** (p - 1));
  return [...stops.filter((n) => n <= 8 * 2 ** 20), 10_000_000].sort((a, b) => a - b);
})();

function nearestStop(n) {
  let best = 0;
  CONTEXT_STOPS.forEach((s, i) => {
    if (Math.abs(Math.log(s / n)) < Math.abs(Math.log(CONTEXT_STOPS[best] / n))) best = i;
  });
  return best;
}

const tokensHelp = (seq) => `${fmtInt(seq)} tokens · type e.g. 32768, 128k, 1M, or press ↑/↓ for the slider's stops`;

function node(tag, props = {}, text) {
  const el = document.createElement(tag);
  Object.assign(el, props);
  if (text !== undefined) el.textContent = text;
  return el;
}

export class Controls {
  constructor({ data, onChange, styleOf }) {
    this.data = data;
    this.onChange = onChange;
    this.styleOf = styleOf;
    this.custom = [];
    this.state = null;
    this.buildStatic();
    this.bind();
  }

  buildStatic() {
    const { catalog } = this.data;
    const more = $("dtype-more");
    for (const d of catalog.dtypes) {
      if (d === "bf16" || d === "fp8") continue;
      const label = node("label", { className: "toggle small" });
      label.append(node("input", { type: "checkbox", value: d, name: "dtype-more" }), ` ${dtypeLabel(d)}`);
      more.append(label);
    }
    // Every engine kvcalc's registry offers (the catalog op), in its order.
    const labels = catalog.engine_labels ?? {};
    $("engine").append(...catalog.engines.map((e) => node("option", { value: e }, labels[e] ?? e)));
    const tp = $("tp");
    for (const n of TP_CHOICES) tp.append(node("option", { value: String(n) }, n === 1 ? "1 (one GPU)" : `${n} GPUs`));
    const gpu = $("gpu");
    gpu.append(node("option", { value: "" }, "none"));
    const groups = new Map();
    for (const g of catalog.gpus) {
      if (!groups.has(g.vendor)) groups.set(g.vendor, node("optgroup", { label: g.vendor }));
      const name = g.name.startsWith(`${g.vendor} `) ? g.name.slice(g.vendor.length + 1) : g.name;
      groups.get(g.vendor).append(node("option", { value: g.id }, `${name} — ${fmtGiB(g.bytes)}`));
    }
    gpu.append(...groups.values());
    const range = $("ctx-range");
    range.max = String(CONTEXT_STOPS.length - 1);
  }

  bind() {
    const range = $("ctx-range");
    const text = $("ctx-text");
    const help = $("ctx-help");
    range.addEventListener("input", () => {
      const seq = CONTEXT_STOPS[Number(range.value)];
      text.value = fmtTokens(seq);
      help.textContent = tokensHelp(seq);
      help.classList.remove("error");
      range.setAttribute("aria-valuetext", `${fmtTokens(seq)} tokens`);
      this.onChange({ seq });
    });
    text.addEventListener("input", () => {
      const seq = parseTokens(text.value);
      if (seq === null) {
        help.textContent = "Not a context length: try 32768, 128k or 1M (1 to 10,000,000 tokens; K = 1,024, so 10M = 10,485,760 is past it).";
        help.classList.add("error");
        return;
      }
      help.textContent = tokensHelp(seq);
      help.classList.remove("error");
      range.value = String(nearestStop(seq));
      range.setAttribute("aria-valuetext", `${fmtTokens(seq)} tokens`);
      this.onChange({ seq });
    });
    // Chromium's accessibility tree reads a range input's bare value ("14"), never its aria-valuetext,
    // so the slider is hidden from assistive technology and the labelled text field takes its keys:
    // ↑/↓ step through the slider's stops (the field then reads "192K").
    text.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
      e.preventDefault();
      const at = nearestStop(parseTokens(text.value) ?? this.state.seq);
      const cur = CONTEXT_STOPS[at];
      const seq = this.state.seq;
      // from a typed value between stops, the first step goes to the stop on that side
      let next = at + (e.key === "ArrowUp" ? 1 : -1);
      if (e.key === "ArrowUp" && cur > seq) next = at;
      if (e.key === "ArrowDown" && cur < seq) next = at;
      next = Math.max(0, Math.min(CONTEXT_STOPS.length - 1, next));
      range.value = String(next);
      range.dispatchEvent(new Event("input", { bubbles: true }));
    });
    text.addEventListener("change", () => {
      if (parseTokens(text.value) !== null) return;
      text.value = fmtTokens(this.state.seq); // back to the value shown: its error goes too
      help.textContent = tokensHelp(this.state.seq);
      help.classList.remove("error");
    });

    const batch = $("batch");
    const batchHelp = $("batch-help");
    const batchOk = () => {
      batch.removeAttribute("aria-invalid");
      batchHelp.textContent = "";
      batchHelp.classList.remove("error");
    };
    batch.addEventListener("input", () => {
      // A number input reports "" for text it cannot parse ("1e3" parses, "1.5" and "-1" are refused below).
      const b = /^\d+$/.test(batch.value) ? Number(batch.value) : NaN;
      if (b >= 1 && b <= MAX_BATCH) {
        batchOk();
        this.onChange({ batch: b });
      } else {
        batch.setAttribute("aria-invalid", "true");
        batchHelp.textContent = `Not a batch size: a whole number of sequences from 1 to ${fmtInt(MAX_BATCH)}. Still showing batch ${fmtInt(this.state.batch)}.`;
        batchHelp.classList.add("error");
      }
    });
    batch.addEventListener("change", () => {
      if (batch.getAttribute("aria-invalid")) {
        batch.value = String(this.state.batch);
        batchOk();
      }
    });

    const dtypeBoxes = () => [$("dt-bf16"), $("dt-fp8"), ...document.querySelectorAll("#dtype-more input")];
    for (const box of dtypeBoxes()) {
      box.addEventListener("change", () => {
        const picked = dtypeBoxes().filter((b) => b.checked).map((b) => b.value);
        const help = $("dtype-help");
        if (!picked.length || picked.length > MAX_DTYPES) {
          box.checked = !box.checked;
          help.textContent = picked.length ? `At most ${MAX_DTYPES} cache dtypes at once.` : "Keep at least one cache dtype.";
          help.classList.add("error");
          return;
        }
        help.textContent = "";
        help.classList.remove("error");
        this.onChange({ dtypes: picked });
      });
    }
    $("engine").addEventListener("change", (e) => this.onChange({ engine: e.target.value }));
    $("tp").addEventListener("change", (e) => this.onChange({ tp: Number(e.target.value) }));
    $("gpu").addEventListener("change", (e) => this.onChange({ gpu: e.target.value }));

    // On phones the chips collapse to a count; the button shows or hides them.
    $("chips-toggle").addEventListener("click", () => {
      const open = $("chips-toggle").getAttribute("aria-expanded") !== "true";
      $("chips-toggle").setAttribute("aria-expanded", String(open));
      $("chips").classList.toggle("open", open);
    });
    const search = $("model-search");
    search.addEventListener("input", () => this.filterPicker(search.value));
    search.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      e.preventDefault();
      const first = document.querySelector("#model-groups label:not([hidden]) input:not(:checked)");
      if (first) {
        first.checked = true;
        first.dispatchEvent(new Event("change", { bubbles: true }));
        $("model-search-help").textContent = `Added ${this.nameOf(first.value)}.`;
      }
    });
    $("model-groups").addEventListener("change", (e) => {
      if (e.target.type !== "checkbox") return;
      const id = e.target.value;
      const models = e.target.checked
        ? [...this.state.models.filter((m) => m !== id), id]
        : this.state.models.filter((m) => m !== id);
      this.onChange({ models });
    });
  }

  /** All models the picker offers: preloaded entries by family, then the user's own. */
  entries() {
    return [
      ...this.data.models.map((m) => ({ id: m.id, name: m.name, family: m.family || "Other" })),
      ...this.custom.map((c) => ({ id: c.id, name: c.name || c.id, family: "Your models" })),
    ];
  }

  nameOf(id) {
    return this.entries().find((e) => e.id === id)?.name ?? id;
  }

  buildPicker() {
    const groups = new Map();
    for (const e of this.entries()) {
      if (!groups.has(e.family)) groups.set(e.family, []);
      groups.get(e.family).push(e);
    }
    const box = $("model-groups");
    const frag = document.createDocumentFragment();
    for (const [family, items] of groups) {
      const fs = node("fieldset", { className: "group" });
      fs.append(node("legend", {}, family));
      for (const e of items) {
        const label = node("label", { className: "pick" });
        label.dataset.search = `${e.name} ${e.id} ${family}`.toLowerCase();
        label.append(node("input", { type: "checkbox", value: e.id }), ` ${e.name}`);
        fs.append(label);
      }
      frag.append(fs);
    }
    box.replaceChildren(frag);
    this.filterPicker($("model-search").value);
  }

  /** Show the models whose name, id or family hold every word of the query ("llama 3.1" finds
   * Llama-3.1-8B); say when none does; Enter adds the first shown. */
  filterPicker(query) {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const fs of document.querySelectorAll("#model-groups fieldset")) {
      let any = false;
      for (const label of fs.querySelectorAll("label")) {
        const hit = words.every((w) => label.dataset.search.includes(w));
        label.hidden = !hit;
        any ||= hit;
        shown += hit ? 1 : 0;
      }
      fs.hidden = !any;
    }
    const help = $("model-search-help");
    if (help) help.textContent = !words.length ? "" : shown ? `${shown} match${shown === 1 ? "" : "es"} · Enter adds the first` : "No matches.";
  }

  setCustom(custom) {
    this.custom = custom;
    this.buildPicker();
  }

  renderChips() {
    const chips = $("chips");
    const frag = document.createDocumentFragment();
    this.state.models.forEach((id, i) => {
      const li = node("li", { className: "chip" });
      li.dataset.id = id;
      const style = this.styleOf(i);
      const swatch = node("span", { className: "swatch" }, style.glyph);
      swatch.style.background = style.color;
      const name = this.nameOf(id);
      const remove = node("button", { type: "button", className: "chip-x" }, "×");
      remove.setAttribute("aria-label", `Remove ${name}`);
      remove.addEventListener("click", () => {
        const next = this.state.models[i + 1] ?? this.state.models[i - 1];
        this.onChange({ models: this.state.models.filter((m) => m !== id) });
        // Focus stays in the chips (the next one's ×), not on <body>.
        const target = next ? document.querySelector(`#chips li[data-id="${CSS.escape(next)}"] .chip-x`) : $("picker").querySelector("summary");
        target?.focus();
      });
      li.append(swatch, node("span", {}, name), remove);
      frag.append(li);
    });
    if (!this.state.models.length) frag.append(node("li", { className: "chip empty" }, "No models selected"));
    chips.replaceChildren(frag);
    const n = this.state.models.length;
    $("chips-toggle").textContent = `${n} model${n === 1 ? "" : "s"} selected`;
  }

  /** Show `state` in every control (without firing onChange). */
  sync(state) {
    this.state = state;
    const text = $("ctx-text");
    if (parseTokens(text.value) !== state.seq) text.value = fmtTokens(state.seq);
    $("ctx-range").value = String(nearestStop(state.seq));
    $("ctx-range").setAttribute("aria-valuetext", `${fmtTokens(state.seq)} tokens`);
    $("ctx-help").textContent = tokensHelp(state.seq);
    $("ctx-help").classList.remove("error");
    if (Number($("batch").value) !== state.batch) $("batch").value = String(state.batch);
    for (const box of [$("dt-bf16"), $("dt-fp8"), ...document.querySelectorAll("#dtype-more input")]) {
      box.checked = state.dtypes.includes(box.value);
    }
    // A chosen dtype is never hidden behind a collapsed "More".
    if (state.dtypes.some((d) => d !== "bf16" && d !== "fp8")) document.querySelector(".more-dtypes").open = true;
    $("engine").value = state.engine;
    $("tp").value = String(state.tp);
    $("tp").disabled = state.engine === "transformers" || state.engine === "llama.cpp"; // one device
    $("gpu").value = state.gpu;
    const selected = new Set(state.models);
    for (const box of document.querySelectorAll("#model-groups input")) box.checked = selected.has(box.value);
    this.renderChips();
  }
}
