/**
 * A stand-in for the BigQuery REST API (v2), for tests: no BigQuery emulator installs here, so the
 * warehouse backend's tests drive the real `@google-cloud/bigquery` client against this real HTTP
 * server on 127.0.0.1 (random port). It keeps datasets, tables and jobs in memory, checks the
 * requests the way BigQuery does (404 notFound, 409 duplicate, 400 invalid, optional 401), and
 * plays scripted job states so polling, duplicate job ids and failed loads can be exercised.
 *
 * Give the client `apiEndpoint: standin.url`: it then sends to `${url}/bigquery/v2/projects/{p}/...`
 * (make sure BIGQUERY_EMULATOR_HOST is unset: it would replace that base URL wholesale).
 *
 * Routes (below /bigquery/v2/projects/{p}):
 *   POST   /datasets                      insert (409 if it exists; location defaults to US)
 *   GET    /datasets/{d}                  get (404 unless created)
 *   PATCH  /datasets/{d}                  update (merges top-level fields; If-Match checked)
 *   DELETE /datasets/{d}?deleteContents=  delete (400 resourceInUse if it has tables and not deleteContents)
 *   POST   /datasets/{d}/tables           insert (404 if the dataset is missing, 409 if the table exists;
 *                                         400 invalid if its view.query does not transpile and bind)
 *   GET    /datasets/{d}/tables/{t}       get
 *   PATCH  /datasets/{d}/tables/{t}       update (merges top-level fields; If-Match checked; view checked)
 *   DELETE /datasets/{d}/tables/{t}       delete
 *   POST   /jobs                          insert (400 without jobReference.jobId or configuration,
 *                                         409 duplicate if the jobId exists); answers in the first state
 *   GET    /jobs/{jobId}?location=L       get: the n-th GET answers states[n-1] (the last one repeats);
 *                                         404 if unknown, expired, or not visible from L (see below)
 *   POST   /queries                       jobs.query: runs the statement at once (a DONE job, generated id)
 *                                         and answers schema, rows, totalRows, pageToken, totalBytesProcessed
 *   GET    /queries/{jobId}?location=&maxResults=&pageToken=&startIndex=&formatOptions.useInt64Timestamp=
 *                                         jobs.getQueryResults: a poll like GET /jobs (jobComplete false
 *                                         until DONE), then the rows paged; 404 as GET /jobs
 * Anything else is a 404 with a JSON error body.
 *
 * SQL (bigquery-standin-sql.ts): an in-memory DuckDB holds every table's rows (those of loads, with
 * `gcsUrl`, and of DML) and its views; BigQuery SQL is transpiled by sqlglot (bigquery_sql.py, in
 * the venv .ci/install-test-servers makes), query parameters bound as typed literals. Query jobs
 * (POST /jobs with configuration.query, GoogleSQL only) run when they reach DONE and report
 * statistics.query {statementType, totalBytesProcessed, numDmlAffectedRows}, or fail DONE with
 * errorResult invalidQuery/notFound. Bytes processed follow BigQuery's on-demand data sizes over
 * the referenced columns, of the pinned partitions only (bigquery-standin-sql.ts). Scripts have a
 * `kind` (load by default, or query): a query job takes only a query script.
 *
 * What it enforces as BigQuery documents it (the rules, with their citations, are the functions of
 * bigquery-standin-rules.ts; each has a unit test and a test through the client):
 *   - job metadata expires: GET /jobs/{id} is 404 once the job is older than `jobRetentionMs`
 *     (default 180 days), its id still taken (409) — jobs.get/jobs.list, "Job information is
 *     available for a six month period after creation" (jobExpired). The clock is `now` (option)
 *     shifted by `advanceClock(ms)`; it dates creationTime and endTime.
 *   - locations in canonical form (US, EU upper case; regions lower case), for datasets and jobs
 *     (canonicalLocation); jobs.get without `location` finds only US/EU jobs, and a `location` must
 *     be the job's exactly — jobs.get reference, parameter location (jobVisibleAt).
 *   - a load job finds no dataset outside its own location: "Not found: Dataset p:d was not found
 *     in location L" once DONE — JobReference.location, default US (loadLocationError).
 *   - a decorated load holds only rows of its partition, NULL dates being __NULL__'s — "Load data
 *     into partitioned tables" (decoratorError).
 *   - Parquet loads: each file's column types and modes must be the schema's (provided, else the
 *     table's): modes equal, types per "Parquet conversions" — google-cloud-python#8093/#8305,
 *     java-bigquery#13 (parquetSchemaError).
 *
 * Errors have BigQuery's shape, `{error:{code, message, errors:[{message, domain, reason}], status}}`:
 * each entry of `errors` carries the message too, as BigQuery's do. (Without it the client's ApiError
 * would read "Multiple errors occurred ... 2. undefined".)
 *
 * A load job whose destination dataset does not exist (when it reaches DONE) fails with notFound,
 * as does one into a missing table with createDisposition CREATE_NEVER; with CREATE_IF_NEEDED (the
 * default) a missing table is created from the load's schema, timePartitioning and clustering.
 * A scripted error takes precedence over both.
 *
 * Table contents (with `gcsUrl`): besides the rows (above), the stand-in keeps a summary of what loads put
 * in a table, so that "loaded once" and "equals a clean run" are checks on its state, not on the
 * worker's word. When a load job of PARQUET files reaches DONE, each gs:// source is read from
 * the GCS emulator at `gcsUrl` (fake-gcs-server, JSON API) and summarised with DuckDB per
 * partition of the table's DAY partitioning field: rows and the sum of every integer column.
 * A load into `table$YYYYMMDD` must only hold rows of that day (else the job fails, as in
 * BigQuery); WRITE_TRUNCATE replaces the partition (or, without a decorator, the whole table),
 * WRITE_APPEND adds to it, WRITE_EMPTY fails on a partition that has rows. `partitions` holds the
 * result: one chunk per load that put rows there, so a week loaded twice shows as two chunks.
 * The job's outputRows is then the rows read, unless a script says otherwise. A job reaches DONE
 * only when it is polled (or by `finishAll`, which plays BigQuery finishing jobs that nobody
 * is watching, e.g. after the client was killed).
 *
 * `beforeResponse` runs after a request has taken effect and before it is answered: a test can
 * kill the client there (a crash right after a job insert, or while polling).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatasetResponse, JobMetadata, TableResponse } from '@google-cloud/bigquery';
import { query } from '../harnesses/duckdb-query.ts';
import {
  canonicalLocation,
  DEFAULT_JOB_RETENTION_MS,
  decoratorError,
  jobExpired,
  jobVisibleAt,
  loadLocationError,
  NULL_PARTITION,
  parquetSchemaError,
  type ParquetColumn,
  type SchemaField,
} from './bigquery-standin-rules.ts';
import {
  checkQueryConfiguration,
  configurationOfQueryRequest,
  httpErrorOf,
  jobErrorOf,
  queryRequest,
  queryResponse,
  queryStatistics,
  type QueryConfiguration,
} from './bigquery-standin-queries.ts';
import { SqlError } from './bigquery-standin-results.ts';
import { createSqlEngine, type QueryOutcome } from './bigquery-standin-sql.ts';

/** REST resources, typed as the client types them (the `bigquery` namespace of its types.d.ts). */
export type DatasetResource = DatasetResponse[1];
export type TableResource = TableResponse[1];
export type JobResource = JobMetadata;
export type JobConfiguration = NonNullable<JobMetadata['configuration']>;

