/**
 * The one writer of every `--json` document: an object whose first field is `version`, the
 * shape's version (raised when a field changes meaning or goes away; new fields do not raise
 * it), then the command's fields. A list is never the document itself, always a named field
 * (`plan`'s weeks, `versions`' versions), so a field can be added beside it later. Numbers that
 * are not whole are rounded to 6 decimals here, so no float noise (0.1 + 0.2) reaches a consumer
 * whatever computed them; sources round to their own precision first (seconds to milliseconds).
 */

/** The version of the --json documents' shape. */
export const JSON_VERSION = 1;

export function jsonDocument(fields: object): string {
  return JSON.stringify({ version: JSON_VERSION, ...fields }, roundNumbers, 2);
}

function roundNumbers(_key: string, value: unknown): unknown {
  if (typeof value !== 'number' || Number.isInteger(value) || !Number.isFinite(value)) return value;
  return Math.round(value * 1e6) / 1e6;
}
