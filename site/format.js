// Display units, mirroring kvcalc/core/units.py: GiB = 2^30 bytes (TiB/PiB from 1024 GiB), rounded half-up;
// token counts as 128K/1M.
export const GIB = 2 ** 30;

/** Decimals for n bytes in GiB: 2, or 3 significant digits below 0.01 GiB (units.gib_decimals). */
export function gibDecimals(n) {
  if (n <= 0 || n * 100 >= GIB) return 2;
  let k = 0;
  while (n * 10 ** (k + 3) < GIB) k += 1;
  return k + 5;
}

const formats = new Map(); // Intl.NumberFormat per decimals: building one per call is slow
function numberFormat(d) {
  if (!formats.has(d)) formats.set(d, new Intl.NumberFormat("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }));
  return formats.get(d);
}

/** Past 1024 GiB: the largest unit a size reaches, 2 decimals (units.LARGE_UNITS). */
const LARGE_UNITS = [["PiB", 2 ** 50], ["TiB", 2 ** 40]];

/** "8.58 GiB", "1.21 TiB" — same text as kvcalc.units.fmt_gib for the same integer (both round half
 * up; n / 2^k is exact in a double for an integer n < 2^53). */
export function fmtGiB(n) {
  if (n === null || n === undefined) return "—";
  for (const [unit, size] of LARGE_UNITS) {
    if (n >= size) return `${numberFormat(2).format(n / size)} ${unit}`;
  }
  return `${numberFormat(gibDecimals(n)).format(n / GIB)} GiB`;
}

/** Tick values and labels for a log axis in GiB spanning 10^lo … 10^hi GiB: 1 (then 1-2-5, then
 * 1…9 when a range holds fewer than two) times the powers of ten of the unit in force — "0.01 GiB"
 * … "100 GiB", then "1 TiB", "10 TiB", "100 TiB", then "1 PiB" … — never "1e+6" or "0.5M".
 * null when even 1…9 give fewer than two ticks (Plotly's own then). With `everywhere`, the ticks of
 * that density over every unit, not only those in the range (Plotly draws those in range): the list
 * then stays the same while the range moves. */
export function logSizeTicks(lo, hi, everywhere = false) {
  for (const steps of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const ticks = sizeTicks(steps, lo, hi);
    if (ticks.tickvals.length >= 2) return everywhere ? sizeTicks(steps, -Infinity, Infinity) : ticks;
  }
  return null;
}

/** The ticks `steps` × 10^k of each unit between 10^lo and 10^hi GiB (see logSizeTicks). */
function sizeTicks(steps, lo, hi) {
  const units = [["GiB", 1], ["TiB", 1024], ["PiB", 1024 ** 2]];
  const label = new Intl.NumberFormat("en-US", { maximumFractionDigits: 8 });
  const tickvals = [];
  const ticktext = [];
  units.forEach(([unit, scale], u) => {
    for (let k = -8; k < 9; k++) {
      for (const m of steps) {
        const inUnit = m * 10 ** k;
        if (u < units.length - 1 && inUnit >= 1000) continue; // the next unit takes over
        if (u > 0 && inUnit < 1) continue;
        const v = inUnit * scale;
        if (Math.log10(v) < lo || Math.log10(v) > hi) continue;
        tickvals.push(v);
        ticktext.push(`${label.format(Number(inUnit.toPrecision(6)))} ${unit}`);
      }
    }
  });
  return { tickvals, ticktext };
}

/** Plain number of GiB for chart axes (not rounded). */
export const toGiB = (n) => n / GIB;

export function fmtInt(n) {
  return n === null || n === undefined ? "—" : numberFormat(0).format(n);
}

/** 131072 → "128K", 1048576 → "1M", 5000 → "5,000", 128000 → "128,000" (a round thousand stays as
 * typed; units.fmt_tokens). */
export function fmtTokens(n) {
  if (n % 1000 === 0) return numberFormat(0).format(n);
  for (const [unit, size] of [["M", 2 ** 20], ["K", 2 ** 10]]) {
    if (n >= size && n % size === 0) return `${numberFormat(0).format(n / size)}${unit}`;
  }
  return numberFormat(0).format(n);
}

export const MIN_CONTEXT = 1;
export const MAX_CONTEXT = 10_000_000;

/**
 * Parse a context length the way people write it: "32768", "32,768", "128k", "1M", "1.5m".
 * K = 1024 and M = 1024² (so 128k = 131072). Returns an integer or null.
 */
export function parseTokens(text) {
  const m = /^\s*(\d+(?:[.,_]\d+)*)(?:\s*([kKmM]))?\s*(?:tokens?)?\s*$/.exec(String(text ?? ""));
  if (!m) return null;
  let digits = m[1];
  const unit = (m[2] || "").toLowerCase();
  // Commas / underscores are thousands separators; a dot is a decimal point only with a unit.
  digits = digits.replace(/[,_]/g, "");
  if (digits.includes(".") && !unit) return null;
  const value = Number(digits) * (unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : 1);
  if (!Number.isFinite(value)) return null;
  const n = Math.round(value);
  return n >= MIN_CONTEXT && n <= MAX_CONTEXT ? n : null;
}

/** "bf16" → "BF16", "q8_0" → "Q8_0" (llama.cpp's own spelling). */
export function dtypeLabel(name) {
  return name.toUpperCase();
}
