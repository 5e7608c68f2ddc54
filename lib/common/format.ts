/**
 * How numbers are shown and written, once for the CLI and the reports: decibels, 0..1 scores, and JSON, which
 * has no Infinity or NaN (docs/errors.md states the rule).
 */

/** `12.34 dB`; +Infinity (identical signals) `inf dB (identical)`; -Infinity `-inf dB`; NaN `n/a`. */
export function formatDb(value: number, digits = 2): string {
  if (Number.isFinite(value)) return `${value.toFixed(digits)} dB`;
  if (Number.isNaN(value)) return 'n/a';
  return value > 0 ? 'inf dB (identical)' : '-inf dB';
}

/** A 0..1 score such as STOI: `0.912`, or `missing` for null (too little speech to score). */
export function formatScore(value: number | null, digits = 3, missing = 'n/a'): string {
  return value === null ? missing : value.toFixed(digits);
}

/**
 * JSON (2-space indent, newline at the end) with the package's one rule for numbers JSON cannot hold: Infinity,
 * -Infinity and NaN are written as null, and an object with an `snr` (quality metrics) also gets `identical`:
 * true when its SNR is +Infinity (the signals are identical), false otherwise.
 */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, replacer, 2)}\n`;
}

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'snr' in value) {
    const snr = (value as { snr: unknown }).snr;
    if (typeof snr === 'number') return { ...value, identical: snr === Infinity };
  }
  return value;
}

/**
 * A number for a message: integers as they are, others rounded to `digits` significant digits (at most 3
 * decimals from 1 up) with trailing zeros dropped: `0.01333`, `1.5`, `12.346`, never `0.013333333333333334`.
 */
export function formatNumber(value: number, digits = 4): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const text = Math.abs(value) >= 1 ? value.toFixed(3) : value.toPrecision(digits);
  return String(Number(text));
}

/** `1 input`, `2 inputs`, `0 inputs`: the count and the word in the number it needs (`plural(2, 'index', 'indices')`). */
export function plural(count: number, word: string, many = `${word}s`): string {
  return `${formatNumber(count)} ${count === 1 ? word : many}`;
}

/** `1st`, `2nd`, `3rd`, `4th`, `11th`, `12th`, `13th`, `21st`, `102nd`. */
export function ordinal(n: number): string {
  const teen = Math.abs(n) % 100;
  const last = Math.abs(n) % 10;
  const suffix = teen >= 11 && teen <= 13 ? 'th' : last === 1 ? 'st' : last === 2 ? 'nd' : last === 3 ? 'rd' : 'th';
  return `${n}${suffix}`;
}
