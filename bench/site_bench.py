#!/usr/bin/env python3
"""Benchmark the built site against a bare Plotly page, in real Chromium, in one run.

    python3 bench/site_bench.py [--runs N] [--changes N] [--site DIR]

Serves `_site/` and a bare reference page (Plotly + the same precomputed data and chart code, no
Pyodide) from one local server, loads each N times cold (a fresh incognito-like context: empty HTTP
and code caches) and N times warm (a returning visitor: one on-disk browser profile, whose HTTP cache
and V8 code cache the first two loads filled — V8 caches a script's compiled code from its second
load), and prints: median time to first chart and to first paint for both pages and their ratio,
time to `ready` and the worker's start-up phases, control change → charts updated p50/p95 next to
the bare page redrawing the same two figures (the responses the site showed, by Plotly.react), the
longest main-thread task after first paint (PerformanceObserver "longtask"), and transferred bytes
raw and gzip. Issue 16's targets are reported, not asserted.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import devenv  # noqa: E402

BARE_DIR = "__bare__"
VIEWPORT = {"width": 1280, "height": 900}
# Installed before any page script: collects long tasks and paint timings.
OBSERVE = """
window.__longtasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longtasks.push([e.startTime, e.duration]);
}).observe({ type: "longtask", buffered: true });
"""
BARE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bare reference</title><link rel="stylesheet" href="style.css">
<script src="plotly.min.js" defer></script><script type="module" src="bare.js"></script></head>
<body><main id="app"><div id="bar-chart"></div><div id="line-chart"></div></main>
{data_script}
</body></html>
"""
BARE_JS = """import { barFigure, draw, lineFigure } from "./charts.js";
const data = JSON.parse(document.getElementById("kvcalc-data").textContent);
const labels = data.catalog.kind_labels;
await draw(document.getElementById("bar-chart"), barFigure(data.initial, labels, false));
performance.mark("kvcalc:first-chart");
const line = lineFigure(data.initial, labels, data.defaults.models, false);
await draw(document.getElementById("line-chart"), line);
document.getElementById("app").dataset.rev = "1";
"""
# On the bare page: the figures the site showed after each control change, redrawn with a plain
# Plotly.react of both charts (Plotly's own diffing, no Python, no table) — what a page without the
# site's partial updates pays for the same two figures. The initial figures are drawn first, untimed.
BARE_REPLAY_JS = """async (responses) => {
  const { barFigure, lineFigure } = await import("./charts.js");
  const data = JSON.parse(document.getElementById("kvcalc-data").textContent);
  const labels = data.catalog.kind_labels;
  const bar = document.getElementById("bar-chart");
  const line = document.getElementById("line-chart");
  const config = { responsive: true, displaylogo: false, displayModeBar: "hover" };
  const show = async (resp) => {
    const b = barFigure(resp, labels, false);
    await Plotly.react(bar, b.data, b.layout, config);
    await new Promise((resolve) => setTimeout(resolve, 0));
    const l = lineFigure(resp, labels, resp.models.map((m) => m.id), false);
    await Plotly.react(line, l.data, l.layout, config);
  };
  await show(data.initial);
  const times = [];
  for (const resp of responses) {
    const t0 = performance.now();
    await show(resp);
    times.push(performance.now() - t0);
  }
  return times;
}"""
# Control changes the benchmark cycles through: (selector, kind, value).
CHANGES = [
    ("#ctx-text", "input", "32k"),
    ("#ctx-text", "input", "1M"),
    ("#dt-fp8", "click", None),
    ("#engine", "select", "vllm"),
    ("#batch", "input", "8"),
    ("#gpu", "select", "h200"),
    ("#ctx-text", "input", "200000"),
    ("#dt-fp8", "click", None),
    ("#engine", "select", "ideal"),
    ("#batch", "input", "1"),
    ("#tp", "select", "8"),
    ("#tp", "select", "1"),
]
CHANGE_JS = """async ([selector, kind, value]) => {
  const app = document.getElementById("app");
  const el = document.querySelector(selector);
  const rev = app.dataset.rev;
  const t0 = performance.now();
  const done = new Promise((resolve) => {
    const obs = new MutationObserver(() => {
      if (app.dataset.rev !== rev && app.dataset.busy === "false") { obs.disconnect(); resolve(); }
    });
    obs.observe(app, { attributes: true });
  });
  if (kind === "click") el.click();
  else {
    el.value = value;
    el.dispatchEvent(new Event(kind === "select" ? "change" : "input", { bubbles: true }));
  }
  await done;
  return performance.now() - t0;
}"""


