/**
 * What to do next about a week that did not load: one sentence a person can act on, by
 * outcome and by the stage that failed. It travels in the week's report, so terminals, logs
 * and JSON consumers all get it.
 */
import type { WeekReport } from './ingest-week.ts';

export function adviceFor(
  week: Pick<WeekReport, 'outcome' | 'failedStage' | 'detail'> & { dropDate?: string },
  isLatest: boolean,
): string | undefined {
  if (week.outcome === 'not-published') {
    return isLatest
      ? 'not published yet: the MTA posts each week on Saturday; retry later, or pass --date for an earlier week'
      : 'the source has no file for this date: check the date, or --source-url if it points at a mirror';
  }
  // A signal is no fault of the source, the lake or the warehouse: nothing to fix, just rerun.
  if (week.outcome === 'interrupted') {
    return week.failedStage === 'load'
      ? 'stopped by a signal; nothing was half-written (the load was rolled back, or its BigQuery job finishes on its own): rerun to finish the week'
      : 'stopped by a signal; nothing was half-written: rerun to finish the week';
  }
  if (week.outcome === 'skipped') return 'not begun: the run was stopped by a signal; rerun to take the week';
  if (week.outcome === 'suspect') {
    return `held back, not loaded: check the source file; if it is right, rerun with --accept ${week.dropDate ?? 'DATE'}, else wait for a corrected file (mta-ingest versions --date ${week.dropDate ?? 'DATE'} lists what the lake keeps)`;
  }
  if (week.outcome !== 'failed') return undefined;
  if (week.detail?.startsWith('--strict')) {
    return 'inspect the rejects and duplicates (rerun without --strict to load and see them in status), then decide';
  }
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
