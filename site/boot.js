// Starts Python (Pyodide in a Web Worker) when app.js asks: right after the first charts. (Earlier,
// e.g. as an async script, Pyodide's download and compile compete with Plotly's parse and the first
// draw for a small machine's cores: on 2 cores the first chart came ~0.9 s later, measured.)
// window.kvcalc = {ready, call, phases}: see pyodide-client.js.
import { startWorker } from "./pyodide-client.js";

const LOAD_TIMEOUT_MS = globalThis.kvcalcLoadTimeoutMs ?? 20000; // tests may shorten it via an init script
const absolute = (url) => new URL(url, document.baseURI).href;
// <html data-pyodide-url data-wheel-url> says where everything is.
const paths = document.documentElement.dataset;

let started = null;

/** Start Pyodide in its worker, once; returns {ready, call, phases} (also window.kvcalc). */
export function startPython() {
  if (!started) {
    started = startWorker({
      pyodideURL: absolute(paths.pyodideUrl),
      wheelURL: absolute(paths.wheelUrl),
      timeoutMs: LOAD_TIMEOUT_MS,
    });
    window.kvcalc = started;
  }
  return started;
}
