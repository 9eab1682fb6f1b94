/**
 * `mta-ingest report --date D`: the week's busiest stations by entries, from the interval
 * view (entries since each turnstile's previous reading, resets and jumps left out).
 */
import { resolveDropDates, type IsoDate } from '../dates/drop-dates.ts';
import { ExitCode, UsageError } from '../errors.ts';
import type { Config } from '../config.ts';
import type { BackendOverrides } from '../backends.ts';
import type { StationTotal } from '../warehouse/warehouse.ts';
import { withReadOnlyBackends } from './read-only-backends.ts';
import type { Logger } from '../log.ts';

export interface ReportOptions {
  date: string | undefined;
  limit: string | undefined;
  config: Config;
  now: Date;
  overrides?: BackendOverrides | undefined;
  /** The command's stop (SIGINT/SIGTERM): waits and DuckDB queries end at once. */
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
}

export interface WeekReportTable {
  dropDate: IsoDate;
  stations: StationTotal[];
  /** What the query processed, where queries are billed (BigQuery); absent for DuckDB. */
  bytesProcessed?: number | undefined;
}

/**
 * The exit code a report decides: 3, as for a week not published yet, when it has nothing to
 * show (the week is not loaded yet), so a script that reads a report notices; 0 otherwise.
 */
export function reportExitCode(report: WeekReportTable): ExitCode {
  return report.stations.length === 0 ? ExitCode.notPublished : ExitCode.ok;
}

export async function reportCommand(options: ReportOptions): Promise<WeekReportTable> {
  if (options.date === undefined) throw new UsageError('report needs --date YYYY-MM-DD (a drop date)');
  const [dropDate] = resolveDropDates({ date: options.date }, options.now);
  const limit = options.limit ?? '10';
  if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1) {
    throw new UsageError(`--limit ${limit} is not a whole number from 1 to 9999`);
  }
  return withReadOnlyBackends(
    options.config,
    async (_lake, warehouse) => {
      if (!warehouse.capabilities.answersQueries) {
        throw new UsageError(
          `${warehouse.description} answers no queries here; query its view turnstile_intervals directly`,
        );
      }
      const { stations, bytesProcessed } = await warehouse.topStations(dropDate!, Number(limit));
      return { dropDate: dropDate!, stations, ...(bytesProcessed !== undefined && { bytesProcessed }) };
    },
    options.overrides,
    options.signal,
    options.log,
  );
}
