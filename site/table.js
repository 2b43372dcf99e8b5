// The sortable comparison table and its CSV export. Cells are built with textContent only; byte
// columns carry the exact integer in data-bytes (what the tests compare with kvcalc in Python).
import { dtypeLabel, fmtGiB, fmtInt, fmtTokens } from "./format.js";

const el = (tag, props = {}, text) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  if (text !== undefined) node.textContent = text;
  return node;
};

function fitsText(row, dtypes) {
  const known = dtypes.filter((d) => row.fits[d] !== null && row.fits[d] !== undefined);
  if (!known.length) return "—";
  const yes = known.filter((d) => row.fits[d]);
  if (yes.length === known.length) return "yes";
  if (!yes.length) return "no";
  return `${yes.map(dtypeLabel).join(", ")} only`;
}

/** Column definitions for the current settings. */
export function columns(resp) {
  const { kv_dtypes: dtypes, seq_len: seq, tensor_parallel_size: tp } = resp.settings;
  const ctx = fmtTokens(seq);
  const d0 = dtypes[0];
  const gpu = resp.gpu ? resp.gpu.name.replace(/^(NVIDIA|AMD|Apple)\s+/, "") : "GPU";
  return [
    { key: "name", label: "Model", kind: "text", value: (r) => r.name },
    { key: "attention", label: "Attention", kind: "text", value: (r) => r.attention },
    { key: "layers", label: "Layers", kind: "int", value: (r) => r.layers },
    { key: "kv_heads", label: "KV heads", kind: "int", value: (r) => r.kv_heads },
    { key: "head_dim", label: "head_dim", kind: "int", value: (r) => r.head_dim, text: (r) => r.head_dim_label },
    {
      key: "token_bytes", label: `Bytes/token (${dtypeLabel(d0)})`, kind: "int",
      value: (r) => r.token_bytes[d0], title: "K+V bytes one more token adds at short context",
    },
    ...dtypes.map((d) => ({ key: `cache:${d}`, label: `Cache ${dtypeLabel(d)} @ ${ctx}`, kind: "bytes", value: (r) => r.cache[d] })),
    {
      key: "weights", label: tp > 1 ? "Weights (all GPUs)" : "Weights", kind: "bytes",
      value: (r) => r.weights, cellTitle: weightsTitle,
    },
    ...dtypes.map((d) => ({
      key: `total:${d}`, label: tp > 1 ? `Per GPU, ${dtypeLabel(d)} (TP ${tp})` : `Total ${dtypeLabel(d)}`,
      kind: "bytes", value: (r) => r.total[d], title: "weights on one GPU + cache",
    })),
    { key: "fits", label: `Fits ${gpu}`, kind: "text", value: (r) => fitsText(r, dtypes) },
  ];
}

const billions = (n) => `${(n / 1e9).toLocaleString("en-US", { maximumFractionDigits: 1 })} B`;

function weightsTitle(r) {
  const parts = [];
  if (r.weights_format) parts.push(r.weights_format);
  if (r.params) {
    const active = r.params.active !== r.params.total ? ` (${billions(r.params.active)} active)` : "";
    parts.push(`${billions(r.params.total)} parameters${active}${r.params.exact ? "" : ", estimated"}`);
  }
  return parts.join(" · ");
}

function compare(a, b, kind) {
  if (a === null || a === undefined) return b === null || b === undefined ? 0 : 1;
  if (b === null || b === undefined) return -1;
  return kind === "text" ? String(a).localeCompare(String(b)) : a - b;
}

const listText = (items) => (items.length > 1 ? `${items.slice(0, -1).join(", ")} and ${items.at(-1)}` : items.join(""));

/** Tooltip of the "measured exact" badge, from the build-time validation data. */
export function exactTitle(validation, entry) {
  const seqs = listText(entry.seq_lens.map(String));
  const dtypes = listText(entry.dtypes.map(String));
  const batches = entry.batches ? `, batch ${listText(entry.batches.map(String))}` : "";
  const decode = entry.decode_steps?.includes(1) ? ", after the prefill and after one decode step" : "";
  return `cache bytes and parameters match transformers ${validation.transformers} at ${seqs} tokens in ${dtypes}${batches}${decode}`;
}

/** Engines whose cache the validation measured: transformers' own, and the ideal cache, which equals it. */
const MEASURED_ENGINES = new Set(["ideal", "transformers"]);

function nameCell(row, validation, engine) {
  const td = el("th", { scope: "row", dataset: { col: "name" } });
  td.append(el("span", { class: "model-name" }, row.name));
  // Only preloaded models are in the validation map (custom models have ids "custom-N").
  const measured = validation && Object.hasOwn(validation.models, row.id) ? validation.models[row.id] : null;
  if (measured?.exact === true && MEASURED_ENGINES.has(engine)) {
    // Focusable, and its text readable without hovering (touch, keyboard, screen readers).
    const what = exactTitle(validation, measured);
    td.append(el("span", { class: "badge exact", title: what, tabindex: "0", "aria-label": `measured exact: ${what}` }, "✔ measured exact"));
  }
  if (!row.verified) td.append(el("span", { class: "badge warn", title: row.notes.join("; ") }, "unverified"));
  if (row.beyond_max) {
    td.append(el("span", { class: "badge", title: "the chosen context is past this model's max_position_embeddings" },
      `max ${fmtTokens(row.max_context)}`));
  }
  return td;
}

/**
 * Render the table; `sort` = {key, dir: 1|-1}; onSort(key) when a header is clicked. `validation`:
 * the build-time {transformers, models: {id: {exact, seq_lens, dtypes}}} (badges), or null.
 */
