// The panels beside the comparison (vLLM log, local mode): each in its own module, wired here once,
// so app.js needs one line. `python()` returns boot.js's client ({ready, call}).
import { initEngines } from "./engines.js";
import { initExplain } from "./explain.js";
import { initLocal } from "./local.js";

export function initPanels({ data, python }) {
  initEngines({ data, python });
  initLocal({ data, python });
  initExplain({ models: data.models, gpus: data.catalog.gpus, python });
}
