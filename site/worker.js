// Pyodide in a module worker. First message {type: "init", indexURL, wheelURL} loads Pyodide and the
// kvcalc wheel and answers {type: "ready", version} or {type: "fatal", error}. Then each {id, request}
// is answered with {id, response} (or {id, error}) by kvcalc.web.compute, Python's only door.
let compute = null;
let started = false;
// Start-up phases, ms since the page's navigation start (worker clock shifted to the page's).
const phases = [];
const mark = (name) => phases.push([name, performance.timeOrigin + performance.now()]);
mark("worker");

function lastLine(err) {
  const text = String((err && err.message) || err).trim();
  return text.split("\n").filter((line) => line.trim()).pop() || text;
}

async function fetchWheel(wheelURL) {
  const response = await fetch(wheelURL);
  if (!response.ok) throw new Error(`could not download the kvcalc wheel (HTTP ${response.status})`);
  return response.arrayBuffer();
}

async function init({ indexURL, wheelURL }) {
  const { loadPyodide } = await import(`${indexURL}pyodide.mjs`);
  mark("pyodide.mjs");
  // The wheel downloads while Pyodide starts; a failed download is reported at once.
  // packageBaseUrl: any package Pyodide fetches comes from our own origin, never a third party.
  const [pyodide, wheel] = await Promise.all([
    loadPyodide({ indexURL, packageBaseUrl: indexURL }),
    fetchWheel(wheelURL).then((wheel) => { mark("wheel fetched"); return wheel; }),
  ]);
  mark("loadPyodide");
  // Unpacking the pure-Python wheel into site-packages takes ~40 ms; loadPackage() ~300 ms more.
  pyodide.unpackArchive(wheel, "wheel");
  mark("unpack");
  compute = pyodide.pyimport("kvcalc.web").compute; // throws if the wheel did not load
  mark("import kvcalc");
  const answer = JSON.parse(compute(JSON.stringify({ op: "version" })));
  if (!answer.ok) throw new Error(`kvcalc version request failed: ${answer.error}`);
  return answer.version;
}

// Start-up downloads (Pyodide's wasm, stdlib, lock file; the wheel) that fail are reported at once with
// their cause (e.g. "pyodide.asm.wasm: HTTP 404"), not after the page's load timeout.
let reported = false;
function fatal(error) {
  if (started || reported) return;
  reported = true;
  postMessage({ type: "fatal", error });
}
const fileName = (input) => String(input?.url ?? input).split("?")[0].split("/").pop();
const realFetch = self.fetch.bind(self);
self.fetch = async (input, init) => {
  let response;
  try {
    response = await realFetch(input, init);
  } catch (err) {
    fatal(`Python (Pyodide) could not download ${fileName(input)} (${lastLine(err)})`);
    throw err;
  }
  if (!response.ok) fatal(`Python (Pyodide) could not download ${fileName(input)} (HTTP ${response.status})`);
  return response;
};

// Pyodide swallows some start-up failures (e.g. a failed .wasm fetch) as unhandled rejections and
// would then never resolve: report them as fatal instead of waiting for the page's timeout.
self.addEventListener("unhandledrejection", (event) => {
  if (started) return;
  event.preventDefault();
  fatal(`Python (Pyodide) failed to start: ${lastLine(event.reason)}`);
});

self.addEventListener("message", async ({ data }) => {
  if (data.type === "init") {
    try {
      const version = await init(data);
      mark("version");
      postMessage({ type: "ready", version, phases });
      started = true;
    } catch (err) {
      fatal(lastLine(err));
    }
    return;
  }
  const { id, request } = data;
  try {
    const start = performance.now();
    const response = JSON.parse(compute(JSON.stringify(request)));
    const at = [performance.timeOrigin + start, performance.timeOrigin + performance.now()];
    postMessage({ id, response, at });
  } catch (err) {
    postMessage({ id, error: lastLine(err) });
  }
});
