// Starts Python (Pyodide in a Web Worker). app.js imports this first, so the worker starts just
// before the build-time charts are drawn and loads on the other core meanwhile. (Not earlier, e.g.
// as an async script: on a 2-core machine Pyodide's start then competes with Plotly's parse and the
// first chart came ~0.9 s later, measured.)  window.kvcalc = {ready, call, phases}: see pyodide-client.js.
import { startWorker } from "./pyodide-client.js";

const LOAD_TIMEOUT_MS = globalThis.kvcalcLoadTimeoutMs ?? 20000; // tests may shorten it via an init script
const absolute = (url) => new URL(url, document.baseURI).href;
// <html data-pyodide-url data-wheel-url> says where everything is.
const paths = document.documentElement.dataset;

export const kvcalc = startWorker({
  pyodideURL: absolute(paths.pyodideUrl),
  wheelURL: absolute(paths.wheelUrl),
  timeoutMs: LOAD_TIMEOUT_MS,
});
window.kvcalc = kvcalc;