export type JobState = 'PENDING' | 'RUNNING' | 'DONE';

export interface StandinJob {
  jobId: string;
  projectId: string;
  location: string;
  /** The `configuration` as posted. */
  configuration: JobConfiguration;
  /** The state answered by the insert (states[0]) and then by the n-th GET (states[n-1], clamped). */
  states: JobState[];
  /** How many GETs the job has had. */
  polls: number;
  /** Scripted, or the stand-in's own notFound for a missing destination; reported once DONE. */
  error?: { reason: string; message: string };
  /** Reported in statistics.load.outputRows once DONE without error. */
  outputRows?: number;
  /** When the job was inserted, and when it was first seen DONE (ms since the epoch), as BigQuery reports them. */
  creationTime?: number;
  endTime?: number;
}

export interface StandinRequest {
  method: string;
  /** Decoded path, without the query string. */
  path: string;
  query: Record<string, string>;
  /** Parsed JSON, the raw text if it is not JSON, undefined if empty. */
  body: unknown;
  authorization?: string;
}

export interface JobScript {
  /** The kind of job the script is for (default 'load'): a query job takes only a 'query' script. */
  kind?: 'load' | 'query';
  states?: JobState[];
  outputRows?: number | ((config: JobConfiguration) => number);
  error?: { reason: string; message: string };
}

/** What one load put in one partition. */
export interface PartitionChunk {
  jobId: string;
  sourceUris: string[];
  rows: number;
  /** Sums of the source's integer columns over the chunk's rows, by column name. */
  sums: Record<string, bigint>;
}

/** The partition key of rows with no partitioning field (an unpartitioned table). */
export const UNPARTITIONED = '__UNPARTITIONED__';

