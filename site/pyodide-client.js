// Starts Pyodide in a module worker (worker.js) and exposes a promise API:
//   ready            -> Promise<version string>, rejected on failure or after `timeoutMs`
//   call(request)    -> Promise<response object> (kvcalc.web.compute: JSON object in, object out)
// Messages are id-tagged, so answers may arrive in any order.

export function startWorker({ pyodideURL, wheelURL, timeoutMs }) {
  const worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
  const pending = new Map();
  const phases = [["worker created", performance.now()]];
  let nextId = 0;
  let settle;
  let dead = null;

  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`timed out after ${timeoutMs / 1000} s loading Python (Pyodide) in the worker`)),
      timeoutMs,
    );
    settle = {
      resolve: (v) => { clearTimeout(timer); resolve(v); },
      reject: (e) => { clearTimeout(timer); reject(e); },
    };
  });

  function fail(error) {
    dead = error;
    worker.terminate();
    settle.reject(error);
    for (const call of pending.values()) call.reject(error);
    pending.clear();
  }

  worker.addEventListener("message", ({ data }) => {
    if (data.type === "ready") {
      // worker start-up phases as ms since this page's navigation start
      phases.push(...data.phases.map(([name, t]) => [name, t - performance.timeOrigin]));
      return settle.resolve(data.version);
    }
    if (data.type === "fatal") return fail(new Error(data.error));
    const call = pending.get(data.id);
    if (!call) return;
    pending.delete(data.id);
    if (data.at) {
      // Python's own time in the worker (its clock → this page's: each counts from its timeOrigin)
      const [start, end] = data.at.map((t) => t - performance.timeOrigin);
      performance.measure("kvcalc:python", { start, end });
    }
    if ("error" in data) call.reject(new Error(data.error));
    else call.resolve(data.response);
  });
  worker.addEventListener("error", (event) => {
    event.preventDefault();
    fail(new Error(`worker failed: ${event.message || "could not load worker.js"}`));
  });
  worker.addEventListener("messageerror", () => fail(new Error("worker sent an unreadable message")));

  worker.postMessage({ type: "init", indexURL: pyodideURL, wheelURL });

  function call(request) {
    if (dead) return Promise.reject(dead);
    return ready.then(
      () => new Promise((resolve, reject) => {
        const id = ++nextId;
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, request });
      }),
    );
  }
  return { ready, call, phases };
}