export function renderTable(table, resp, sort, onSort, validation = null) {
  const cols = columns(resp);
  const col = cols.find((c) => c.key === sort.key) ?? cols.find((c) => c.key.startsWith("cache:"));
  const rows = [...resp.models].sort((a, b) => sort.dir * compare(col.value(a), col.value(b), col.kind));

  const head = el("tr");
  for (const c of cols) {
    const th = el("th", { scope: "col", class: c.kind === "text" ? "" : "num" });
    if (c === col) th.setAttribute("aria-sort", sort.dir > 0 ? "ascending" : "descending");
    const button = el("button", { type: "button", dataset: { sort: c.key } }, c.label);
    if (c.title) button.title = c.title;
    button.addEventListener("click", () => onSort(c.key, c.kind));
    th.append(button);
    head.append(th);
  }
  table.tHead.replaceChildren(head);

  const body = document.createDocumentFragment();
  for (const r of rows) {
    const tr = el("tr", { dataset: { id: r.id } });
    for (const c of cols) {
      if (c.key === "name") {
        tr.append(nameCell(r, validation, resp.settings.engine));
        continue;
      }
      const v = c.value(r);
      const text = c.text ? c.text(r) : c.kind === "bytes" ? fmtGiB(v) : c.kind === "int" ? fmtInt(v) : v;
      const td = el("td", { class: c.kind === "text" ? "" : "num", dataset: { col: c.key } }, text ?? "—");
      if (c.kind === "bytes" && v !== null && v !== undefined) td.dataset.bytes = String(v);
      if (c.kind === "int" && v !== null && v !== undefined) td.dataset.value = String(v);
      if (c.key === "fits") td.dataset.fits = text;
      if (c.cellTitle) td.title = c.cellTitle(r);
      tr.append(td);
    }
    body.append(tr);
  }
  table.tBodies[0].replaceChildren(body);
  table.caption.textContent = `KV cache and memory per model at ${fmtTokens(resp.settings.seq_len)} tokens, sorted by ${col.label}`;
}

function csvField(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`; // no formulas when opened in a spreadsheet
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** CSV of the current rows in `order` (the table's row ids, as sorted): exact bytes plus GiB, one row
 * per model, UTF-8 with a byte-order mark (so spreadsheet apps read the names right). */
export function tableCSV(resp, order = null) {
  const { kv_dtypes: dtypes } = resp.settings;
  const header = ["id", "model", "attention", "layers", "kv_heads", "head_dim", "context_tokens", "batch_size", "engine", "tensor_parallel_size", "gpu", "room_for_kv_bytes"];
  for (const d of dtypes) header.push(`bytes_per_token_${d}`, `cache_bytes_${d}`, `cache_gib_${d}`);
  header.push("weights_bytes", "weights_format");
  for (const d of dtypes) header.push(`total_per_gpu_bytes_${d}`, `fits_${d}`);
  const lines = [header.join(",")];
  const s = resp.settings;
  const byId = new Map(resp.models.map((r) => [r.id, r]));
  const rows = order ? order.map((id) => byId.get(id)).filter(Boolean) : resp.models;
  for (const r of rows) {
    const row = [r.id, r.name, r.attention, r.layers, r.kv_heads, r.head_dim, s.seq_len, s.batch_size, s.engine, s.tensor_parallel_size, resp.gpu?.id ?? "", r.room?.bytes];
    for (const d of dtypes) row.push(r.token_bytes[d], r.cache[d], (r.cache[d] / 2 ** 30).toFixed(6));
    row.push(r.weights, r.weights_format);
    for (const d of dtypes) row.push(r.total[d], r.fits[d]);
    lines.push(row.map(csvField).join(","));
  }
  return `\ufeff${lines.join("\r\n")}\r\n`;
}

/** Contexts the line data table lists: the powers of two every line holds (series.context_points),
 * from the shortest line's start to the longest line's end. */
export function dataContexts(resp) {
  const lines = resp.models.flatMap((m) => Object.values(m.lines ?? {}));
  if (!lines.length) return [];
  const lo = Math.min(...lines.map((l) => l.x[0]));
  const hi = Math.max(...lines.map((l) => l.x[l.x.length - 1]));
  const out = [];
  for (let x = 1; x <= hi; x *= 2) if (x >= lo) out.push(x);
  return out;
}

/** The log–log chart as a table (its text alternative): one row per context, one column per model and
 * cache dtype, each cell the line's exact bytes there ("—" past that model's max context). */
export function renderLineData(node, resp) {
  const dtypes = resp.settings.kv_dtypes;
  const cols = resp.models.flatMap((m) => dtypes.filter((d) => m.lines?.[d]).map((d) => [m, d]));
  const head = el("tr");
  head.append(el("th", { scope: "col" }, "Tokens"));
  for (const [m, d] of cols) head.append(el("th", { scope: "col" }, dtypes.length > 1 ? `${m.name} (${dtypeLabel(d)})` : m.name));
  const body = dataContexts(resp).map((x) => {
    const tr = el("tr");
    tr.append(el("th", { scope: "row" }, fmtTokens(x)));
    for (const [m, d] of cols) {
      const line = m.lines[d];
      const i = line.x.indexOf(x);
      tr.append(i < 0 ? el("td", {}, "—") : el("td", { dataset: { bytes: String(line.y[i]) } }, fmtGiB(line.y[i])));
    }
    return tr;
  });
  const table = el("table", { class: "line-data" });
  const batch = resp.settings.batch_size;
  table.append(
    el("caption", {}, `KV cache per context${batch > 1 ? `, batch ${batch}` : ""} (the log–log chart's numbers)`),
    el("thead"), el("tbody"),
  );
  table.tHead.append(head);
  table.tBodies[0].append(...body);
  node.replaceChildren(table);
}
