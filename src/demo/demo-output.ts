/**
 * How `mta-ingest demo` looks in a terminal: the week line, the top-10 table, and where the
 * lake and warehouse are with the command to look at them. A pure function; `cli.ts` prints.
 */
import { formatReport, formatWeekLine } from '../cli-output.ts';
import { ExitCode } from '../errors.ts';
import type { DemoResult } from './demo-command.ts';

/** Quotes a path for a POSIX shell when it needs it, so the suggested command can be pasted. */
function shellArg(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

/** `tool`: how the user types the tool, so the closing hint can be pasted (cli/invocation.ts). */
export function formatDemo(demo: DemoResult, tool = 'mta-ingest'): string {
  const lines = demo.weeks.map(formatWeekLine);
  if (demo.exitCode !== ExitCode.ok) {
    lines.push('The demo week did not load (see the line above); nothing to report.');
    return lines.join('\n');
  }
  lines.push('', formatReport(demo.report), '');
  const lake = shellArg(demo.lake);
  const warehouse = shellArg(demo.warehouse);
  lines.push(
    `Lake ${lake}, warehouse ${warehouse} (DuckDB); look with: ${tool} status --lake ${lake} --warehouse ${warehouse}`,
  );
  return lines.join('\n');
}
