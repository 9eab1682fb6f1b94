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
  /**
   * `status --fail-if-behind N` found the warehouse N or more weeks behind the calendar (or
   * holding no week): a monitor's alert, apart from 1 (the check itself failed) and 2 (usage).
   */
  behind: 6,
  /** Stopped by SIGINT (128 + 2, the shells' convention). */
  interruptedBySigint: 130,
  /** Stopped by SIGTERM (128 + 15). */
  interruptedBySigterm: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * What failed, when it is known more precisely than the stage: the advice after `→`
 * (pipeline/advice.ts) follows it, and it decides what is never retried.
 * Local resources: `disk-full` (ENOSPC, EDQUOT), `read-only` (EROFS), `permission` (EACCES,
 * EPERM), `path` (ENOENT, ENOTDIR, EISDIR: a path missing, or a file where a folder should be).
 * Fetch: `redirects` (a loop, or too many), `tls` (a certificate refused), `content-encoding`
 * (one we cannot decode), `http-status` (a 4xx that retrying cannot change), `not-turnstile`
 * (an HTML page, an empty body, an unknown first line), `incomplete-body` (every attempt was cut).
 */
export type LocalFault = 'disk-full' | 'read-only' | 'permission' | 'path';
export type FetchFault =
  'redirects' | 'tls' | 'content-encoding' | 'http-status' | 'not-turnstile' | 'incomplete-body';
export type FailureKind = LocalFault | FetchFault;

export interface FailureOptions extends ErrorOptions {
  kind?: FailureKind | undefined;
}

/** Base class: a message meant for a person, one line, no stack trace needed. */
export class MtaIngestError extends Error {
  readonly exitCode: ExitCode = ExitCode.failed;
  readonly kind: FailureKind | undefined;
  constructor(message: string, options?: FailureOptions) {
    super(message, options);
    this.name = new.target.name;
    this.kind = options?.kind;
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
 * A local disk or path failed us (full, read-only, not ours, missing, a file where a folder
 * should be): never retried, never blamed on the network. The message names the path and the
 * cause in one line.
 */
export class LocalResourceError extends MtaIngestError {
  declare readonly kind: LocalFault;
}

const LOCAL_FAULTS: Readonly<Record<string, { kind: LocalFault; says: string }>> = {
  ENOSPC: { kind: 'disk-full', says: 'no space left on the device' },
  EDQUOT: { kind: 'disk-full', says: 'disk quota exceeded' },
  EROFS: { kind: 'read-only', says: 'read-only file system' },
  EACCES: { kind: 'permission', says: 'permission denied' },
  EPERM: { kind: 'permission', says: 'operation not permitted' },
  ENOENT: { kind: 'path', says: 'no such file or folder' },
  ENOTDIR: { kind: 'path', says: 'a file is where a folder should be' },
  EISDIR: { kind: 'path', says: 'a folder is where a file should be' },
};

/**
 * `error` as a LocalResourceError when a file-system errno explains it (in it or its causes),
 * naming `path` and what was being done; undefined otherwise. Use it only around file-system
 * calls: a socket's errors carry errno codes too (a connect can fail with EACCES).
 */
export function localResourceError(
  error: unknown,
  path: string,
  doing: string,
): LocalResourceError | undefined {
  if (error instanceof LocalResourceError) return error;
  const code = errnoOf(error);
  const fault = code === undefined ? undefined : LOCAL_FAULTS[code];
  if (!fault) return undefined;
  return new LocalResourceError(`${doing} ${path} failed: ${fault.says} (${code})`, {
    cause: error,
    kind: fault.kind,
  });
}

/**
 * The failure's kind, for the advice: the one an MtaIngestError carries, else a local fault
 * told by an errno in its causes or, for DuckDB (whose errors are text), by the OS's message.
 */
export function failureKindOf(error: unknown): FailureKind | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth += 1) {
    if (e instanceof MtaIngestError && e.kind !== undefined) return e.kind;
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && LOCAL_FAULTS[code]) return LOCAL_FAULTS[code].kind;
    const text = OS_MESSAGES.find(([pattern]) => pattern.test(e instanceof Error ? e.message : ''));
    if (text) return text[1];
  }
  return undefined;
}

/**
 * A full or read-only disk named in a failure's one-line text (its errno code or the OS's
 * words): for reports built from the message alone, such as a warehouse that failed as it was
 * opened. Only these two: "permission denied" or ENOENT in a text may be a cloud service's.
 */
export function localFaultInText(text: string | undefined): LocalFault | undefined {
  if (text === undefined) return undefined;
  return OS_MESSAGES.find(([pattern]) => pattern.test(text))?.[1];
}

/** strerror(3) texts as DuckDB quotes them in its IO errors (it reports no errno code). */
const OS_MESSAGES: readonly (readonly [RegExp, LocalFault])[] = [
  [/No space left on device|Disk quota exceeded|\b(ENOSPC|EDQUOT)\b/i, 'disk-full'],
  [/Read-only file system|\bEROFS\b/i, 'read-only'],
];

function errnoOf(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth += 1) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && LOCAL_FAULTS[code]) return code;
  }
  return undefined;
}

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
