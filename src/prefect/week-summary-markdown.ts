/**
 * What a flow run tells Prefect about its weeks: a markdown table for the run's artifact, and a
 * one-line message for its final state (what Prefect's UI shows next to Completed or Failed).
 * Pure functions of the run's summary.
 */
import type { RunSummary } from '../pipeline/week-result.ts';
import type { WeekResult } from '../pipeline/week-result.ts';
import { oneLine } from '../errors.ts';

const count = new Intl.NumberFormat('en-US');
/** Prefect shows a state's message on one line; a backfill of failed weeks is cut here. */
const MESSAGE_LIMIT = 1000;

export function weekSummaryMarkdown(summary: RunSummary): string {
  const lines = [
    `### mta-ingest run ${summary.runId}`,
    '',
    `${outcomeCounts(summary.weeks)}; exit code ${summary.exitCode}.`,
    '',
    '| drop date | outcome | rows | rejects | source | seconds | note |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const week of summary.weeks) {
    const note = [week.detail, week.advice ? `→ ${week.advice}` : undefined].filter(Boolean).join(' ');
    lines.push(
      `| ${[
        week.dropDate,
        week.outcome,
        week.rows === undefined ? '-' : count.format(week.rows),
        week.rejects === undefined ? '-' : count.format(week.rejects),
        `${(week.bytes / 1e6).toFixed(1)} MB`,
        week.seconds.toFixed(1),
        note,
      ]
        .map(cell)
        .join(' | ')} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Completed: `1 week: 1 loaded (253,237 rows)`. Failed: the weeks that did not load, and why. */
export function stateMessage(summary: RunSummary, interrupted: boolean): string {
  const counts = outcomeCounts(summary.weeks);
  if (summary.exitCode === 0) return counts;
  // Skipped weeks are counted in the head; each of the others has its own reason.
  const notLoaded = summary.weeks.filter(
    (w) =>
      w.outcome === 'failed' ||
      w.outcome === 'not-published' ||
      w.outcome === 'suspect' ||
      w.outcome === 'interrupted',
  );
  const reasons = notLoaded.map((w) => `${w.dropDate} ${w.outcome}${w.detail ? `: ${w.detail}` : ''}`);
  const head = interrupted ? `interrupted after ${counts}` : counts;
  return capped([head, ...reasons].join('; '));
}

function outcomeCounts(weeks: readonly WeekResult[]): string {
  const byOutcome = new Map<string, number>();
  for (const week of weeks) byOutcome.set(week.outcome, (byOutcome.get(week.outcome) ?? 0) + 1);
  const rows = weeks.filter((w) => w.outcome === 'loaded').reduce((sum, w) => sum + (w.rows ?? 0), 0);
  const parts = [...byOutcome].map(([outcome, n]) => `${n} ${outcome}`);
  const loaded = rows > 0 ? ` (${count.format(rows)} rows loaded)` : '';
  return `${weeks.length} week${weeks.length === 1 ? '' : 's'}${parts.length ? `: ${parts.join(', ')}` : ''}${loaded}`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

/** One line (errors.ts), cut to Prefect's state message length. */
function capped(text: string): string {
  const line = oneLine(text);
  return line.length <= MESSAGE_LIMIT ? line : `${line.slice(0, MESSAGE_LIMIT - 1)}…`;
}
