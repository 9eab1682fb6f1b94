/**
 * `mta-ingest demo`: the whole pipeline, offline, with no credentials. Serves the sample week
 * shipped in the package from a loopback server, runs it (fetch, convert, store, load) into a
 * local lake and a DuckDB warehouse under `dir`, then reads the week's busiest stations back.
 * Returns what happened; the caller prints.
 */
import { resolve, join } from 'node:path';
import { resolveConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { ExitCode } from '../errors.ts';
import { runCommand } from '../commands/run.ts';
import { reportCommand, type WeekReportTable } from '../commands/report.ts';
import type { WeekResult } from '../pipeline/week-result.ts';
import { DEMO_DROP_DATE, startDemoSource } from './demo-source.ts';

/** The Monday after the sample's drop date, so the date is never "in the future". */
export const DEMO_NOW = '2023-06-05T12:00:00Z';
export { DEFAULT_DEMO_DIR } from './demo-defaults.ts';

export interface DemoOptions {
  /** The folder the lake and the warehouse go in (created as needed). */
  dir: string;
  log: Logger;
  /** The clock the run uses; defaults to DEMO_NOW. */
  now?: Date | undefined;
  /** The command's stop (SIGINT/SIGTERM): the run reports its week interrupted and ends. */
  signal?: AbortSignal | undefined;
}

export interface DemoResult {
  weeks: WeekResult[];
  /** The top 10 stations; empty when the week did not load. */
  report: WeekReportTable;
  /** Absolute paths, ready for `mta-ingest status --lake … --warehouse …`. */
  lake: string;
  warehouse: string;
  /** The run's exit code: 0 when the week landed. */
  exitCode: ExitCode;
}

export async function demoCommand(options: DemoOptions): Promise<DemoResult> {
  const root = resolve(options.dir);
  const lake = join(root, 'lake');
  const warehouse = join(root, 'warehouse.duckdb');
  const now = options.now ?? new Date(DEMO_NOW);
  const source = await startDemoSource();
  try {
    // No environment and no block: the demo never goes anywhere but its own folder and source.
    const config = resolveConfig({ sourceUrl: source.baseUrl, lake, warehouse }, {});
    const { weeks, exitCode } = await runCommand({
      selection: { date: DEMO_DROP_DATE },
      force: true,
      config,
      now,
      log: options.log,
      signal: options.signal,
    });
    const landed = exitCode === ExitCode.ok && weeks.length > 0;
    const report = landed
      ? await reportCommand({ date: DEMO_DROP_DATE, limit: '10', config, now })
      : { dropDate: DEMO_DROP_DATE, stations: [] };
    return { weeks, report, lake, warehouse, exitCode };
  } finally {
    await source.close();
  }
}
