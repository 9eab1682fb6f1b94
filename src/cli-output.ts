/**
 * How results look in a terminal or a log file: one line per week, aligned, and tables for
 * plan and status. Pure functions of the core's results; `cli.ts` does the printing.
 */
import type { WeekReport } from './pipeline/ingest-week.ts';
import type { PlannedWeek } from './commands/plan.ts';
import type { WeekStatus } from './commands/status.ts';
import type { WeekReportTable } from './commands/report.ts';

const count = new Intl.NumberFormat('en-US');

function megabytes(bytes: number | undefined): string {
  return bytes === undefined ? '-' : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** `2023-06-03  loaded          253,237 rows        0 rejects   33.2 MB    1.3 s  detail` */
export function formatWeekLine(week: WeekReport): string {
  const columns = [
    week.dropDate,
    week.outcome.padEnd(14),
    `${week.rows === undefined ? '-' : count.format(week.rows)} rows`.padStart(14),
    `${week.rejects === undefined ? '-' : count.format(week.rejects)} rejects`.padStart(13),
    megabytes(week.bytes).padStart(9),
    `${week.seconds.toFixed(1)} s`.padStart(8),
  ];
  const notes = [week.detail, week.advice ? `→ ${week.advice}` : undefined].filter(Boolean);
  return notes.length > 0 ? `${columns.join('  ')}  ${notes.join(' ')}` : columns.join('  ');
}

export function formatPlan(weeks: readonly PlannedWeek[]): string {
  const lines: string[] = [];
  for (const week of weeks) {
    lines.push(`${week.dropDate}  ${week.state}: ${week.action}`);
    lines.push(`  source    ${week.sourceUrl}`);
    lines.push(`  raw       ${week.objects.raw}`);
    lines.push(`  parquet   ${week.objects.parquet}`);
    lines.push(`  rejects   ${week.objects.rejects} (only when there are rejects)`);
    lines.push(`  manifest  ${week.objects.manifest}`);
  }
  lines.push(`${weeks.length} week${weeks.length === 1 ? '' : 's'}; nothing was fetched.`);
  return lines.join('\n');
}

export function formatStatus(weeks: readonly WeekStatus[]): string {
  if (weeks.length === 0) return 'No week stored or loaded yet.';
  const header = [
    'drop_date ',
    'rows'.padStart(10),
    'rejects'.padStart(8),
    'source'.padStart(9),
    'turnstiles'.padStart(10),
    'dups'.padStart(6),
    'outside'.padStart(7),
    'backwards'.padStart(9),
    'recovr'.padStart(7),
    '  warehouse',
  ];
  const lines = [header.join('  ')];
  const number = (n: number | undefined, width: number): string =>
    (n === undefined ? '-' : count.format(n)).padStart(width);
  for (const week of weeks) {
    const q = week.quality;
    lines.push(
      [
        week.dropDate,
        number(week.rows, 10),
        number(week.rejects, 8),
        megabytes(week.sourceBytes).padStart(9),
        number(q?.turnstiles, 10),
        number(q?.duplicateReadings, 6),
        number(q?.outsideWeek, 7),
        number(q?.countersBackwards, 9),
        (q === undefined ? '-' : `${(q.recoveredAuditShare * 100).toFixed(1)}%`).padStart(7),
        `  ${week.warehouse}${week.loadedAt ? ` (${week.loadedAt})` : ''}`,
      ].join('  '),
    );
  }
  return lines.join('\n');
}

export function formatReport(report: WeekReportTable): string {
  if (report.stations.length === 0) return `No intervals for ${report.dropDate}: is the week loaded?`;
  const rows = report.stations.map((s, i) => [
    String(i + 1).padStart(3),
    (s.station ?? '(unknown)').padEnd(24),
    (s.lineName ?? '').padEnd(12),
    count.format(s.entries).padStart(11),
    count.format(s.exits).padStart(11),
    String(s.turnstiles).padStart(10),
  ]);
  const header = [
    '  #',
    'station'.padEnd(24),
    'lines'.padEnd(12),
    'entries'.padStart(11),
    'exits'.padStart(11),
    'turnstiles',
  ];
  return [
    `Busiest stations, week of drop date ${report.dropDate}`,
    header.join('  '),
    ...rows.map((r) => r.join('  ')),
  ].join('\n');
}