# A slider drag: the context range stepped one stop at a time from its 1K stop to its last, each
# step waited for; returns each step's time (the long tasks meanwhile are read after).
SLIDER_JS = """async () => {
  const app = document.getElementById("app");
  const range = document.getElementById("ctx-range");
  const times = [];
  for (let k = 0; k <= Number(range.max); k++) {
    const rev = app.dataset.rev;
    const t0 = performance.now();
    const done = new Promise((resolve) => {
      const obs = new MutationObserver(() => {
        if (app.dataset.rev !== rev && app.dataset.busy === "false") { obs.disconnect(); resolve(true); }
      });
      obs.observe(app, { attributes: true });
      setTimeout(() => { obs.disconnect(); resolve(false); }, 5000); // a stop equal to the current one
    });
    range.value = String(k);
    range.dispatchEvent(new Event("input", { bubbles: true }));
    if (await done) times.push(performance.now() - t0);
  }
  return times;
}"""


@dataclass
class Load:
    """What one page load measured (ms since navigation start; bytes)."""

    first_chart: float
    ready: float | None
    phases: list[list[Any]]
    fcp: float | None
    longest_task: float
    longest_after_chart: float
    raw_bytes: int
    gzip_bytes: int
    urls: list[str] = field(default_factory=list)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def make_bare(site: Path, out: Path) -> None:
    """The reference page: same Plotly, same data block, same chart code — no Pyodide."""
    html = (site / "index.html").read_text(encoding="utf-8")
    start = html.index('<script type="application/json" id="kvcalc-data">')
    data_script = html[start : html.index("</script>", start) + len("</script>")]
    out.mkdir(parents=True, exist_ok=True)
    for name in ("charts.js", "format.js", "style.css"):
        shutil.copy2(site / name, out / name)
    shutil.copy2(site / "vendor" / "plotly.min.js", out / "plotly.min.js")
    (out / "bare.js").write_text(BARE_JS, encoding="utf-8")
    (out / "index.html").write_text(BARE_HTML.format(data_script=data_script), encoding="utf-8")


def gzip_size(path: Path, cache: dict[Path, int]) -> int:
    if path not in cache:
        cache[path] = len(gzip.compress(path.read_bytes(), compresslevel=6))
    return cache[path]


def load(page: Any, url: str, root: Path, wait_ready: bool, gz: dict[Path, int]) -> Load:
    """Navigate, wait for the first chart (and `ready`), and collect timings and transfer sizes."""
    urls: list[str] = []

    def finished(request: Any) -> None:
        urls.append(request.url)

    page.on("requestfinished", finished)
    page.goto(url)
    page.wait_for_function("() => performance.getEntriesByName('kvcalc:first-chart').length", timeout=60_000)
    ready = None
    if wait_ready:
        page.wait_for_function(
            "() => ['ready', 'error'].includes(document.getElementById('app').dataset.state)", timeout=60_000
        )
        page.wait_for_function("() => document.getElementById('app').dataset.busy !== 'true'", timeout=60_000)
        marks = page.evaluate("() => performance.getEntriesByName('kvcalc:ready').map(e => e.startTime)")
        ready = marks[0] if marks else None
    phases = page.evaluate("() => window.kvcalc?.phases ?? []")
    page.wait_for_timeout(300)  # let trailing tasks land in the long-task log
    first = page.evaluate("() => performance.getEntriesByName('kvcalc:first-chart')[0].startTime")
    fcp = page.evaluate("() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null")
    tasks = page.evaluate("() => window.__longtasks")
    after = [d for s, d in tasks if fcp is None or s >= fcp]
    after_chart = [d for s, d in tasks if s >= first]
    raw = gzipped = 0
    for u in dict.fromkeys(urls):
        if not u.startswith(url):
            continue
        path = root / (u[len(url) :].split("?")[0].split("#")[0] or "index.html")
        if path.is_file():
            raw += path.stat().st_size
            gzipped += gzip_size(path, gz)
    page.remove_listener("requestfinished", finished)
    longest, longest_chart = max(after, default=0.0), max(after_chart, default=0.0)
    return Load(first, ready, phases, fcp, longest, longest_chart, raw, gzipped, urls)


