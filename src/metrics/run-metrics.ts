/**
 * A run's metrics in the Prometheus text exposition format (version 0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/), for node-exporter's textfile
 * collector or a Pushgateway. Every metric is a gauge: each value is a fact about the last run.
 *
 * Per week (label `drop_date`): rows, rejects, source bytes, seconds per stage (label `stage`,
 * the stages this run did) and the outcome as a state set (label `outcome`, 1 for the week's
 * outcome, 0 for the others). Per run: weeks by outcome, the exit code, when the run ended and
 * when a run last succeeded (exit code 0), and how many weeks the warehouse is behind the
 * calendar after the run (commands/freshness.ts; left out when it holds no week or could not be
 * read, so an alert on it never fires on a guess).
 *
 * The two sinks differ only in the `job` label. The textfile collector adds none, so in a
 * textfile every sample carries `job="<job>"`; the Pushgateway takes the job from its URL (the
 * grouping key) and adds it to every sample itself, so a push body carries none.
 */
import type { RunSummary } from '../pipeline/week-result.ts';
import { WEEK_OUTCOMES, type WeekOutcome, type WeekResult, type WeekStage } from '../pipeline/week-result.ts';

export const METRIC = {
  weekRows: 'mta_ingest_week_rows',
  weekRejects: 'mta_ingest_week_rejects',
  weekSourceBytes: 'mta_ingest_week_source_bytes',
  weekStageSeconds: 'mta_ingest_week_stage_seconds',
  weekOutcome: 'mta_ingest_week_outcome',
  runWeeks: 'mta_ingest_run_weeks',
  runExitCode: 'mta_ingest_run_exit_code',
  lastRun: 'mta_ingest_last_run_timestamp_seconds',
  lastSuccess: 'mta_ingest_last_success_timestamp_seconds',
  weeksBehind: 'mta_ingest_weeks_behind',
} as const;

export const OUTCOMES: readonly WeekOutcome[] = WEEK_OUTCOMES;
/** In pipeline order. */
export const STAGES: readonly WeekStage[] = ['fetch', 'convert', 'measure', 'store', 'load'];

export interface RenderOptions {
  /** The job: a `job` label on every sample of a textfile; in a push it is in the URL instead. */
  job: string;
  /** When the run ended: the last-run timestamp, and the last-success one if the run succeeded. */
  now: Date;
  /** Last success of an earlier run (Unix seconds), kept when this run did not succeed. */
  previousLastSuccess?: number | undefined;
  /** Where the text goes (default 'textfile'): decides whether samples carry the `job` label. */
  target?: 'textfile' | 'pushgateway' | undefined;
  /** Drop dates after the warehouse's latest loaded week, up to the latest expected one. */
  weeksBehind?: number | undefined;
}

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  samples: { labels: Labels; value: number }[];
}

export function renderRunMetrics(summary: RunSummary, options: RenderOptions): string {
  const common: Labels = (options.target ?? 'textfile') === 'textfile' ? { job: options.job } : {};
  const family = (name: string, help: string): Family => ({ name, help, samples: [] });
  const weekRows = family(METRIC.weekRows, 'Rows of the week in the warehouse (loaded or already loaded).');
  const weekRejects = family(METRIC.weekRejects, 'Source lines of the week that could not be typed.');
  const weekBytes = family(METRIC.weekSourceBytes, 'Source bytes fetched for the week in this run.');
  const weekStages = family(METRIC.weekStageSeconds, 'Seconds each stage of the week took in this run.');
  const weekOutcome = family(
    METRIC.weekOutcome,
    "The week's outcome in this run: 1 for it, 0 for the others.",
  );
  const runWeeks = family(METRIC.runWeeks, 'Weeks of the last run, by outcome.');
  const exitCode = family(
    METRIC.runExitCode,
    'Exit code of the last run (0 ok, 1 failed, 3 not published, 4 suspect, 130/143 stopped by a signal).',
  );
  const lastRun = family(METRIC.lastRun, 'Unix time the last run ended.');
  const lastSuccess = family(METRIC.lastSuccess, 'Unix time a run last ended with exit code 0.');
  const weeksBehind = family(
    METRIC.weeksBehind,
    "Weeks the warehouse is behind after the last run: drop dates after its latest loaded week, up to the calendar's latest (1 is normal from Saturday until the weekly run).",
  );

  for (const week of summary.weeks) {
    const at = (extra: Labels = {}): Labels => ({ ...common, drop_date: week.dropDate, ...extra });
    if (week.rows !== undefined) weekRows.samples.push({ labels: at(), value: week.rows });
    if (week.rejects !== undefined) weekRejects.samples.push({ labels: at(), value: week.rejects });
    weekBytes.samples.push({ labels: at(), value: week.bytes });
    for (const stage of STAGES) {
      const ms = week.timings?.[stage];
      if (ms !== undefined) weekStages.samples.push({ labels: at({ stage }), value: ms / 1000 });
    }
    for (const outcome of OUTCOMES) {
      weekOutcome.samples.push({ labels: at({ outcome }), value: week.outcome === outcome ? 1 : 0 });
    }
  }
  for (const outcome of OUTCOMES) {
    runWeeks.samples.push({ labels: { ...common, outcome }, value: countOf(summary.weeks, outcome) });
  }
  exitCode.samples.push({ labels: common, value: summary.exitCode });
  const now = options.now.getTime() / 1000;
  lastRun.samples.push({ labels: common, value: now });
  const success = summary.exitCode === 0 ? now : options.previousLastSuccess;
  if (success !== undefined) lastSuccess.samples.push({ labels: common, value: success });
  if (options.weeksBehind !== undefined)
    weeksBehind.samples.push({ labels: common, value: options.weeksBehind });

  return [
    weekRows,
    weekRejects,
    weekBytes,
    weekStages,
    weekOutcome,
    runWeeks,
    exitCode,
    lastRun,
    lastSuccess,
    weeksBehind,
  ]
    .filter((f) => f.samples.length > 0)
    .map(renderFamily)
    .join('');
}

function countOf(weeks: readonly WeekResult[], outcome: WeekOutcome): number {
  return weeks.filter((w) => w.outcome === outcome).length;
}

function renderFamily(family: Family): string {
  const lines = [`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} gauge`];
  for (const { labels, value } of family.samples) {
    lines.push(`${family.name}${renderLabels(labels)} ${formatValue(value)}`);
  }
  return `${lines.join('\n')}\n`;
}

function renderLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

/** Label values: backslash, double quote and line feed are escaped (\\, \", \n). */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** HELP text: backslash and line feed are escaped. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** Go's ParseFloat reads what JavaScript prints, except the spellings of the non-finite values. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}
