// Custom models: a pasted config.json, or one fetched from the Hugging Face Hub on the Fetch click —
// the only request this page ever makes outside its own site. Messages are set as text, never HTML.
const $ = (id) => document.getElementById(id);
const HF_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const FETCH_TIMEOUT_MS = 15000;

export function hfConfigURL(id) {
  const [owner, name] = id.split("/");
  return `https://huggingface.co/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/resolve/main/config.json`;
}

/** Why a Hub fetch failed, in words a person can act on. */
export function hfMessage(id, { status, error }) {
  if (status === 404) {
    return `Not found: huggingface.co has no config.json for “${id}”. Check the id (owner/model, case-sensitive).`;
  }
  if (status === 401 || status === 403) {
    return `“${id}” is gated or private (HTTP ${status}): accept its licence on huggingface.co, download its config.json and paste it here instead.`;
  }
  if (status) return `huggingface.co answered HTTP ${status} for “${id}”. Try again later, or paste its config.json.`;
  if (error?.name === "AbortError") return `huggingface.co did not answer within ${FETCH_TIMEOUT_MS / 1000} s. Try again, or paste the config.json.`;
  if (!navigator.onLine) return "You are offline: connect to fetch from huggingface.co, or paste the config.json.";
  return "Could not reach huggingface.co: the request failed (network down, blocked, or refused by CORS). Download the config.json and paste it instead.";
}

async function fetchConfig(id) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch(hfConfigURL(id), { credentials: "omit", signal: abort.signal });
    if (!res.ok) return { failure: { status: res.status } };
    return { text: await res.text() };
  } catch (error) {
    return { failure: { error } };
  } finally {
    clearTimeout(timer);
  }
}

/** The confirmation under a form once a model is added, or found already added. */
export function addedMessage({ name, duplicate }) {
  return duplicate
    ? `Already added as “${name}”: it is selected in the charts.`
    : `Added “${name}” to the charts.`;
}

/** Focus stays on the form: a button disabled while it worked lost it (to <body>), so it gets it back. */
function keepFocus(button) {
  const active = document.activeElement;
  if (!active || active === document.body || active === button) button.focus();
}

/**
 * Wire both forms. addModel({text, name, hub}) resolves to {error} or {name, duplicate}; findAdded({hub})
 * returns {name, duplicate: true} when that Hub id is already added (then it is selected, not fetched).
 */
export function initCustom(addModel, findAdded) {
  const pasteForm = $("paste-form");
  const pasteError = $("paste-error");
  const pasteStatus = $("paste-status");
  const paste = $("paste");
  pasteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    pasteError.textContent = "";
    pasteStatus.textContent = "";
    paste.removeAttribute("aria-invalid");
    if (!paste.value.trim()) {
      pasteError.textContent = "config: paste the contents of a config.json first.";
      paste.setAttribute("aria-invalid", "true");
      return;
    }
    const button = pasteForm.querySelector("button");
    button.disabled = true;
    const result = await addModel({ text: paste.value, name: $("paste-name").value.trim() || null });
    button.disabled = false;
    keepFocus(button);
    if (result.error) {
      pasteError.textContent = result.error;
      paste.setAttribute("aria-invalid", "true");
    } else {
      pasteStatus.textContent = addedMessage(result);
      if (!result.duplicate) $("paste-name").value = "";
    }
  });

  const hfForm = $("hf-form");
  const hfError = $("hf-error");
  const hfStatus = $("hf-status");
  const hfInput = $("hf-id");
  hfForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    hfError.textContent = "";
    hfStatus.textContent = "";
    const id = hfInput.value.trim().replace(/^https:\/\/huggingface\.co\//, "").replace(/\/+$/, "");
    if (!HF_ID.test(id) || id.includes("..")) {
      hfError.textContent = "Model id: expected owner/model, e.g. Qwen/Qwen3-8B.";
      hfInput.setAttribute("aria-invalid", "true");
      return;
    }
    hfInput.removeAttribute("aria-invalid");
    const known = findAdded({ hub: id });
    if (known) {
      hfStatus.textContent = addedMessage(known);
      return;
    }
    const button = $("hf-fetch");
    button.disabled = true;
    button.textContent = "Fetching…";
    try {
      const { text, failure } = await fetchConfig(id);
      if (failure) {
        hfError.textContent = hfMessage(id, failure);
        return;
      }
      const result = await addModel({ text, name: id, hub: id });
      if (result.error) hfError.textContent = `${id}: ${result.error}`;
      else hfStatus.textContent = addedMessage(result);
    } finally {
      button.disabled = false;
      button.textContent = "Fetch config.json";
      keepFocus(button);
    }
  });
}
