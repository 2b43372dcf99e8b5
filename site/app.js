// kvcalc page bootstrap: starts Pyodide in a worker and exposes a promise API:
//   window.kvcalc.ready             -> Promise<version string>
//   window.kvcalc.call(request)     -> Promise<response object>  (request/response are JSON objects
//                                      handled by kvcalc.web.compute; e.g. {op: "version"})
// Page state lives on <main id="app" data-state="loading|ready|error">; errors are shown, never a spinner.
const LOAD_TIMEOUT_MS = globalThis.kvcalcLoadTimeoutMs ?? 20000; // tests may shorten it via an init script

const app = document.getElementById("app");
const statusLine = document.getElementById("status");

function setState(state, message) {
  app.dataset.state = state;
  statusLine.textContent = message;
}

function absolute(url) {
  return new URL(url, document.baseURI).href;
}

function startWorker() {
  const worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
  const pending = new Map();
  let nextId = 0;
  let settle;

  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`timed out after ${LOAD_TIMEOUT_MS / 1000} s loading Python (Pyodide) in the worker`)),
      LOAD_TIMEOUT_MS,
    );
    settle = { resolve: (v) => { clearTimeout(timer); resolve(v); }, reject: (e) => { clearTimeout(timer); reject(e); } };
  });

  function fail(error) {
    worker.terminate();
    settle.reject(error);
    for (const call of pending.values()) call.reject(error);
    pending.clear();
  }

  worker.addEventListener("message", ({ data }) => {
    if (data.type === "ready") return settle.resolve(data.version);
    if (data.type === "fatal") return fail(new Error(data.error));
    const call = pending.get(data.id);
    if (!call) return;
    pending.delete(data.id);
    if ("error" in data) call.reject(new Error(data.error));
    else call.resolve(data.response);
  });
  worker.addEventListener("error", (event) => {
    event.preventDefault();
    fail(new Error(`worker failed: ${event.message || "could not load worker.js"}`));
  });
  worker.addEventListener("messageerror", () => fail(new Error("worker sent an unreadable message")));

  worker.postMessage({
    type: "init",
    indexURL: absolute(app.dataset.pyodideUrl),
    wheelURL: absolute(app.dataset.wheelUrl),
  });

  function call(request) {
    return ready.then(
      () => new Promise((resolve, reject) => {
        const id = ++nextId;
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, request });
      }),
    );
  }
  return { ready, call };
}

export const kvcalc = startWorker();
window.kvcalc = kvcalc;

kvcalc.ready.then(
  (version) => {
    document.getElementById("kvcalc-version").textContent = version;
    setState("ready", "Ready.");
  },
  (error) => {
    console.error("kvcalc failed to start:", error);
    setState("error", `Could not start the calculator: ${error.message}`);
  },
);
