// Pyodide in a module worker. First message {type: "init", indexURL, wheelURL} loads Pyodide and the
// kvcalc wheel and answers {type: "ready", version} or {type: "fatal", error}. Then each {id, request}
// is answered with {id, response} (or {id, error}) by kvcalc.web.compute, Python's only door.
let compute = null;
let started = false;

function lastLine(err) {
  const text = String((err && err.message) || err).trim();
  return text.split("\n").filter((line) => line.trim()).pop() || text;
}

async function init({ indexURL, wheelURL }) {
  const { loadPyodide } = await import(`${indexURL}pyodide.mjs`);
  // packageBaseUrl: any package Pyodide fetches comes from our own origin, never a third party.
  const pyodide = await loadPyodide({ indexURL, packageBaseUrl: indexURL, packages: [wheelURL] });
  compute = pyodide.pyimport("kvcalc.web").compute; // throws if the wheel did not load (no 404 reject)
  const answer = JSON.parse(compute(JSON.stringify({ op: "version" })));
  if (!answer.ok) throw new Error(`kvcalc version request failed: ${answer.error}`);
  return answer.version;
}

// Pyodide swallows some start-up failures (e.g. a failed .wasm fetch) as unhandled rejections and
// would then never resolve: report them as fatal instead of waiting for the page's timeout.
self.addEventListener("unhandledrejection", (event) => {
  if (started) return;
  event.preventDefault();
  postMessage({ type: "fatal", error: `Python (Pyodide) failed to start: ${lastLine(event.reason)}` });
});

self.addEventListener("message", async ({ data }) => {
  if (data.type === "init") {
    try {
      postMessage({ type: "ready", version: await init(data) });
      started = true;
    } catch (err) {
      postMessage({ type: "fatal", error: lastLine(err) });
    }
    return;
  }
  const { id, request } = data;
  try {
    postMessage({ id, response: JSON.parse(compute(JSON.stringify(request))) });
  } catch (err) {
    postMessage({ id, error: lastLine(err) });
  }
});