#: The page's own performance.measure spans ("kvcalc:<stage>"), read after each control change.
STAGES_JS = """() => {
  const out = {};
  for (const e of performance.getEntriesByType("measure")) {
    if (e.name.startsWith("kvcalc:")) out[e.name.slice(7)] = (out[e.name.slice(7)] ?? 0) + e.duration;
  }
  performance.clearMeasures();
  return out;
}"""


STAGE_SPLIT = ("compute", "bar", "line")


def change_label(i: int) -> str:
    selector, kind, value = CHANGES[i % len(CHANGES)]
    return f"{selector} {value if value is not None else kind}"


def control_changes(
    page: Any, n: int, stages: dict[str, list[float]], shown: list[Any] | None
) -> tuple[list[float], float]:
    """Time n control changes to charts-updated (adding each change's stage times to `stages`, and
    the response shown after each to `shown` when given); return the times and the longest task."""
    page.evaluate("() => { window.__longtasks = []; performance.clearMeasures(); }")
    times = []
    for i in range(n):
        times.append(page.evaluate(CHANGE_JS, list(CHANGES[i % len(CHANGES)])))
        spans = page.evaluate(STAGES_JS)
        for name, ms in spans.items():
            stages.setdefault(name, []).append(ms)
        for name in STAGE_SPLIT:  # per change, in order (0 when a stage did not run)
            stages.setdefault(f"{name}@", []).append(spans.get(name, 0.0))
        if shown is not None:
            shown.append(page.evaluate("() => window.kvcalcShown()"))
    page.wait_for_timeout(200)
    tasks = page.evaluate("() => window.__longtasks")
    return times, max((d for _, d in tasks), default=0.0)


def slider_drag(page: Any) -> tuple[list[float], float]:
    """Step the context slider across all its stops (waiting for each update); the step times and
    the longest main-thread task meanwhile."""
    page.evaluate("() => { window.__longtasks = []; }")
    times = page.evaluate(SLIDER_JS)
    page.wait_for_timeout(200)
    return times, max((d for _, d in page.evaluate("() => window.__longtasks")), default=0.0)


