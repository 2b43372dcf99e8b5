// Display units, mirroring kvcalc/units.py: GiB = 2^30 bytes, rounded half-up; token counts as 128K/1M.
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

/** "8.58 GiB" — same text as kvcalc.units.fmt_gib for the same integer (both round half up). */
export function fmtGiB(n) {
  if (n === null || n === undefined) return "—";
  return `${numberFormat(gibDecimals(n)).format(n / GIB)} GiB`;
}

/** Plain number of GiB for chart axes (not rounded). */
export const toGiB = (n) => n / GIB;

export function fmtInt(n) {
  return n === null || n === undefined ? "—" : numberFormat(0).format(n);
}

/** 131072 → "128K", 1048576 → "1M", 5000 → "5,000" (units.fmt_tokens). */
export function fmtTokens(n) {
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
