/**
 * What the BigQuery stand-in (bigquery-standin.ts) holds in memory: the requests, datasets, tables,
 * jobs and their scripts, what loads put in each partition, query results, the SQL engine over the
 * tables' rows, and its clock. One per stand-in; every route module reads and changes it.
 */
import { DEFAULT_JOB_RETENTION_MS } from './bigquery-standin-rules.ts';
import { createSqlEngine, type QueryOutcome, type SqlEngine } from './bigquery-standin-sql.ts';
import type {
  BeforeResponse,
  DatasetResource,
  DefaultScript,
  JobScript,
  PartitionChunk,
  StandinJob,
  StandinOptions,
  StandinRequest,
  TableResource,
} from './bigquery-standin-types.ts';

export interface StandinState {
  readonly options: StandinOptions;
  /** Every request, in arrival order. */
  readonly requests: StandinRequest[];
  /** Key `${project}.${dataset}`. */
  readonly datasets: Map<string, { location: string; resource: DatasetResource }>;
  /** Key `${project}.${dataset}.${table}` → the table resource: as posted, plus id, tableReference, creationTime, etag, ... */
  readonly tables: Map<string, TableResource>;
  /** Key jobId. */
  readonly jobs: Map<string, StandinJob>;
  /**
   * Table contents (with `gcsUrl`): key `${project}.${dataset}.${table}` → partition
   * (YYYYMMDD, or UNPARTITIONED) → the chunks loads put there.
   */
  readonly partitions: Map<string, Map<string, PartitionChunk[]>>;
  /** Queued by `script`, each taken by the first job inserted of its kind. */
  readonly scripts: JobScript[];
  /** Jobs whose DONE side effects have been (or are being) applied. */
  readonly finished: Map<string, Promise<void>>;
  /** Query jobs' results, once DONE without error. */
  readonly results: Map<string, QueryOutcome>;
  /** The tables' rows, and the SQL that runs over them (bigquery-standin-sql.ts). */
  readonly sql: SqlEngine;
  /** How long a job's metadata is kept. */
  readonly retentionMs: number;
  hook: BeforeResponse | undefined;
  defaults: DefaultScript | undefined;
  /** What `advanceClock` added to the clock. */
  clockOffset: number;
  /** The stand-in's clock: `options.now` (default Date.now) plus `clockOffset`. */
  now(): number;
}

export function createStandinState(options: StandinOptions): StandinState {
  const tables = new Map<string, TableResource>();
  const state: StandinState = {
    options,
    requests: [],
    datasets: new Map(),
    tables,
    jobs: new Map(),
    partitions: new Map(),
    scripts: [],
    finished: new Map(),
    results: new Map(),
    sql: createSqlEngine(tables),
    retentionMs: options.jobRetentionMs ?? DEFAULT_JOB_RETENTION_MS,
    hook: undefined,
    defaults: options.defaultScript,
    clockOffset: 0,
    now: () => (options.now ?? Date.now)() + state.clockOffset,
  };
  return state;
}
