/**
 * Errors the core raises, each with the exit code the CLI turns it into. The core never
 * exits or prints: it throws these (or returns outcomes), and `cli.ts` maps them in one place.
 */

/** Exit codes, documented in the README. */
export const ExitCode = {
  ok: 0,
  /** At least one week failed (or an unexpected error). */
  failed: 1,
  /** Bad arguments or configuration: nothing was fetched. */
  usage: 2,
  /** A requested week is not published (yet) and nothing failed. */
  notPublished: 3,
  /**
   * A week was held back as suspect by the plausibility gate (kept in the lake beside the
   * current version, not loaded), and nothing failed.
   */
  suspect: 4,
  /** `verify` found drift between the lake, its manifests and the warehouse (and did not repair it). */
  drift: 5,
  /** Stopped by SIGINT (128 + 2, the shells' convention). */
  interruptedBySigint: 130,
  /** Stopped by SIGTERM (128 + 15). */
  interruptedBySigterm: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: a message meant for a person, one line, no stack trace needed. */
export class MtaIngestError extends Error {
  readonly exitCode: ExitCode = ExitCode.failed;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad arguments, dates or configuration, found before any request is made. */
export class UsageError extends MtaIngestError {
  override readonly exitCode = ExitCode.usage;
}

/** The source could not be fetched, or what it served is not a turnstile file. */
export class FetchError extends MtaIngestError {}

/** The spooled file could not be converted to Parquet. */
export class ConvertError extends MtaIngestError {}

/** A lake read or write failed. */
export class LakeError extends MtaIngestError {}

/** The warehouse refused or failed a load. */
export class WarehouseError extends MtaIngestError {}

/** The warehouse is held by another run past the wait: this week fails, the run goes on. */
export class WarehouseBusyError extends WarehouseError {}

/**
 * The message of anything thrown, on one printable line. Messages quote what the user gave
 * (flag values, paths, URLs), so a value must not be able to break the line or drive the
 * terminal: line breaks of every kind (with the space around them) become one space, tabs a
 * space, and any other control character (NUL, ESC of a terminal escape sequence, C1 codes)
 * is shown escaped, `\u001b`.
 */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (
    text
      .replace(/\s*[\r\n\u0085\u2028\u2029]\s*/g, ' ')
      .replace(/\t/g, ' ')
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
      .trim()
  );
}
