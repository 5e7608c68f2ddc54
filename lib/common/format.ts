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