export interface StandinOptions {
  /** Answer 401 unless requests carry `Bearer <expectedToken>`. */
  expectedToken?: string;
  /** The GCS emulator that load jobs read their gs:// sources from; without it, loads hold no rows. */
  gcsUrl?: string;
  /**
   * How jobs behave when no script is queued (default: states PENDING, RUNNING, DONE); a function
   * decides per job, from its configuration.
   */
  defaultScript?: DefaultScript;
  /** The stand-in's clock (ms since the epoch; default Date.now), shifted by `advanceClock`. */
  now?: () => number;
  /** How long a job's metadata is kept (default 180 days: "a six month period after creation"). */
  jobRetentionMs?: number;
}

export type DefaultScript = JobScript | ((configuration: JobConfiguration) => JobScript);

/** Runs after a request took effect, before its answer is sent (it may kill the client). */
export type BeforeResponse = (request: StandinRequest, status: number) => void | Promise<void>;

export interface BigQueryStandin {
  /** http://127.0.0.1:PORT (give this to the client as apiEndpoint). */
  readonly url: string;
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
  /** Replace how jobs behave when no script is queued (the `defaultScript` option). */
  defaultScript(next: DefaultScript | undefined): void;
  /** Set (or clear) the hook that runs before each answer. */
  beforeResponse(hook: BeforeResponse | undefined): void;
  /** Brings every job that is not DONE to DONE, with its effects (BigQuery finishing unwatched jobs). */
  finishAll(): Promise<void>;
  /**
   * How the next job inserted behaves (each call queues one script; each insert consumes the first
   * queued script of its kind, `kind` 'load' by default or 'query', so a load's script is not taken
   * by a query job the worker sends before it).
   * `states` default ['PENDING','RUNNING','DONE'] (one per GET); `outputRows` = a number or a function
   * of the job configuration (default 0); `error` makes the job end DONE with status.errorResult.
   */
  script(next: JobScript): void;
  /** Moves the stand-in's clock forward by `ms` (job creationTime/endTime, job retention). */
  advanceClock(ms: number): void;
  close(): Promise<void>;
}

const DEFAULT_STATES: JobState[] = ['PENDING', 'RUNNING', 'DONE'];
const PREFIX = '/bigquery/v2/projects/';

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  412: 'FAILED_PRECONDITION',
  500: 'INTERNAL',
};

class HttpError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

const notFound = (message: string): HttpError => new HttpError(404, 'notFound', message);
const invalid = (message: string): HttpError => new HttpError(400, 'invalid', message);
const duplicate = (message: string): HttpError => new HttpError(409, 'duplicate', message);

