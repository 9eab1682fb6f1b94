/**
 * The load state kept in BigQuery itself, like dlt's `_dlt_loads`: the table `_mta_ingest_loads`
 * (DAY-partitioned on drop_date) gets one row per week loaded, written by a query job after the
 * load job succeeds, and holds what the partition held then: its row count and counter sums,
 * read from the partition by the same statement. `run`, `plan`, `status` and `verify` read the
 * newest row of each week.
 *
 * Why not the load job: BigQuery keeps job metadata for about six months (jobs.list reference),
 * after which a week read back from its job would look unloaded. A crash between the load and
 * its record is safe: the week reads as not loaded, the rerun's load job has the same id (409),
 * is found DONE and taken (or, once expired, loaded again: WRITE_TRUNCATE replaces the partition),
 * and the record is written then.
 */
import type { IsoDate } from '../../dates/drop-dates.ts';
import { WarehouseError } from '../../errors.ts';
import { StoppedError } from '../../util/abort.ts';
import { PARTITION_COLUMN, TABLE_NAME } from '../../schema/turnstile-schema.ts';
import type { LoadRecord } from '../warehouse.ts';
import { tableRef, type BigQueryTarget } from '../../backends/bigquery-uri.ts';
import type { JobRunner } from './bigquery-jobs.ts';
import { integerText, runQuery, textOf, timestampText, type QueryParameter } from './bigquery-queries.ts';

export const LOADS_TABLE = '_mta_ingest_loads';

/** The load-state table's fields; written by DML only, so REQUIRED modes are safe here. */
export function loadsTableSchema(): {
  fields: { name: string; type: string; mode: string; description: string }[];
} {
  const field = (name: string, type: string, description: string) => ({
    name,
    type,
    mode: 'REQUIRED',
    description,
  });
  return {
    fields: [
      field('drop_date', 'DATE', 'The week loaded (partition).'),
      field('source_sha256', 'STRING', "The source file's sha256: which version of the week."),
      field('row_count', 'INT64', 'Rows the partition held after the load.'),
      field('entries_sum', 'NUMERIC', 'Sum of entries over those rows (exact).'),
      field('exits_sum', 'NUMERIC', 'Sum of exits over those rows (exact).'),
      field('job_id', 'STRING', 'The load job.'),
      field('run_id', 'STRING', 'The mta-ingest run that loaded it.'),
      field('loaded_at', 'TIMESTAMP', 'When the load was recorded.'),
    ],
  };
}

export const LOADS_TABLE_OPTIONS = {
  timePartitioning: { type: 'DAY', field: 'drop_date' },
  description:
    'mta-ingest load state: one row per week loaded into turnstile_readings; the newest row of a week wins.',
};

/** The newest record of each week (or of one week), oldest week first. */
export async function readLoads(
  runner: JobRunner,
  target: BigQueryTarget,
  dropDate?: IsoDate,
): Promise<LoadRecord[]> {
  const parameters: QueryParameter[] =
    dropDate === undefined ? [] : [{ name: 'drop_date', type: 'DATE', value: dropDate }];
  const sql = `SELECT drop_date, source_sha256, row_count, entries_sum, exits_sum, job_id, loaded_at
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY drop_date ORDER BY loaded_at DESC, job_id DESC) AS newest
  FROM ${tableRef(target, LOADS_TABLE)}${dropDate === undefined ? '' : '\n  WHERE drop_date = @drop_date'}
)
WHERE newest = 1
ORDER BY drop_date`;
  const result = await runQuery(runner, sql, parameters);
  if (result === undefined)
    throw new WarehouseError('reading the BigQuery load state failed: its query job vanished');
  return result.rows.map((row) => ({
    dropDate: textOf(row.drop_date),
    sourceSha256: textOf(row.source_sha256),
    rows: Number(textOf(row.row_count)),
    entriesSum: integerText(row.entries_sum),
    exitsSum: integerText(row.exits_sum),
    jobId: textOf(row.job_id),
    loadedAt: timestampText(row.loaded_at),
  }));
}

/** The id of the query job that records load job `loadJobId`: a retry finds it (409). */
export function recordJobIdFor(loadJobId: string): string {
  return loadJobId.replace(/^mta_ingest_load_/, 'mta_ingest_record_');
}

/**
 * Records a finished load: one row, with the partition's row count and counter sums read by the
 * same statement. Returns the week's record as read back.
 */
export async function recordLoad(
  runner: JobRunner,
  target: BigQueryTarget,
  load: { dropDate: IsoDate; sourceSha256: string; jobId: string; runId: string },
): Promise<LoadRecord> {
  const sql = `INSERT INTO ${tableRef(target, LOADS_TABLE)}
  (drop_date, source_sha256, row_count, entries_sum, exits_sum, job_id, run_id, loaded_at)
SELECT @drop_date, @source_sha256, COUNT(*),
  IFNULL(SUM(CAST(entries AS NUMERIC)), 0), IFNULL(SUM(CAST(exits AS NUMERIC)), 0),
  @job_id, @run_id, CURRENT_TIMESTAMP()
FROM ${tableRef(target, TABLE_NAME)}
WHERE ${PARTITION_COLUMN} = @drop_date`;
  const parameters: QueryParameter[] = [
    { name: 'drop_date', type: 'DATE', value: load.dropDate },
    { name: 'source_sha256', type: 'STRING', value: load.sourceSha256 },
    { name: 'job_id', type: 'STRING', value: load.jobId },
    { name: 'run_id', type: 'STRING', value: load.runId },
  ];
  await runQuery(runner, sql, parameters, recordJobIdFor(load.jobId)).catch((error: unknown) => {
    if (error instanceof StoppedError) throw error;
  });
  let [record] = await readLoads(runner, target, load.dropDate);
  if (record?.jobId !== load.jobId) {
    // The deterministic id is taken by a job that failed, that BigQuery no longer keeps, or whose
    // row was deleted since: the record is written by a job of its own (newest row wins).
    await runQuery(runner, sql, parameters);
    [record] = await readLoads(runner, target, load.dropDate);
  }
  if (record?.jobId !== load.jobId) {
    throw new WarehouseError(`the load ${load.jobId} of ${load.dropDate} was not recorded in ${LOADS_TABLE}`);
  }
  return record;
}
