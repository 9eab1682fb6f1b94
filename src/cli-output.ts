/**
 * How results look in a terminal or a log file: one line per week, aligned, and tables for
 * plan and status. Pure functions of the core's results; `cli.ts` does the printing.
 */
import type { WeekResult } from './pipeline/week-result.ts';
import type { PlannedWeek } from './commands/plan.ts';
import type { WeekStatus } from './commands/status.ts';
import type { Freshness, StatusReport } from './commands/freshness.ts';
import type { WeekReportTable } from './commands/report.ts';
import type { VerifyResult } from './commands/verify.ts';
import type { KeptVersion } from './commands/versions.ts';

const count = new Intl.NumberFormat('en-US');

function megabytes(bytes: number | undefined): string {
  return bytes === undefined ? '-' : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** `2023-06-03  loaded          253,237 rows        0 rejects   33.2 MB    1.3 s  detail` */
export function formatWeekLine(week: WeekResult): string {
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
    for (const problem of week.problems) lines.push(`  drift     ${problem}`);
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
        `  ${week.warehouse}${week.loadedAt ? ` (${week.loadedAt})` : ''}` +
          (week.suspect ? `; suspect version held back: ${week.suspect.join('; ')}` : ''),
      ].join('  '),
    );
  }
  return lines.join('\n');
}

/** `status`: the weeks' table, then how fresh the warehouse is. */
export function formatStatusReport(report: StatusReport, tool = 'mta-ingest'): string {
  return `${formatStatus(report.weeks)}\n\n${formatFreshness(report.freshness, tool).join('\n')}`;
}

/**
 * Latest loaded and expected weeks, gaps and suspect weeks, each with what to type next (`tool`:
 * how the user types the tool, cli/invocation.ts).
 */
export function formatFreshness(freshness: Freshness, tool = 'mta-ingest'): string[] {
  const { latestExpected, latestLoaded, weeksBehind, behind, gaps, suspect } = freshness;
  const weeks = (n: number): string => `${n} week${n === 1 ? '' : 's'}`;
  const lines: string[] = [];
  if (latestLoaded === null) {
    lines.push(`latest loaded    none; the latest expected is ${latestExpected} → ${tool} run`);
  } else if (weeksBehind === 0 || weeksBehind === null) {
    lines.push(`latest loaded    ${latestLoaded}, the latest expected: up to date`);
  } else {
    const dates = behind.length <= 3 ? behind.join(', ') : `${behind[0]} … ${behind.at(-1)}`;
    lines.push(
      `latest loaded    ${latestLoaded}; the latest expected is ${latestExpected}: ${weeks(weeksBehind)} behind (${dates} not loaded)` +
        ` → ${tool} run (catches up the last weeks; the MTA posts each week on Saturday)`,
    );
  }
  if (gaps.length === 0) {
    lines.push(
      `gaps             none${latestLoaded === null ? '' : ` since the first loaded week, ${freshness.firstLoaded}`}`,
    );
  } else {
    const total = gaps.reduce((sum, gap) => sum + gap.weeks, 0);
    const first = gaps[0]!.first;
    const last = gaps.at(-1)!.last;
    const shown = gaps
      .slice(0, 5)
      .map((gap) => (gap.weeks === 1 ? gap.first : `${gap.first} to ${gap.last} (${gap.weeks})`));
    if (gaps.length > 5) shown.push(`and ${gaps.length - 5} more`);
    lines.push(
      `gaps             ${weeks(total)} not loaded since the first loaded week, ${freshness.firstLoaded}: ${shown.join(', ')}` +
        ` → ${tool} run --from ${first} --to ${last} --missing`,
    );
  }
  if (suspect.length === 0) {
    lines.push('suspect          none');
  } else {
    for (const week of suspect) {
      lines.push(
        `suspect          ${week.dropDate}: ${week.reasons.join('; ')} → ${tool} versions --date ${week.dropDate}, then ${tool} run --date ${week.dropDate} --accept ${week.dropDate} if it is right`,
      );
    }
  }
  return lines;
}

/**
 * What to do about a report with nothing to show (exit 3, commands/report.ts): the week is not
 * in the warehouse, or holds no interval. `tool`: how the user types the tool (cli/invocation.ts).
 */
export function emptyReportAdvice(report: WeekReportTable, tool = 'mta-ingest'): string {
  return `load the week first: ${tool} run --date ${report.dropDate} (${tool} status lists the weeks the warehouse holds)`;
}

export function formatReport(report: WeekReportTable, tool = 'mta-ingest'): string {
  if (report.stations.length === 0) {
    return `No intervals for ${report.dropDate}: the warehouse holds none for this week.\n→ ${emptyReportAdvice(report, tool)}`;
  }
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
    // A billed query says what it cost: BigQuery's on-demand price is per byte processed.
    ...(report.bytesProcessed === undefined
      ? []
      : [`(query processed ${count.format(report.bytesProcessed)} bytes)`]),
  ].join('\n');
}

export function formatVerify(result: VerifyResult, tool = 'mta-ingest'): string {
  if (result.weeks.length === 0) return 'No week stored or loaded yet: nothing to verify.';
  const lines = result.weeks.map((week) =>
    week.state === 'ok' ? `${week.dropDate}  ok` : `${week.dropDate}  drift: ${week.problems.join('; ')}`,
  );
  const drifted = result.weeks.filter((week) => week.state === 'drift').length;
  lines.push(
    `${result.weeks.length} week${result.weeks.length === 1 ? '' : 's'} verified, ${drifted} drifted.`,
  );
  if (result.repair) {
    lines.push('Repair:', ...result.repair.weeks.map(formatWeekLine));
  } else if (drifted > 0) {
    lines.push(`→ run ${tool} verify --repair (or a plain run of those weeks) to heal them`);
  }
  return lines.join('\n');
}

export function formatVersions(versions: readonly KeptVersion[]): string {
  if (versions.length === 0) return 'The lake keeps no version of this week.';
  return versions
    .map(
      (v) =>
        `${v.sha256.slice(0, 12)}  ${v.status.padEnd(10)}  ${count.format(v.rows).padStart(9)} rows  ${megabytes(v.bytes).padStart(9)}  fetched ${v.fetchedAt}` +
        (v.reasons.length > 0
          ? `  ${v.status === 'suspect' ? 'suspect' : 'gate'}: ${v.reasons.join('; ')}`
          : ''),
    )
    .join('\n');
}
