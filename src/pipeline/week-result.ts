/**
 * What a run gives back: each week's result (its outcome and figures), live progress events,
 * and the run's summary. "Report" names one thing only: the `report` command (a week's busiest
 * stations). A module of its own so that the pipeline, the commands, the terminal display,
 * Prefect and metrics all import the results without importing each other.
 */
import type { IsoDate } from '../dates/drop-dates.ts';
import type { ExitCode, FailureKind } from '../errors.ts';

/**
 * How a week ended. `suspect`: fetched and stored beside the current version, but held back by
 * the plausibility gate (not loaded). `interrupted`: a signal stopped it mid-week (nothing
 * half-written). `skipped`: a signal stopped the run before the week began.
 */
export const WEEK_OUTCOMES = [
  'loaded',
  'already-loaded',
  'not-published',
  'suspect',
  'failed',
  'interrupted',
  'skipped',
] as const;
export type WeekOutcome = (typeof WEEK_OUTCOMES)[number];

export interface WeekResult {
  dropDate: IsoDate;
  outcome: WeekOutcome;
  sourceUrl: string;
  rows?: number | undefined;
  rejects?: number | undefined;
  /** Source bytes fetched in this run (0 when nothing was downloaded). */
  bytes: number;
  seconds: number;
  /** How it was done or why not, one line. */
  detail?: string | undefined;
  manifestUri?: string | undefined;
  /** Milliseconds each stage took (the stages this run did). */
  timings?: Partial<Record<WeekStage, number>> | undefined;
  /** The stage that failed, for a failed week. */
  failedStage?: WeekStage | undefined;
  /** What failed, when known more precisely than the stage (a full disk, a redirect loop...). */
  failure?: FailureKind | undefined;
  /** What to do next, for a week that did not load (pipeline/advice.ts). */
  advice?: string | undefined;
}

export type WeekStage = 'fetch' | 'convert' | 'measure' | 'store' | 'load';

/** What a live display needs: a stage began, moved on, or ended. */
export interface ProgressEvent {
  dropDate: IsoDate;
  stage: WeekStage;
  state: 'start' | 'progress' | 'done';
  /** fetch: bytes received so far; store: bytes written so far. */
  bytes?: number;
  /** convert: rows converted. */
  rows?: number;
}

export interface WeekOptions {
  force: boolean;
  /** Refuse a week with rejects or duplicate readings (nothing stored or loaded). */
  strict: boolean;
  /** Whether this is the latest drop date (a missing file is then "not yet", not "never"). */
  isLatest?: boolean;
  /** Load this week even if the plausibility gate finds it suspect (`--accept DATE`, `--force`). */
  accept?: boolean;
  /**
   * Read the week's rows in the warehouse even where that is a billed query (BigQuery), not
   * only its load record: `verify --repair`, whose audit found drift a run would not see.
   */
  readRows?: boolean;
}

/** A run: its id, every selected week's result, and the exit code decided from them. */
export interface RunSummary {
  runId: string;
  weeks: WeekResult[];
  exitCode: ExitCode;
  /** Lines about the selection: the catch-up's weeks, its bound cutting weeks off, the index page. */
  notes?: string[] | undefined;
}