def run(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    import build
    from tests_browser.conftest import launch_options

    site = Path(args.site).resolve() if args.site else build.build_site(build.DEFAULT_OUT)
    with tempfile.TemporaryDirectory() as tmp:
        serve_root = Path(tmp)
        (serve_root / "site").symlink_to(site, target_is_directory=True)
        make_bare(site, serve_root / BARE_DIR)
        server = build.make_server(serve_root, port=0, quiet=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        origin = f"http://127.0.0.1:{server.server_address[1]}"
        targets = {
            "site": (f"{origin}/site/", serve_root / "site"),
            "bare": (f"{origin}/{BARE_DIR}/", serve_root / BARE_DIR),
        }
        results: dict[str, dict[str, list[Load]]] = {k: {"cold": [], "warm": []} for k in targets}
        changes: list[float] = []
        change_tasks: list[float] = []
        stages: dict[str, list[float]] = {}
        bare_redraws: list[float] = []
        shown: list[Any] = []  # the site's response after each change of its first warm load
        slider_steps: list[float] = []
        slider_tasks: list[float] = []
        gz: dict[Path, int] = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(**launch_options())
            for name, (url, root) in targets.items():
                for _ in range(args.runs):  # cold: a fresh context has empty HTTP and code caches
                    ctx = browser.new_context(viewport=VIEWPORT)
                    ctx.add_init_script(OBSERVE)
                    page = ctx.new_page()
                    results[name]["cold"].append(load(page, url, root, name == "site", gz))
                    ctx.close()
            browser.close()
            for name, (url, root) in targets.items():
                is_site = name == "site"
                with tempfile.TemporaryDirectory() as profile:
                    ctx = p.chromium.launch_persistent_context(profile, viewport=VIEWPORT, **launch_options())
                    ctx.add_init_script(OBSERVE)
                    for _ in range(2):  # fill the HTTP cache, then the code cache
                        page = ctx.new_page()
                        load(page, url, root, is_site, gz)
                        page.wait_for_timeout(1000)  # caches are written after the load
                        page.close()
                    for _ in range(args.runs):
                        page = ctx.new_page()
                        results[name]["warm"].append(load(page, url, root, is_site, gz))
                        if is_site and args.changes:
                            record = None if shown else shown  # the first load's responses
                            times, longest = control_changes(page, args.changes, stages, record)
                            changes += times
                            change_tasks.append(longest)
                            steps, longest = slider_drag(page)
                            slider_steps.extend(steps)
                            slider_tasks.append(longest)
                        elif args.changes:
                            bare_redraws += page.evaluate(BARE_REPLAY_JS, shown)
                        page.close()
                    ctx.close()
        server.shutdown()
    stages["bare"] = bare_redraws
    stages["slider"] = slider_steps
    stages["slider_task"] = slider_tasks
    report(results, changes, change_tasks, stages, args)


def fmt_ms(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:,.0f} ms"


def report(
    results: dict[str, dict[str, list[Load]]],
    changes: list[float],
    change_tasks: list[float],
    stages: dict[str, list[float]],
    args: Any,
) -> None:
    def med(name: str, mode: str, attr: str) -> float:
        vals = [getattr(x, attr) for x in results[name][mode] if getattr(x, attr) is not None]
        return median(vals)

    print(
        f"kvcalc site benchmark: {args.runs} cold + {args.runs} warm loads each, "
        f"{len(changes)} control changes"
    )
    print(f"browser: {devenv.ensure_browser()}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} at the end (other work skews timings)")
    print()
    print(f"{'':28}{'cold':>12}{'warm':>12}")
    for label, name, attr in (
        ("bare page: first chart", "bare", "first_chart"),
        ("bare page: first paint", "bare", "fcp"),
        ("site: first chart", "site", "first_chart"),
        ("site: first paint", "site", "fcp"),
        ("site: ready (Pyodide)", "site", "ready"),
    ):
        print(f"{label:28}{fmt_ms(med(name, 'cold', attr)):>12}{fmt_ms(med(name, 'warm', attr)):>12}")
    ratio = {m: med("site", m, "first_chart") / med("bare", m, "first_chart") for m in ("cold", "warm")}
    print(f"{'first chart, site / bare':28}{ratio['cold']:>11.2f}×{ratio['warm']:>11.2f}×")
    names = [n for n, _ in (results["site"]["warm"][0].phases if results["site"]["warm"] else [])]
    for mode in ("cold", "warm"):
        steps = [
            f"{n} {median([dict(x.phases)[n] for x in results['site'][mode] if n in dict(x.phases)]):,.0f}"
            for n in names
        ]
        print(f"  worker start-up, {mode} (median ms since navigation): {' → '.join(steps)}")
    lt_site = max((x.longest_task for m in ("cold", "warm") for x in results["site"][m]), default=0.0)
    lt_warm = max((x.longest_task for x in results["site"]["warm"]), default=0.0)
    lt_bare = max((x.longest_task for m in ("cold", "warm") for x in results["bare"][m]), default=0.0)
    lt_chart = max((x.longest_after_chart for m in ("cold", "warm") for x in results["site"][m]), default=0.0)
    p50, p95 = percentile(changes, 0.5), percentile(changes, 0.95)
    print()
    print(
        f"control change → charts updated: p50 {fmt_ms(p50)}, p95 {fmt_ms(p95)}, "
        f"max {fmt_ms(max(changes, default=None))}"
    )
    labels = {
        "compute": "worker round trip",
        "python": "of which Python",
        "bar": "bar chart",
        "line": "line chart",
        "table": "table and insights",
    }
    parts = [
        f"{labels[k]} {percentile(stages[k], 0.5):,.0f}/{percentile(stages[k], 0.95):,.0f}"
        for k in labels
        if k in stages
    ]
    if parts:
        print(f"  per stage, p50/p95 ms: {', '.join(parts)}")
    bare = stages.get("bare", [])
    if bare:
        print(
            f"  bare page, the same figures redrawn by Plotly.react (no Python, no table): "
            f"p50 {fmt_ms(percentile(bare, 0.5))}, p95 {fmt_ms(percentile(bare, 0.95))}"
        )
        n = args.changes
        head = f"  {'change':26}{'site':>9}{'bare':>9}{'ratio':>8}   site's worker / bar / line (ms)"
        print(f"{head}, medians over {len(changes) // n} loads")
        for i in range(n):
            site_i, bare_i = median(changes[i::n]), median(bare[i::n])
            split = " / ".join(f"{median(stages.get(f'{k}@', [])[i::n]):.0f}" for k in STAGE_SPLIT)
            print(f"  {change_label(i):26}{site_i:>7.0f}ms{bare_i:>7.0f}ms{site_i / bare_i:>7.2f}×   {split}")
    print(
        f"longest main-thread task after first paint: site {fmt_ms(lt_site)} (warm loads {fmt_ms(lt_warm)}), "
        f"during control changes {fmt_ms(max(change_tasks, default=0.0))}, bare page {fmt_ms(lt_bare)}"
    )
    print(f"longest main-thread task after the first chart (site): {fmt_ms(lt_chart)}")
    slider, slider_task = stages.get("slider", []), max(stages.get("slider_task", []), default=0.0)
    if slider:
        print(
            f"slider drag, one stop at a time ({len(slider)} steps): p50 {fmt_ms(percentile(slider, 0.5))}, "
            f"p95 {fmt_ms(percentile(slider, 0.95))}, longest task {fmt_ms(slider_task)}"
        )
    for name in ("site", "bare"):
        cold = results[name]["cold"][0]
        print(
            f"transferred ({name}, cold load{' to ready' if name == 'site' else ''}): "
            f"{cold.raw_bytes / 1e6:.2f} MB raw, {cold.gzip_bytes / 1e6:.2f} MB gzip "
            f"({len(set(cold.urls))} requests)"
        )
    site_cold = results["site"]["cold"][0]
    print()
    print("targets (reported, not asserted):")
    fcp = {m: med("site", m, "fcp") / med("site", m, "first_chart") for m in ("cold", "warm")}
    bare_p50, bare_p95 = percentile(bare, 0.5), percentile(bare, 0.95)
    ready_warm = med("site", "warm", "ready")
    # issue 16's targets
    checks = [
        ("first chart ≤ 1.1× bare page (cold)", ratio["cold"] <= 1.1, f"{ratio['cold']:.2f}×"),
        ("first chart ≤ 1.1× bare page (warm)", ratio["warm"] <= 1.1, f"{ratio['warm']:.2f}×"),
        ("first paint ≤ 0.3× first chart (cold)", fcp["cold"] <= 0.3, f"{fcp['cold']:.2f}×"),
        ("first paint ≤ 0.3× first chart (warm)", fcp["warm"] <= 0.3, f"{fcp['warm']:.2f}×"),
        ("control change p50 ≤ 1.1× bare redraw", p50 <= 1.1 * bare_p50, f"{p50 / bare_p50:.2f}×"),
        ("control change p95 ≤ 1.1× bare redraw", p95 <= 1.1 * bare_p95, f"{p95 / bare_p95:.2f}×"),
        ("no task > 50 ms per slider step", slider_task <= 50, fmt_ms(slider_task)),
        ("ready ≤ 1.0 s warm", ready_warm <= 1000, fmt_ms(ready_warm)),
        ("gzip to ready ≤ 7 MB", site_cold.gzip_bytes <= 7e6, f"{site_cold.gzip_bytes / 1e6:.2f} MB"),
    ]
    for label, ok, value in checks:
        print(f"  [{'ok' if ok else 'MISS'}] {label}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="loads per page and cache state (default 5)")
    parser.add_argument("--changes", type=int, default=12, help="control changes timed per warm load")
    parser.add_argument("--site", help="a built site directory (default: build _site/ first)")
    args = parser.parse_args(argv)
    devenv.bootstrap(__file__)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
