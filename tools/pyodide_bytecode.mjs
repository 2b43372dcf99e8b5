// Precompile the Python the page runs at start-up into bytecode for Pyodide's own interpreter.
//
//   node tools/pyodide_bytecode.mjs <pyodide dir> <kvcalc wheel> <job.json> <out dir>
//
// job.json: {"requests": [kvcalc.web requests], "drop": [regular expressions over zip entry names]}
//
// Pyodide's npm package ships its standard library as .py sources, so every start-up compiles the
// ~100 modules it imports (about 1.8 s of the worker's 2 s start on a 2-core machine). This runs
// that same Pyodide in Node, installs the wheel, answers each request in requests.json through
// kvcalc.web.compute (so lazily imported modules load too), then writes into <out dir>:
//   python_stdlib.zip  the stdlib zip with each module that was imported replaced by an
//                      unchecked hash-based .pyc (PEP 552) without docstrings and asserts
//                      (optimize=2, as `python -OO`); entries matching a "drop" pattern left out
//                      unless imported; every other module stays source
//   kvcalc-pyc.json    {"files": {"kvcalc/__pycache__/<mod>.cpython-3XY.pyc": base64}} for the
//                      wheel (the kvcalc modules imported), and "stdlib_compiled" (the list)
// The .pyc files come from the interpreter that will run them, so the magic number always matches.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [pyodideDir, wheelPath, jobPath, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error("usage: node pyodide_bytecode.mjs <pyodide dir> <wheel> <job.json> <out dir>");
  process.exit(2);
}
// Errors: one readable line on stderr (Pyodide's own would print its whole minified source).
process.on("uncaughtException", (err) => {
  console.error(`pyodide_bytecode: ${String(err?.message ?? err).trim().split("\n").pop()}`);
  process.exit(1);
});
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ indexURL: `${path.resolve(pyodideDir)}/` });
pyodide.unpackArchive(new Uint8Array(fs.readFileSync(wheelPath)), "wheel");
pyodide.globals.set("JOB", fs.readFileSync(jobPath, "utf8"));
pyodide.globals.set("OUT", "/tmp/kvcalc-bytecode");
pyodide.runPython(`
import json, os, re, sys

from kvcalc import web

job = json.loads(JOB)
for request in job["requests"]:
    answer = json.loads(web.compute(json.dumps(request)))
    if not answer.get("ok") and request.get("expect_ok", True):
        raise SystemExit(f"warm-up request {request['op']} failed: {answer.get('error')}")

# What the worker imports: Pyodide's start-up, unpacking the wheel, kvcalc and the requests above.
stdlib = next(p for p in sys.path if p.endswith(".zip"))
imported = set()
for module in list(sys.modules.values()):
    origin = getattr(getattr(module, "__spec__", None), "origin", None) or ""
    if origin.startswith(stdlib + os.sep):
        imported.add(origin[len(stdlib) + 1:])

import base64, importlib.util, marshal, zipfile

def pyc(source, filename, optimize):
    code = compile(source, filename, "exec", dont_inherit=True, optimize=optimize)
    flags = (1).to_bytes(4, "little")  # hash-based, source not checked
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code)

os.makedirs(OUT, exist_ok=True)
drop = re.compile("|".join(f"(?:{p})" for p in job["drop"]) or "(?!)")
dropped = []
with zipfile.ZipFile(stdlib) as src, zipfile.ZipFile(f"{OUT}/python_stdlib.zip", "w") as dst:
    for info in src.infolist():
        if info.filename not in imported and drop.fullmatch(info.filename):
            dropped.append(info.filename)
            continue
        data = src.read(info)
        if info.filename in imported:
            out = zipfile.ZipInfo(info.filename + "c", info.date_time)
            out.external_attr = info.external_attr
            dst.writestr(out, pyc(data, info.filename, 2), zipfile.ZIP_DEFLATED)
        else:
            dst.writestr(info, data)

import kvcalc
root = os.path.dirname(os.path.dirname(kvcalc.__file__))
compiled = {}
for name, module in sorted(sys.modules.items()):
    full = getattr(module, "__file__", None) or ""
    if (name == "kvcalc" or name.startswith("kvcalc.")) and full.endswith(".py"):
        with open(full, "rb") as f:
            data = f.read()
        rel = os.path.relpath(importlib.util.cache_from_source(full), root)
        compiled[rel] = base64.b64encode(pyc(data, os.path.relpath(full, root), 0)).decode()
with open(f"{OUT}/kvcalc-pyc.json", "w") as f:
    json.dump({"stdlib_compiled": sorted(imported), "stdlib_dropped": dropped, "files": compiled}, f, sort_keys=True)
`);
fs.mkdirSync(outDir, { recursive: true });
for (const name of ["python_stdlib.zip", "kvcalc-pyc.json"]) {
  fs.writeFileSync(path.join(outDir, name), pyodide.FS.readFile(`/tmp/kvcalc-bytecode/${name}`));
}
