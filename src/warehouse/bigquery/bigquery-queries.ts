/**
 * Query jobs: the load state, the week's facts and the report are read, and a load recorded,
 * by standard-SQL query jobs with typed named parameters (never values pasted into SQL). Each
 * runs where the dataset is (`JobRunner.location`, as datasets.get reports it), is polled like
 * a load job, and its rows are read with jobs.getQueryResults.
 */
import { randomUUID } from 'node:crypto';
import type { JobMetadata } from '@google-cloud/bigquery';
import { untilStopped } from '../../util/abort.ts';
import { WarehouseError, oneLine } from '../../errors.ts';
import { startJob, waitFor, type JobRunner } from './bigquery-jobs.ts';

/** A named query parameter (`@name` in the SQL) with its BigQuery type. */
export interface QueryParameter {
  name: string;
  type: 'DATE' | 'STRING' | 'INT64' | 'TIMESTAMP';
  value: string | number;
}

export interface QueryResult {
  /** The rows as the client decodes them (BigQueryDate, Big, numbers, ...). */
  rows: Record<string, unknown>[];
  /** statistics.query.totalBytesProcessed: what on-demand pricing bills (before the 10 MB minimum). */
  bytesProcessed: number;
  /** false: a job with this id existed already (409) and its result was read instead. */
  ours: boolean;
}

/**
 * Runs `sql` as a query job and returns its rows. `jobId` makes it idempotent (a retry finds the
 * earlier job by its id and reads its outcome); without one, a fresh id is used. Undefined when
 * the job with that id exists but BigQuery no longer keeps it (409, then 404).
 */
export async function runQuery(
  runner: JobRunner,
  sql: string,
  parameters: readonly QueryParameter[],
  jobId = `mta_ingest_query_${randomUUID().replaceAll('-', '_')}`,
): Promise<QueryResult | undefined> {
  const configuration: JobMetadata['configuration'] = {
    query: {
      query: sql,
      useLegacySql: false,
      parameterMode: 'NAMED',
      queryParameters: parameters.map((p) => ({
        name: p.name,
        parameterType: { type: p.type },
        parameterValue: { value: String(p.value) },
      })),
    },
    labels: { tool: 'mta-ingest' },
  };
  const { job, ours } = await startJob(runner, jobId, configuration, 'query');
  const metadata = await waitFor(runner, job, jobId);
  if (metadata === undefined) return undefined;
  const failure = metadata.status?.errorResult;
  if (failure) {
    throw new WarehouseError(
      `BigQuery query job ${jobId} failed: ${failure.message ?? failure.reason ?? 'unknown error'}`,
    );
  }
  let rows: Record<string, unknown>[];
  try {
    [rows] = (await untilStopped(job.getQueryResults({ autoPaginate: true }), runner.signal)) as [
      Record<string, unknown>[],
      ...unknown[],
    ];
  } catch (error) {
    if (error instanceof WarehouseError) throw error;
    throw new WarehouseError(`reading the results of BigQuery job ${jobId} failed: ${oneLine(error)}`, {
      cause: error,
    });
  }
  const statistics = metadata.statistics;
  const bytes = statistics?.query?.totalBytesProcessed ?? statistics?.totalBytesProcessed ?? 0;
  return { rows, bytesProcessed: Number(bytes), ours };
}

/** A decoded value as plain text: BigQueryDate/Datetime/Timestamp carry `.value`; Big prints exactly. */
export function textOf(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') {
    // BigQueryDate and its kin carry `.value`; Big (NUMERIC) prints its exact decimal.
    return 'value' in value ? String(value.value) : (value as { toString(): string }).toString();
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A NUMERIC sum as an integer decimal string ("123", never "123.000000000"). */
export function integerText(value: unknown): string {
  const text = textOf(value);
  const match = /^(-?\d+)(?:\.0*)?$/.exec(text);
  if (!match?.[1]) throw new WarehouseError(`BigQuery returned ${text} where a whole number was expected`);
  return match[1];
}

/** A TIMESTAMP as the load record keeps it: whole seconds, UTC, `Z`. */
export function timestampText(value: unknown): string {
  const text = textOf(value);
  const time = Date.parse(text);
  if (Number.isNaN(time))
    throw new WarehouseError(`BigQuery returned ${text} where a timestamp was expected`);
  return new Date(time).toISOString().replace(/\.\d+Z$/, 'Z');
}
