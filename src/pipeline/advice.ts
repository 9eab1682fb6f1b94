/**
 * What to do next about a week that did not load: one sentence a person can act on, by
 * outcome and by the stage that failed. It travels in the week's result, so terminals, logs
 * and JSON consumers all get it.
 */
import type { WeekResult, WeekStage } from './week-result.ts';
import { localFaultInText, type FailureKind } from '../errors.ts';

export function adviceFor(
  week: Pick<WeekResult, 'outcome' | 'failedStage' | 'detail'> & {
    dropDate?: string;
    /** What failed, when known more precisely than the stage (errors.ts, failureKindOf). */
    failure?: FailureKind | undefined;
  },
  isLatest: boolean,
  /** How the user types the tool (Config.tool). */
  tool = 'mta-ingest',
): string | undefined {
  if (week.outcome === 'not-published') {
    return isLatest
      ? 'not published yet: the MTA posts each week on Saturday; retry later, or pass --date for an earlier week'
      : 'the source has no file for this date: check the date, or --source-url if it points at a mirror';
  }
  // A signal is no fault of the source, the lake or the warehouse: nothing to fix, and the
  // network is not to blame. Resuming is running again: loaded weeks are not fetched twice.
  if (week.outcome === 'interrupted' || week.outcome === 'skipped') {
    const state =
      week.outcome === 'skipped'
        ? 'not begun: the run was stopped by a signal'
        : week.failedStage === 'load'
          ? 'stopped by a signal; nothing was half-written (the load was rolled back, or its BigQuery job finishes on its own)'
          : 'stopped by a signal; nothing was half-written';
    return `${state}: to resume, run the same command again (weeks already loaded are not fetched again), or this week alone with --date ${week.dropDate ?? 'DATE'}`;
  }
  if (week.outcome === 'suspect') {
    return `held back, not loaded: check the source file; if it is right, rerun with --accept ${week.dropDate ?? 'DATE'}, else wait for a corrected file (${tool} versions --date ${week.dropDate ?? 'DATE'} lists what the lake keeps)`;
  }
  if (week.outcome !== 'failed') return undefined;
  if (week.detail?.startsWith('--strict')) {
    return 'inspect the rejects and duplicates (rerun without --strict to load and see them in status), then decide';
  }
  // A report built from a message alone (a warehouse that failed as it opened) names its disk
  // fault only in its text.
  const failure = week.failure ?? localFaultInText(week.detail);
  if (failure !== undefined) return `${STAGE_STATE[week.failedStage ?? 'fetch']}; ${CAUSE_ADVICE[failure]}`;
  switch (week.failedStage) {
    case 'fetch':
      return 'nothing was stored; check the network and --source-url, then rerun (retries: --fetch-attempts)';
    case 'convert':
    case 'measure':
      return 'nothing was stored; the file itself could not be read: rerun with --log-level debug and report the file';
    case 'store':
      return 'the week is not committed (no manifest); check access to the lake (--lake) and rerun';
    case 'load':
      return 'the lake holds the week; fix the warehouse (--warehouse) and rerun: it loads from the lake without converting again';
    default:
      return 'rerun the week; see the log (stderr) for details';
  }
}

/** What a failure at each stage leaves behind (every write is atomic, the manifest last). */
const STAGE_STATE: Record<WeekStage, string> = {
  fetch: 'nothing was stored',
  convert: 'nothing was stored',
  measure: 'nothing was stored',
  store: 'the week is not committed (no manifest)',
  load: 'the lake holds the week; a rerun loads it from there',
};

/** What to do about each known cause: a local fault is not the network's, a 4xx not a retry's. */
const CAUSE_ADVICE: Record<FailureKind, string> = {
  'disk-full':
    'a local disk is full (the path is in the message): free space there, or point --work-dir, --lake or --warehouse at another disk, then rerun',
  'read-only':
    'a local path is on a read-only file system (named in the message): point --work-dir, --lake or --warehouse at a writable folder, then rerun',
  permission:
    'the worker may not write a local path (named in the message): fix its permissions or owner, or run as a user who may, then rerun',
  path: 'a local path is missing, or a file stands where a folder should (named in the message): fix --work-dir, --lake or --warehouse, then rerun',
  redirects:
    'the source redirects in a loop or too often: check --source-url (open it in a browser), then rerun',
  tls: "the source's TLS certificate was refused: check --source-url's host; for a private CA set NODE_EXTRA_CA_CERTS, then rerun",
  'content-encoding':
    'the source sends an encoding the worker cannot decode: point --source-url at a server or proxy that sends plain text, gzip or deflate',
  'http-status':
    'the source refused the request (not retried): check --source-url and any access the server requires, then rerun',
  'not-turnstile':
    'the source sent something that is not a turnstile file: check --source-url (a proxy or captive portal may answer in its place), then rerun',
  'incomplete-body':
    'every attempt was cut before the end of the body (nothing partial was kept): rerun later or raise --fetch-attempts; if it persists, the server or a proxy cuts downloads',
};
