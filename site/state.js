// The page state and its shareable form in the location hash.
//   #m=<ids>&ctx=<tokens>&b=<batch>&dt=<dtypes>&e=<engine>&tp=<n>&gpu=<id>&c=<custom models>
// `c` holds pasted / fetched configs as deflate-compressed JSON in base64url. Reading a hash never
// throws: each malformed or hostile field is ignored on its own and reported in `ignored`.
import { parseTokens } from "./format.js";

export const TP_CHOICES = [1, 2, 4, 8, 16, 32, 64];
export const MAX_MODELS = 64;
export const MAX_DTYPES = 6;
export const MAX_BATCH = 65536;
const MAX_NAME = 200;
const MAX_CONFIG_CHARS = 4 * 1024 * 1024;
const CUSTOM_ID = /^custom-\d{1,6}$/;

/** The state the site was built with (from kvcalc.web.DEFAULT_REQUEST and the default models). */
export function defaultState(data) {
  const req = data.catalog.default_request;
  return {
    models: [...data.defaults.models],
    seq: req.seq_len,
    batch: req.batch_size,
    dtypes: [...req.kv_dtypes],
    engine: req.engine,
    tp: req.tensor_parallel_size,
    gpu: req.gpu ?? "",
    custom: [],
  };
}

/** A string key of everything that changes the numbers (to skip identical recomputes). */
export function stateKey(s) {
  return JSON.stringify([s.models, s.seq, s.batch, s.dtypes, s.engine, s.tp, s.gpu, s.custom.map((c) => c.id)]);
}

function b64url(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function unb64url(text) {
  const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
}

async function pipe(bytes, stream) {
  const out = new Response(new Blob([bytes]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}

async function packCustom(custom) {
  const json = JSON.stringify(custom.map(({ id, name, text, hub }) => ({ id, name, text, ...(hub ? { hub } : {}) })));
  return b64url(await pipe(new TextEncoder().encode(json), new CompressionStream("deflate-raw")));
}

async function unpackCustom(text) {
  if (text.length > MAX_CONFIG_CHARS) throw new Error("too long");
  const bytes = await pipe(unb64url(text), new DecompressionStream("deflate-raw"));
  if (bytes.length > 4 * MAX_CONFIG_CHARS) throw new Error("too long");
  const list = JSON.parse(new TextDecoder().decode(bytes));
  if (!Array.isArray(list) || list.length > MAX_MODELS) throw new Error("not a list of models");
  return list.map((item) => {
    const ok = item && typeof item === "object" && typeof item.id === "string" && CUSTOM_ID.test(item.id)
      && typeof item.text === "string" && item.text.length <= MAX_CONFIG_CHARS
      && (item.name === undefined || item.name === null || typeof item.name === "string")
      && (item.hub === undefined || (typeof item.hub === "string" && item.hub.length <= MAX_NAME));
    if (!ok) throw new Error("malformed model entry");
    const entry = { id: item.id, name: (item.name || "").slice(0, MAX_NAME), text: item.text };
    return item.hub ? { ...entry, hub: item.hub } : entry; // the Hub id it was fetched as (no second fetch)
  });
}

/** The hash for a state (async: custom configs are compressed). */
export async function encodeHash(s) {
  const p = new URLSearchParams();
  p.set("m", s.models.join(","));
  p.set("ctx", String(s.seq));
  p.set("b", String(s.batch));
  p.set("dt", s.dtypes.join(","));
  p.set("e", s.engine);
  p.set("tp", String(s.tp));
  if (s.gpu) p.set("gpu", s.gpu);
  const used = s.custom.filter((c) => s.models.includes(c.id));
  if (used.length) p.set("c", await packCustom(used));
  return `#${p.toString()}`;
}

const short = (v) => {
  const text = String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
};

/**
 * Apply a location hash on top of `base`. Returns {state, ignored: [messages]}.
 * `known`: {models: Set of preloaded ids, dtypes, engines, gpus: Set}.
 */
export async function decodeHash(hash, base, known) {
  const state = structuredClone(base);
  const ignored = [];
  const text = String(hash || "").replace(/^#/, "");
  if (!text) return { state, ignored };
  let p;
  try {
    p = new URLSearchParams(text);
  } catch {
    return { state, ignored: ["the whole link hash (unreadable)"] };
  }
  const allowed = new Set(["m", "ctx", "b", "dt", "e", "tp", "gpu", "c"]);
  for (const key of new Set(p.keys())) {
    if (!allowed.has(key)) ignored.push(`“${short(key)}” (unknown setting)`);
  }

  if (p.has("c")) {
    try {
      state.custom = await unpackCustom(p.get("c"));
    } catch {
      ignored.push("c (custom models: not a valid kvcalc link)");
    }
  }
  if (p.has("m")) {
    const ids = p.get("m").split(",").filter(Boolean);
    const customIds = new Set(state.custom.map((c) => c.id));
    const good = [...new Set(ids.filter((id) => known.models.has(id) || customIds.has(id)))].slice(0, MAX_MODELS);
    const bad = ids.filter((id) => !known.models.has(id) && !customIds.has(id));
    if (bad.length) ignored.push(`m (unknown model${bad.length > 1 ? "s" : ""} ${bad.slice(0, 3).map((b) => `“${short(b)}”`).join(", ")})`);
    if (good.length || !ids.length) state.models = good;
  }
  const ctx = p.has("ctx") ? parseTokens(p.get("ctx")) : undefined;
  if (ctx === null) ignored.push(`ctx (“${short(p.get("ctx"))}” is not a context length)`);
  else if (ctx !== undefined) state.seq = ctx;

  if (p.has("b")) {
    const b = /^\d{1,6}$/.test(p.get("b")) ? Number(p.get("b")) : NaN;
    if (b >= 1 && b <= MAX_BATCH) state.batch = b;
    else ignored.push(`b (“${short(p.get("b"))}” is not a batch size)`);
  }
  if (p.has("dt")) {
    const names = [...new Set(p.get("dt").split(","))];
    if (names.length && names.length <= MAX_DTYPES && names.every((d) => known.dtypes.includes(d))) state.dtypes = names;
    else ignored.push(`dt (“${short(p.get("dt"))}” is not a list of cache dtypes)`);
  }
  if (p.has("e")) {
    if (known.engines.includes(p.get("e"))) state.engine = p.get("e");
    else ignored.push(`e (unknown engine “${short(p.get("e"))}”)`);
  }
  if (p.has("tp")) {
    const tp = /^\d{1,3}$/.test(p.get("tp")) ? Number(p.get("tp")) : NaN;
    if (TP_CHOICES.includes(tp)) state.tp = tp;
    else ignored.push(`tp (“${short(p.get("tp"))}” is not a tensor-parallel size)`);
  }
  if (p.has("gpu")) {
    if (known.gpus.has(p.get("gpu"))) state.gpu = p.get("gpu");
    else ignored.push(`gpu (unknown GPU “${short(p.get("gpu"))}”)`);
  }
  return { state, ignored };
}