function errorBody(code: number, reason: string, message: string): object {
  return {
    error: {
      code,
      message,
      errors: [{ message, domain: 'global', reason }],
      status: STATUS_NAMES[code] ?? 'UNKNOWN',
    },
  };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A JSON object body, or 400. Its fields are checked where they matter; the rest is stored as sent. */
function objectBody<T extends object>(body: unknown): T {
  if (!isObject(body)) throw invalid('Request body must be a JSON object.');
  return body as T;
}

const nonEmpty = (value: unknown): value is string => typeof value === 'string' && value !== '';

const newEtag = (): string => randomBytes(12).toString('base64');

export async function startBigQueryStandin(options: StandinOptions = {}): Promise<BigQueryStandin> {
  const requests: StandinRequest[] = [];
  const datasets = new Map<string, { location: string; resource: DatasetResource }>();
  const tables = new Map<string, TableResource>();
  const jobs = new Map<string, StandinJob>();
  const partitions = new Map<string, Map<string, PartitionChunk[]>>();
  const scripts: JobScript[] = [];
  /** Jobs whose DONE side effects have been (or are being) applied. */
  const finished = new Map<string, Promise<void>>();
  let hook: BeforeResponse | undefined;
  let defaults = options.defaultScript;
  let clockOffset = 0;
  /** The stand-in's clock: `options.now` (default Date.now) plus what `advanceClock` added. */
  const now = (): number => (options.now ?? Date.now)() + clockOffset;
  const retentionMs = options.jobRetentionMs ?? DEFAULT_JOB_RETENTION_MS;
  /** The tables' rows, and the SQL that runs over them (bigquery-standin-sql.ts). */
  const sql = createSqlEngine(tables);
  /** Query jobs' results, once DONE without error. */
  const results = new Map<string, QueryOutcome>();

  function requireDataset(project: string, dataset: string): { location: string; resource: DatasetResource } {
    const found = datasets.get(`${project}.${dataset}`);
    if (!found) throw notFound(`Not found: Dataset ${project}:${dataset}`);
    return found;
  }

  function requireTable(project: string, dataset: string, table: string): TableResource {
    requireDataset(project, dataset);
    const found = tables.get(`${project}.${dataset}.${table}`);
    if (!found) throw notFound(`Not found: Table ${project}:${dataset}.${table}`);
    return found;
  }

  function checkIfMatch(req: IncomingMessage, etag: string | undefined): void {
    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== etag)
      throw new HttpError(412, 'conditionNotMet', 'Precondition check failed.');
  }

  // ---- datasets ----

  function insertDataset(project: string, body: unknown): DatasetResource {
    const posted = objectBody<DatasetResource>(body);
    const datasetId = posted.datasetReference?.datasetId;
    if (!nonEmpty(datasetId)) throw invalid('Required parameter is missing: datasetReference.datasetId');
    const key = `${project}.${datasetId}`;
    if (datasets.has(key)) throw duplicate(`Already Exists: Dataset ${project}:${datasetId}`);
    // Stored and reported in BigQuery's canonical form (US, EU; us-central1): see canonicalLocation.
    const location = canonicalLocation(nonEmpty(posted.location) ? posted.location : 'US');
    const created = String(now());
    const resource: DatasetResource = {
      ...posted,
      kind: 'bigquery#dataset',
      id: `${project}:${datasetId}`,
      datasetReference: { projectId: project, datasetId },
      location,
      creationTime: created,
      lastModifiedTime: created,
      etag: newEtag(),
    };
    datasets.set(key, { location, resource });
    return resource;
  }

  function patchDataset(
    req: IncomingMessage,
    project: string,
    dataset: string,
    body: unknown,
  ): DatasetResource {
    const entry = requireDataset(project, dataset);
    checkIfMatch(req, entry.resource.etag);
    entry.resource = {
      ...entry.resource,
      ...objectBody<DatasetResource>(body),
      id: entry.resource.id,
      datasetReference: entry.resource.datasetReference,
      location: entry.location,
      creationTime: entry.resource.creationTime,
      lastModifiedTime: String(Date.now()),
      etag: newEtag(),
    };
    return entry.resource;
  }

  function deleteDataset(project: string, dataset: string, query: Record<string, string>): void {
    requireDataset(project, dataset);
    const prefix = `${project}.${dataset}.`;
    const own = [...tables.keys()].filter((k) => k.startsWith(prefix));
    if (own.length > 0 && query.deleteContents !== 'true')
      throw new HttpError(400, 'resourceInUse', `Dataset ${project}:${dataset} is still in use`);
    for (const k of own) tables.delete(k);
    datasets.delete(`${project}.${dataset}`);
  }

  // ---- tables ----

  function tableResource(
    project: string,
    dataset: string,
    tableId: string,
    posted: TableResource,
  ): TableResource {
    const now = String(Date.now());
    return {
      ...posted,
      kind: 'bigquery#table',
      id: `${project}:${dataset}.${tableId}`,
      tableReference: { projectId: project, datasetId: dataset, tableId },
      type: posted.view ? 'VIEW' : 'TABLE',
      location: requireDataset(project, dataset).location,
      creationTime: now,
      lastModifiedTime: now,
      numRows: '0',
      etag: newEtag(),
    };
  }

  function insertTable(project: string, dataset: string, body: unknown): TableResource {
    requireDataset(project, dataset);
    const posted = objectBody<TableResource>(body);
    const tableId = posted.tableReference?.tableId;
    if (!nonEmpty(tableId)) throw invalid('Required parameter is missing: tableReference.tableId');
    if (tableId.includes('$')) throw invalid(`Invalid table ID "${tableId}".`);
    const key = `${project}.${dataset}.${tableId}`;
    if (tables.has(key)) throw duplicate(`Already Exists: Table ${project}:${dataset}.${tableId}`);
    const resource = tableResource(project, dataset, tableId, posted);
    tables.set(key, resource);
    return resource;
  }

  function patchTable(
    req: IncomingMessage,
    project: string,
    dataset: string,
    table: string,
    body: unknown,
  ): TableResource {
    const current = requireTable(project, dataset, table);
    checkIfMatch(req, current.etag);
    const resource: TableResource = {
      ...current,
      ...objectBody<TableResource>(body),
      id: current.id,
      tableReference: current.tableReference,
      location: current.location,
      creationTime: current.creationTime,
      lastModifiedTime: String(Date.now()),
      etag: newEtag(),
    };
    tables.set(`${project}.${dataset}.${table}`, resource);
    return resource;
  }

  // ---- jobs ----

  const stateOf = (job: StandinJob, index: number): JobState =>
    job.states[Math.min(index, job.states.length - 1)] ?? 'DONE';

  /**
   * Side effects of a load reaching DONE: the stand-in's own notFound checks, then
   * create-if-needed, then (with `gcsUrl`) the rows written into the table's partitions.
   */
  async function finishLoad(job: StandinJob): Promise<void> {
    const load = job.configuration.load;
    const dest = load?.destinationTable;
    if (job.error || !load || !dest) return;
    const project = dest.projectId ?? job.projectId;
    const dataset = String(dest.datasetId);
    const [tableId = '', decorator] = String(dest.tableId).split('$');
    const target = datasets.get(`${project}.${dataset}`);
    if (!target) {
      job.error = { reason: 'notFound', message: `Not found: Dataset ${project}:${dataset}` };
      return;
    }
    const elsewhere = loadLocationError(project, dataset, target.location, job.location);
    if (elsewhere) {
      job.error = elsewhere;
      return;
    }
    const key = `${project}.${dataset}.${tableId}`;
    if (!tables.has(key)) {
      if (load.createDisposition === 'CREATE_NEVER') {
        job.error = { reason: 'notFound', message: `Not found: Table ${project}:${dataset}.${tableId}` };
        return;
      }
      const posted: TableResource = { tableReference: { projectId: project, datasetId: dataset, tableId } };
      if (load.schema) posted.schema = load.schema;
      if (load.timePartitioning) posted.timePartitioning = load.timePartitioning;
      if (load.rangePartitioning) posted.rangePartitioning = load.rangePartitioning;
      if (load.clustering) posted.clustering = load.clustering;
      tables.set(key, tableResource(project, dataset, tableId, posted));
    }
    if (options.gcsUrl !== undefined && load.sourceFormat === 'PARQUET') {
      await writeRows(job, key, decorator, String(load.writeDisposition ?? 'WRITE_APPEND'));
    }
  }

  /** A load's rows into the table's partitions, per its write disposition (see the header). */
  async function writeRows(
    job: StandinJob,
    tableKey: string,
    decorator: string | undefined,
    disposition: string,
  ): Promise<void> {
    const table = tables.get(tableKey);
    const field = table?.timePartitioning?.field;
    const sourceUris = job.configuration.load?.sourceUris ?? [];
    // The Parquet files must fit the provided schema, else the destination table's (parquetSchemaError).
    const provided = job.configuration.load?.schema?.fields;
    const ref = table?.tableReference;
    const schema = {
      fields: (provided ?? table?.schema?.fields ?? []) as SchemaField[],
      provided: provided !== undefined,
      table: `${ref?.projectId}:${ref?.datasetId}.${ref?.tableId}`,
    };
    let read: Map<string, PartitionChunk>;
    try {
      read = await readSources(options.gcsUrl ?? '', sourceUris, field, job.jobId, schema);
    } catch (error) {
      job.error = { reason: 'invalid', message: error instanceof Error ? error.message : String(error) };
      return;
    }
    if (decorator !== undefined) {
      const outside = decoratorError(decorator, read.keys());
      if (outside) {
        job.error = outside;
        return;
      }
    }
    const current = partitions.get(tableKey) ?? new Map<string, PartitionChunk[]>();
    const targets = decorator !== undefined ? [decorator] : [...new Set([...current.keys(), ...read.keys()])];
    if (disposition === 'WRITE_EMPTY' && targets.some((p) => (current.get(p)?.length ?? 0) > 0)) {
      job.error = { reason: 'duplicate', message: `Already Exists: Table ${tableKey} is not empty` };
      return;
    }
    try {
      // The rows themselves, into the SQL engine's copy of the table (the same disposition).
      await sql.loadFromGcs(options.gcsUrl ?? '', tableKey, sourceUris, decorator, disposition);
    } catch (error) {
      job.error = { reason: 'invalid', message: error instanceof Error ? error.message : String(error) };
      return;
    }
    if (disposition === 'WRITE_TRUNCATE') for (const partition of targets) current.delete(partition);
    for (const [partition, chunk] of read) current.set(partition, [...(current.get(partition) ?? []), chunk]);
    partitions.set(tableKey, current);
    if (job.outputRows === undefined) {
      job.outputRows = [...read.values()].reduce((sum, chunk) => sum + chunk.rows, 0);
    }
  }

  /** A query job reaching DONE runs its statement: results kept, or the error as its errorResult. */
  async function finishQuery(job: StandinJob): Promise<void> {
    const config = job.configuration.query as QueryConfiguration | undefined;
    if (job.error || !config) return;
    try {
      results.set(job.jobId, await sql.run(queryRequest(config, job.projectId, job.location)));
    } catch (error) {
      job.error = jobErrorOf(error);
    }
  }

  /** The job resource as observed in this state, applying DONE side effects the first time. */
  async function observe(job: StandinJob, state: JobState): Promise<JobResource> {
    if (state === 'DONE') {
      let done = finished.get(job.jobId);
      if (!done) {
        job.endTime ??= now();
        done = job.configuration.query ? finishQuery(job) : finishLoad(job);
        finished.set(job.jobId, done);
      }
      await done;
    }
    const resource: JobResource = {
      kind: 'bigquery#job',
      id: `${job.projectId}:${job.location}.${job.jobId}`,
      jobReference: { projectId: job.projectId, jobId: job.jobId, location: job.location },
      configuration: job.configuration,
      status: { state },
      statistics: {
        creationTime: String(job.creationTime ?? now()),
        ...(state === 'DONE' && job.endTime !== undefined && { endTime: String(job.endTime) }),
      },
    };
    if (state !== 'DONE') return resource;
    if (job.error) {
      resource.status = { state, errorResult: { ...job.error }, errors: [{ ...job.error }] };
    } else if (job.configuration.query) {
      const outcome = results.get(job.jobId);
      if (outcome) resource.statistics = { ...resource.statistics, ...queryStatistics(outcome) };
    } else {
      const sourceUris = job.configuration.load?.sourceUris;
      resource.statistics = {
        ...resource.statistics,
        load: {
          outputRows: String(job.outputRows ?? 0),
          inputFiles: String(sourceUris?.length ?? 1),
        },
      };
    }
    return resource;
  }

  async function insertJob(project: string, body: unknown): Promise<JobResource> {
    const posted = objectBody<JobResource>(body);
    const ref = posted.jobReference;
    const jobId = ref?.jobId;
    if (!nonEmpty(jobId)) throw invalid('Required parameter is missing: jobReference.jobId');
    if (ref?.projectId !== undefined && ref.projectId !== project)
      throw invalid(`jobReference.projectId ${ref.projectId} does not match the project ${project}`);
    const configuration = posted.configuration;
    if (!isObject(configuration)) throw invalid('Required parameter is missing: configuration');
    if (configuration.query) checkQueryConfiguration(configuration.query);
    const existing = jobs.get(jobId);
    if (existing) throw duplicate(`Already Exists: Job ${existing.projectId}:${existing.location}.${jobId}`);
    const kind = configuration.query ? 'query' : 'load';
    const queued = scripts.findIndex((s) => (s.kind ?? 'load') === kind);
    const script =
      (queued >= 0 ? scripts.splice(queued, 1)[0] : undefined) ??
      (typeof defaults === 'function' ? defaults(configuration) : defaults) ??
      {};
    const scripted =
      typeof script.outputRows === 'function' ? script.outputRows(configuration) : script.outputRows;
    const job: StandinJob = {
      jobId,
      projectId: project,
      // BigQuery's canonical form of jobReference.location (default US): see canonicalLocation.
      location: canonicalLocation(nonEmpty(ref?.location) ? ref.location : 'US'),
      configuration,
      states: script.states && script.states.length > 0 ? [...script.states] : [...DEFAULT_STATES],
      polls: 0,
      creationTime: now(),
      // With table contents, an unscripted count is the rows the load reads (set once DONE).
      outputRows: scripted ?? (options.gcsUrl !== undefined ? undefined : 0),
    };
    if (script.error) job.error = { ...script.error };
    jobs.set(jobId, job);
    return observe(job, stateOf(job, 0));
  }

  /**
   * The job that a call about one job (jobs.get, and any route about a job) finds, or 404 notFound:
   * unknown, of another project, seen from another `location` or without one for a job outside
   * US/EU (jobVisibleAt), or past its retention (jobExpired; its id stays taken for inserts).
   */
  function requireJob(project: string, jobId: string, query: Record<string, string>): StandinJob {
    const job = jobs.get(jobId);
    const location = query.location;
    if (
      !job ||
      job.projectId !== project ||
      !jobVisibleAt(job.location, location) ||
      jobExpired(job.creationTime ?? now(), now(), retentionMs)
    )
      throw notFound(`Not found: Job ${project}:${location !== undefined ? `${location}.` : ''}${jobId}`);
    return job;
  }

  function getJob(project: string, jobId: string, query: Record<string, string>): Promise<JobResource> {
    const job = requireJob(project, jobId, query);
    job.polls += 1;
    return observe(job, stateOf(job, job.polls - 1));
  }

  /** jobs.query: runs the statement at once (a DONE job with a generated id) and answers its first page. */
  async function runJobsQuery(project: string, body: unknown): Promise<object> {
    const posted = objectBody<Record<string, unknown>>(body);
    const configuration = configurationOfQueryRequest(posted);
    checkQueryConfiguration(configuration);
    if (posted.dryRun === true) throw invalid('The stand-in does not dry-run queries');
    const jobId = `job_${randomBytes(12).toString('base64url')}`;
    const job: StandinJob = {
      jobId,
      projectId: project,
      location: canonicalLocation(nonEmpty(posted.location) ? posted.location : 'US'),
      configuration: { query: configuration } as JobConfiguration,
      states: ['DONE'],
      polls: 0,
      creationTime: now(),
    };
    jobs.set(jobId, job);
    await observe(job, 'DONE');
    if (job.error) throw httpErrorOf(job.error);
    const format = posted.formatOptions as { useInt64Timestamp?: unknown } | undefined;
    return queryResponse(
      'bigquery#queryResponse',
      { projectId: project, jobId, location: job.location },
      results.get(jobId),
      {
        maxResults: posted.maxResults,
        useInt64Timestamp: format?.useInt64Timestamp === true,
      },
    );
  }

  /** jobs.getQueryResults: a poll of the job (its scripted states, like jobs.get); rows once DONE. */
  async function getQueryResults(
    project: string,
    jobId: string,
    query: Record<string, string>,
  ): Promise<object> {
    const job = requireJob(project, jobId, query);
    job.polls += 1;
    const resource = await observe(job, stateOf(job, job.polls - 1));
    const ref = { projectId: project, jobId, location: job.location };
    const kind = 'bigquery#getQueryResultsResponse';
    if (resource.status?.state !== 'DONE')
      return queryResponse(kind, ref, undefined, { useInt64Timestamp: false });
    if (job.error) throw httpErrorOf(job.error);
    return queryResponse(
      kind,
      ref,
      results.get(jobId) ?? { statementType: '', rows: [], totalBytesProcessed: 0 },
      {
        maxResults: query.maxResults,
        pageToken: query.pageToken,
        startIndex: query.startIndex,
        useInt64Timestamp: query['formatOptions.useInt64Timestamp'] === 'true',
      },
    );
  }

  // ---- routing ----

  /** Returns [status, body]; an undefined body means no content. */
  async function route(req: IncomingMessage, record: StandinRequest): Promise<[number, object | undefined]> {
    const { method, body, query } = record;
    if (!record.path.startsWith(PREFIX)) throw notFound(`Not found: ${method} ${record.path}`);
    const [project, kind, id, sub, subId, ...rest] = record.path.slice(PREFIX.length).split('/');
    if (project && kind === 'datasets' && rest.length === 0) {
      if (id === undefined && method === 'POST') return [200, insertDataset(project, body)];
      if (id && sub === undefined) {
        if (method === 'GET') return [200, requireDataset(project, id).resource];
        if (method === 'PATCH' || method === 'PUT') return [200, patchDataset(req, project, id, body)];
        if (method === 'DELETE') {
          deleteDataset(project, id, query);
          await sql.sync();
          return [204, undefined];
        }
      }
      if (id && sub === 'tables') {
        if (subId === undefined && method === 'POST') {
          // A view's query must transpile and bind (400 invalid otherwise), as BigQuery checks it.
          requireDataset(project, id);
          const tableId = String((body as TableResource | undefined)?.tableReference?.tableId);
          await sql.checkView(`${project}.${id}.${tableId}`, body);
          const inserted = insertTable(project, id, body);
          await sql.sync();
          return [200, inserted];
        }
        if (subId) {
          if (method === 'GET') return [200, requireTable(project, id, subId)];
          if (method === 'PATCH' || method === 'PUT') {
            requireTable(project, id, subId);
            await sql.checkView(`${project}.${id}.${subId}`, body);
            const patched = patchTable(req, project, id, subId, body);
            await sql.sync();
            return [200, patched];
          }
          if (method === 'DELETE') {
            requireTable(project, id, subId);
            tables.delete(`${project}.${id}.${subId}`);
            await sql.sync();
            return [204, undefined];
          }
        }
      }
    }
    if (project && kind === 'jobs' && sub === undefined) {
      if (id === undefined && method === 'POST') return [200, await insertJob(project, body)];
      if (id && method === 'GET') return [200, await getJob(project, id, query)];
    }
    if (project && kind === 'queries' && sub === undefined) {
      if (id === undefined && method === 'POST') return [200, await runJobsQuery(project, body)];
      if (id && method === 'GET') return [200, await getQueryResults(project, id, query)];
    }
    throw notFound(`Not found: ${method} ${record.path}`);
  }

  function send(res: ServerResponse, status: number, body: object | undefined): void {
    if (body === undefined) {
      res.writeHead(status);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    let parsed = true;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
        parsed = false;
      }
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      path = url.pathname;
    }
    const record: StandinRequest = {
      method: req.method ?? 'GET',
      path,
      query: Object.fromEntries(url.searchParams),
      body,
    };
    if (req.headers.authorization !== undefined) record.authorization = req.headers.authorization;
    requests.push(record);

    if (options.expectedToken !== undefined && record.authorization !== `Bearer ${options.expectedToken}`) {
      const message =
        record.authorization === undefined
          ? 'Request is missing required authentication credential.'
          : 'Request had invalid authentication credentials.';
      return send(res, 401, errorBody(401, 'authError', message));
    }
    if (!parsed) return send(res, 400, errorBody(400, 'parseError', 'Parse Error'));
    let status: number;
    let payload: object | undefined;
    try {
      [status, payload] = await route(req, record);
    } catch (err) {
      if (!(err instanceof HttpError) && !(err instanceof SqlError)) throw err;
      [status, payload] = [err.code, errorBody(err.code, err.reason, err.message)];
    }
    await hook?.(record, status);
    send(res, status, payload);
  }

  async function finishAll(): Promise<void> {
    for (const job of jobs.values()) {
      if (finished.has(job.jobId)) continue;
      job.states = ['DONE'];
      await observe(job, 'DONE');
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else send(res, 500, errorBody(500, 'internalError', err instanceof Error ? err.message : String(err)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    datasets,
    tables,
    jobs,
    partitions,
    beforeResponse: (next) => void (hook = next),
    defaultScript: (next) => void (defaults = next),
    finishAll,
    script: (next) => void scripts.push(next),
    advanceClock: (ms) => void (clockOffset += ms),
    close: async () => {
      await new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // The client keeps connections alive (forever: true); close() alone would wait for them.
        server.closeAllConnections();
      });
      await sql.close();
    },
  };
}

