// "Paste your vLLM log": the page's side of `kvcalc explain`. The worker answers through the one door,
// kvcalc.web.compute({op: "explain", log, models, gpu}) (kvcalc/deploy/explain.py): each memory number
// the log prints, line by line, "reproduced exactly", "within range", "differs" (with the likeliest
// cause) or "not checked". Everything is set as text, never HTML; a failure is a sentence, never blank.
const $ = (id) => document.getElementById(id);

export const STATUS_LABELS = {
  exact: "✔ reproduced exactly",
  "within range": "≈ within kvcalc's range",
  differs: "✘ differs",
  unchecked: "· not checked",
};
const MAX_CANDIDATES = 64;

/** Preloaded models the log may be about: those whose id or short name occurs in it (the worker picks
 * the one the log names; the others cost one cached parse each). */
export function candidates(log, models) {
  const text = log.toLowerCase();
  return models
    .filter((m) => text.includes(m.id.toLowerCase()) || text.includes(m.id.split("/").pop().toLowerCase()))
    .slice(0, MAX_CANDIDATES)
    .map((m) => ({ id: m.id, name: m.name, config: m.config }));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The explain notes speak the command line's flags; on the page the same choices are the selects. */
export function pageWords(note) {
  return note.replace("pass --model CONFIG", "choose the Model above").replace("pass --gpu", "choose the GPU above");
}

function summary(resp) {
  const version = resp.logged_version ? `vLLM ${resp.logged_version}` : "vLLM version not in the log";
  const settings = Object.entries(resp.settings ?? {}).map(([k, v]) => `${k}=${v}`).join(", ");
  return `Model: ${resp.model ?? "unknown"} · GPU: ${resp.gpu ?? "unknown"} · ${version} `
    + `(kvcalc applies its rules for vLLM ${resp.modelled_version})`
    + (settings ? ` · settings: ${settings}` : "");
}

/** The checks grouped by log line: the line as printed, then one verdict per number on it. */
function renderChecks(list, checks) {
  const items = [];
  let current = null;
  let last = null;
  for (const c of checks) {
    if (`${c.line}\u0000${c.text}` !== last) {
      last = `${c.line}\u0000${c.text}`;
      current = el("li", "explain-line");
      current.append(el("span", "explain-where", c.line ? `line ${c.line}` : "published figure"));
      current.append(el("code", "explain-text", c.text));
      current.append(el("ul", "explain-verdicts"));
      items.push(current);
    }
    const verdict = el("li", "explain-verdict");
    verdict.dataset.status = c.status;
    verdict.dataset.kind = c.kind;
    verdict.append(el("strong", "explain-status", STATUS_LABELS[c.status] ?? c.status));
    verdict.append(` (${c.kind}): ${c.detail}`);
    current.querySelector("ul").append(verdict);
  }
  list.replaceChildren(...items);
}

/** Show one answer of the explain op (or its error) in the panel. */
export function renderExplain(resp) {
  const out = $("explain-result");
  const list = $("explain-checks");
  const notes = $("explain-notes");
  const error = $("explain-error");
  out.hidden = false;
  error.textContent = "";
  if (!resp.ok) {
    $("explain-summary").textContent = "";
    list.replaceChildren();
    notes.replaceChildren();
    error.textContent = `Could not read this log: ${resp.error}`;
    out.dataset.outcome = "error";
    return;
  }
  $("explain-summary").textContent = summary(resp);
  renderChecks(list, resp.checks);
  if (!resp.checks.length) {
    list.replaceChildren(el("li", "muted",
      "No vLLM memory lines found: paste the start-up log from `vllm serve` up to “Maximum concurrency” "
      + "(kvcalc looks for “Available KV cache memory”, “GPU KV cache size”, “# GPU blocks”, "
      + "“Maximum concurrency” and “KV cache is needed”)."));
  }
  notes.replaceChildren(...resp.notes.map((n) => el("li", null, pageWords(n))));
  const counts = resp.checks.reduce((acc, c) => ({ ...acc, [c.status]: (acc[c.status] ?? 0) + 1 }), {});
  out.dataset.outcome = !resp.checks.length ? "nothing" : counts.differs ? "differs" : "reproduced";
}

/** Wire the form. `python()` returns the started client ({ready, call}) of boot.js. */
export function initExplain({ models, gpus, python }) {
  const form = $("explain-form");
  const box = $("explain-log");
  const gpu = $("explain-gpu");
  gpu.replaceChildren(el("option", null, "as the log says"), ...gpus.map((g) => {
    const option = el("option", null, g.name);
    option.value = g.id;
    return option;
  }));
  gpu.firstChild.value = "";
  const model = $("explain-model");
  model.replaceChildren(el("option", null, "as the log says"), ...models.map((m) => {
    const option = el("option", null, m.name);
    option.value = m.id;
    return option;
  }));
  model.firstChild.value = "";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const log = box.value;
    if (!log.trim()) {
      renderExplain({ ok: false, error: "log: paste the start-up log of `vllm serve` first." });
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    $("explain-status").textContent = "Checking the log…";
    let resp;
    try {
      const client = python();
      await client.ready;
      const chosen = models.find((m) => m.id === model.value);
      const forced = chosen ? { id: chosen.id, name: chosen.name, config: chosen.config } : null;
      resp = await client.call({
        op: "explain", log, models: forced ? [] : candidates(log, models), model: forced, gpu: gpu.value || null,
      });
    } catch (error) {
      resp = { ok: false, error: `the calculator could not run (${error.message})` };
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
      $("explain-status").textContent = "";
    }
    renderExplain(resp);
  });
}