/**
 * Reads a load's gs:// Parquet sources from the GCS emulator and sums them per partition of
 * `field` (YYYYMMDD), with DuckDB on temporary copies.
 */
async function readSources(
  gcsUrl: string,
  sourceUris: string[],
  field: string | undefined,
  jobId: string,
  schema?: { fields: SchemaField[]; provided: boolean; table: string },
): Promise<Map<string, PartitionChunk>> {
  const dir = await mkdtemp(join(tmpdir(), 'bq-standin-load-'));
  try {
    const paths: string[] = [];
    for (const [index, uri] of sourceUris.entries()) {
      const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
      if (!match) throw new Error(`Invalid source URI ${uri}`);
      const response = await fetch(
        `${gcsUrl}/storage/v1/b/${encodeURIComponent(match[1]!)}/o/${encodeURIComponent(match[2]!)}?alt=media`,
      );
      if (response.status !== 200) throw new Error(`Not found: URI ${uri} (${response.status})`);
      const path = join(dir, `source-${index}.parquet`);
      await writeFile(path, Buffer.from(await response.arrayBuffer()));
      paths.push(path);
      if (schema && schema.fields.length > 0) {
        // Each file's Parquet types and repetitions against the load's schema (parquetSchemaError).
        const leaves = await query(
          `SELECT name, type, repetition_type, logical_type, converted_type FROM parquet_schema('${path.replaceAll("'", "''")}') WHERE coalesce(num_children, 0) = 0`,
        );
        const refused = parquetSchemaError(
          uri,
          leaves as unknown as ParquetColumn[],
          schema.fields,
          schema.provided,
          schema.table,
        );
        if (refused) throw new Error(refused.message);
      }
    }
    const files = `read_parquet([${paths.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ')}])`;
    const columns = await query(`DESCRIBE SELECT * FROM ${files}`);
    const integers = columns
      .filter((c) =>
        /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT)$/.test(
          String(c.column_type),
        ),
      )
      .map((c) => String(c.column_name));
    const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;
    const partition =
      field === undefined
        ? `'${UNPARTITIONED}'`
        : // A NULL partitioning value puts the row in the __NULL__ partition (decoratorError).
          `coalesce(strftime(CAST(${quote(field)} AS DATE), '%Y%m%d'), '${NULL_PARTITION}')`;
    const sums = integers.map((name, i) => `CAST(sum(${quote(name)}) AS VARCHAR) AS s${i}`);
    const rows = await query(
      `SELECT ${partition} AS partition, count(*) AS n${sums.map((s) => `, ${s}`).join('')} FROM ${files} GROUP BY 1`,
    );
    const read = new Map<string, PartitionChunk>();
    for (const row of rows) {
      const chunk: PartitionChunk = { jobId, sourceUris: [...sourceUris], rows: Number(row.n), sums: {} };
      integers.forEach((name, i) => {
        const sum = row[`s${i}`];
        chunk.sums[name] = typeof sum === 'string' ? BigInt(sum) : 0n;
      });
      read.set(String(row.partition), chunk);
    }
    return read;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
