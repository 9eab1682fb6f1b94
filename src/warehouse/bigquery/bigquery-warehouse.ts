/**
 * The warehouse in BigQuery (`bigquery://PROJECT/DATASET[?location=LOC]`), with
 * `@google-cloud/bigquery`. The dataset and the DAY-partitioned, clustered table are created
 * from the schema module when missing; an existing table whose schema differs is refused with
 * the differences named.
 *
 * A week is loaded by one load job from its Parquet object in the lake into the partition
 * `turnstile_readings$YYYYMMDD` with WRITE_TRUNCATE, so it replaces exactly that week. The job
 * id is derived from the drop date and the source's sha256: a retry or a rerun that finds the
 * job already there (409) waits for that job instead of loading twice; one that finds it failed
 * (a run whose load failed, rerun) starts the next attempt, `<id>_retry2` and so on, since a
 * job id is never reusable. After DONE, the job's output row count must equal the manifest's.
 *
 * Which source version a week holds is read back from the job its manifest records (the full
 * sha256 is in the job id). Credentials come from Application Default Credentials only.
 */
import type { BigQuery, Job, JobMetadata } from '@google-cloud/bigquery';
import { StoppedError, sleepUnlessStopped, throwIfStopped, untilStopped } from '../../util/abort.ts';
import { UsageError, WarehouseError, oneLine } from '../../errors.ts';
import type { IsoDate } from '../../dates/drop-dates.ts';
import type { Lake } from '../../lake/lake.ts';
import {
  CLUSTER_COLUMNS,
  PARTITION_COLUMN,
  TABLE_NAME,
  bigquerySchema,
  bigquerySchemaDifferences,
} from '../../schema/turnstile-schema.ts';
import type { LoadRecord, Warehouse, WarehouseCapabilities, LoadRequest } from '../warehouse.ts';
import { canLoadFrom } from './bigquery-location.ts';
import { INTERVALS_VIEW, intervalsViewQuery } from '../intervals-view.ts';

export interface BigQueryTarget {
  projectId: string;
  datasetId: string;
  /** Where a missing dataset is created (default US); an existing dataset keeps its own. */
  location: string;
}

export function parseBigQueryUri(uri: string): BigQueryTarget {
  const match =
    /^bigquery:\/\/((?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9])\/([A-Za-z0-9_]{1,1024})(?:\?location=([A-Za-z0-9-]{2,40}))?$/.exec(
      uri,
    );
  if (!match?.[1] || !match[2]) {
    throw new UsageError(`--warehouse ${uri}: expected bigquery://PROJECT/DATASET[?location=LOCATION]`);
  }
  return { projectId: match[1], datasetId: match[2], location: (match[3] ?? 'US').toUpperCase() };
}

export interface BigQueryWarehouseOptions {
  readOnly?: boolean;
  /** The lake loads will read from: checked for colocation before anything is uploaded. */
  lake?: Lake | undefined;
  /** A client to use instead of one built from ADC (tests). */
  client?: BigQuery;
  /** First wait between job polls; doubles up to 10 s. */
  pollIntervalMs?: number;
  /** Longest wait for a load job. */
  jobTimeoutMs?: number;
  /**
   * The run's stop: a load job is no longer waited for. The job itself runs on in BigQuery and
   * replaces the partition whole or not at all; a rerun finds it by its id and waits for it.
   */
  signal?: AbortSignal | undefined;
}

const JOB_PREFIX = 'mta_ingest_load';

/**
 * Load jobs tried for one week and source before giving up. A job id can never be reused, not
 * even after the job failed, so the n-th attempt has its own id (`loadJobAttemptId`); the ids
 * stay deterministic, so two runs retrying at once still find each other's job (409).
 */
const MAX_LOAD_JOBS = 10;

/** Targets whose dataset and table were checked in this process, with the dataset's location. */
const PREPARED = new Map<string, Promise<string>>();

/**
 * `mta_ingest_load_<dataset>_20230603_<sha256>` (+ `_<run id>` when forced, to load again).
 * Job ids are unique per project, not per dataset: without the dataset, a second dataset in
 * the same project would find the first one's job and take it for its own load.
 */
export function jobIdFor(
  datasetId: string,
  load: Pick<LoadRequest, 'dropDate' | 'sourceSha256' | 'force' | 'runId'>,
): string {
  const base = `${weekJobPrefix(datasetId, load.dropDate)}${load.sourceSha256}`;
  return load.force ? `${base}_${load.runId.replace(/[^A-Za-z0-9_-]/g, '_')}` : base;
}

/** The id of the n-th load job for one week and source: the base id, then `<base>_retry<n>`. */
function loadJobAttemptId(base: string, attempt: number): string {
  return attempt === 1 ? base : `${base}_retry${attempt}`;
}

/** What every load job id of one dataset's week starts with (a job id has at most 1,024 characters). */
function weekJobPrefix(datasetId: string, dropDate: IsoDate): string {
  return `${JOB_PREFIX}_${datasetId.slice(0, 800)}_${dropDate.replaceAll('-', '')}_`;
}

/**
 * A client for a BigQuery emulator (or a stand-in of its REST API) at `url`: no Application
 * Default Credentials are looked for; requests carry a fixed placeholder token, which
 * emulators ignore.
 */
export async function emulatorBigQuery(uri: string, url: string): Promise<BigQuery> {
  const [{ BigQuery }, { OAuth2Client }] = await Promise.all([
    import('@google-cloud/bigquery'),
    import('google-auth-library'),
  ]);
  const { projectId, location } = parseBigQueryUri(uri);
  const authClient = new OAuth2Client();
  // A far expiry: the client never tries to refresh the placeholder.
  authClient.setCredentials({ access_token: 'emulator', expiry_date: Date.now() + 365 * 86_400_000 });
  return new BigQuery({ projectId, location, apiEndpoint: url, authClient });
}

/**
 * Whether an existing job finished before the week's recorded load of another job, so that the
 * partition no longer holds what it loaded. A job with no end time, or one ending in the same
 * second as that load (loadedAt has whole seconds), counts as older: loading again is safe.
 */
function olderThan(metadata: JobMetadata, jobId: string, previous: LoadRequest['previousLoad']): boolean {
  if (previous === undefined || previous.jobId === jobId) return false;
  const ended = Number(metadata.statistics?.endTime);
  if (!Number.isFinite(ended)) return true;
  return Math.floor(ended / 1000) * 1000 <= Date.parse(previous.loadedAt);
}

export class BigQueryWarehouse implements Warehouse {
  readonly capabilities: WarehouseCapabilities = { loadsFrom: 'lake-uri' };
  readonly description: string;
  private readonly client: BigQuery;
  private readonly target: BigQueryTarget;
  private readonly pollIntervalMs: number;
  private readonly jobTimeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  /** The dataset's actual location, once read. */
  private location: string;

  private constructor(client: BigQuery, target: BigQueryTarget, options: BigQueryWarehouseOptions) {
    this.client = client;
    this.target = target;
    this.location = target.location;
    this.description = `bigquery://${target.projectId}/${target.datasetId}`;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.jobTimeoutMs = options.jobTimeoutMs ?? 6 * 3600_000;
    this.signal = options.signal;
  }

  static async open(uri: string, options: BigQueryWarehouseOptions = {}): Promise<BigQueryWarehouse> {
    const target = parseBigQueryUri(uri);
    let client = options.client;
    if (!client) {
      const { BigQuery } = await import('@google-cloud/bigquery');
      client = new BigQuery({ projectId: target.projectId, location: target.location });
    }
    const warehouse = new BigQueryWarehouse(client, target, options);
    if (!options.readOnly) {
      // Once per process and target: the warehouse is opened afresh for every week.
      const key = `${warehouse.description}|${options.lake?.uri ?? ''}`;
      let ready = PREPARED.get(key);
      if (!ready) {
        ready = warehouse.ensureTable().then(async () => {
          if (options.lake) await warehouse.checkLake(options.lake);
          return warehouse.location;
        });
        PREPARED.set(key, ready);
        ready.catch(() => PREPARED.delete(key));
      }
      warehouse.location = await untilStopped(ready, options.signal);
    }
    return warehouse;
  }

  /** Refuses a lake BigQuery cannot load from, before anything is uploaded. */
  async checkLake(lake: Lake): Promise<void> {
    if (!lake.uri.startsWith('gs://') || !lake.location) {
      throw new UsageError(
        `the BigQuery warehouse loads from Cloud Storage: use a gs:// lake, not ${lake.uri}`,
      );
    }
    const bucketLocation = await lake.location();
    if (!canLoadFrom(this.location, bucketLocation)) {
      throw new UsageError(
        `the lake bucket (${lake.uri}) is in ${bucketLocation} but the dataset ${this.target.projectId}:${this.target.datasetId} is in ${this.location}: BigQuery loads only from a bucket in the dataset's location (or any bucket into the US multi-region)`,
      );
    }
  }

  /**
   * Not read here: counting a partition's rows and sums is a query job (billed, slow), and the
   * stand-in the tests use runs no SQL yet. A week's state comes from its load job's record
   * (rows loaded, checked at load time) until the load state lives in the dataset (issue 14).
   */
  weekFacts(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  async loadedWeek(dropDate: IsoDate, recorded?: { jobId: string }): Promise<LoadRecord | undefined> {
    if (!recorded || !recorded.jobId.startsWith(weekJobPrefix(this.target.datasetId, dropDate)))
      return undefined;
    let metadata: JobMetadata;
    try {
      [metadata] = (await this.client.job(recorded.jobId, { location: this.location }).getMetadata()) as [
        JobMetadata,
        unknown,
      ];
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw new WarehouseError(`reading BigQuery job ${recorded.jobId} failed: ${oneLine(error)}`, {
        cause: error,
      });
    }
    if (metadata.status?.state !== 'DONE' || metadata.status.errorResult) return undefined;
    const destination = metadata.configuration?.load?.destinationTable;
    if (destination?.datasetId !== this.target.datasetId || destination.projectId !== this.target.projectId) {
      return undefined;
    }
    return this.loadRecordOf(dropDate, recorded.jobId, metadata);
  }

  async loadWeek(load: LoadRequest): Promise<LoadRecord> {
    const base = jobIdFor(this.target.datasetId, load);
    const partition = load.dropDate.replaceAll('-', '');
    const configuration = {
      load: {
        sourceUris: [load.parquetUri],
        sourceFormat: 'PARQUET',
        destinationTable: {
          projectId: this.target.projectId,
          datasetId: this.target.datasetId,
          tableId: `${TABLE_NAME}$${partition}`,
        },
        writeDisposition: 'WRITE_TRUNCATE',
        createDisposition: 'CREATE_NEVER',
        schema: bigquerySchema(),
        timePartitioning: { type: 'DAY', field: PARTITION_COLUMN },
        clustering: { fields: [...CLUSTER_COLUMNS] },
      },
      labels: { tool: 'mta-ingest', drop_date: load.dropDate },
    };
    for (let attempt = 1; attempt <= MAX_LOAD_JOBS; attempt += 1) {
      const jobId = loadJobAttemptId(base, attempt);
      const { job, ours } = await this.startJob(jobId, configuration);
      const metadata = await this.waitFor(job, jobId);
      const failure = metadata.status?.errorResult;
      // An earlier run's job that failed keeps its id for good: start the next attempt. So does
      // one that a later load of another source version has overwritten since (A, B, A again).
      if (!ours && (failure || olderThan(metadata, jobId, load.previousLoad))) continue;
      if (failure) {
        throw new WarehouseError(
          `BigQuery load job ${jobId} failed: ${failure.message ?? failure.reason ?? 'unknown error'}`,
        );
      }
      const loaded = this.loadRecordOf(load.dropDate, jobId, metadata);
      if (loaded.rows !== load.rows) {
        throw new WarehouseError(
          `BigQuery load job ${jobId} loaded ${loaded.rows} rows into ${TABLE_NAME}$${partition}, but the manifest has ${load.rows}`,
        );
      }
      return loaded;
    }
    throw new WarehouseError(
      `BigQuery load jobs ${base} to ${loadJobAttemptId(base, MAX_LOAD_JOBS)} all failed or were overwritten since: see them in BigQuery, then rerun with --force`,
    );
  }

  /**
   * Starts the load job `jobId`, or finds it already there (409): an earlier attempt started
   * it, and it is waited for rather than loaded twice. `ours` tells which.
   */
  private async startJob(
    jobId: string,
    configuration: JobMetadata['configuration'],
  ): Promise<{ job: Job; ours: boolean }> {
    try {
      throwIfStopped(this.signal);
      const [job] = await untilStopped(
        this.client.createJob({ jobId, location: this.location, configuration }),
        this.signal,
      );
      return { job, ours: true };
    } catch (error) {
      if (error instanceof StoppedError) throw error;
      if (statusOf(error) !== 409) {
        throw new WarehouseError(`starting BigQuery load job ${jobId} failed: ${oneLine(error)}`, {
          cause: error,
        });
      }
      return { job: this.client.job(jobId, { location: this.location }), ours: false };
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private async ensureTable(): Promise<void> {
    const where = `${this.target.projectId}:${this.target.datasetId}`;
    try {
      const dataset = this.client.dataset(this.target.datasetId, { location: this.target.location });
      const [datasetExists] = await dataset.exists();
      if (!datasetExists) await dataset.create({ location: this.target.location }).catch(ignoreConflict);
      const [datasetMetadata] = (await dataset.getMetadata()) as [{ location?: string }, unknown];
      this.location = String(datasetMetadata.location ?? this.target.location).toUpperCase();
      const table = dataset.table(TABLE_NAME);
      const [tableExists] = await table.exists();
      if (!tableExists) {
        await table
          .create({
            schema: bigquerySchema(),
            timePartitioning: { type: 'DAY', field: PARTITION_COLUMN },
            clustering: { fields: [...CLUSTER_COLUMNS] },
            description: 'NYC MTA turnstile readings, one partition per weekly drop date (mta-ingest).',
          })
          .catch(ignoreConflict);
      } else {
        const [tableMetadata] = (await table.getMetadata()) as [TableResource, unknown];
        const differences = bigquerySchemaDifferences(tableMetadata.schema?.fields ?? []);
        if (tableMetadata.timePartitioning?.field !== PARTITION_COLUMN) {
          differences.push(`not partitioned on ${PARTITION_COLUMN}`);
        }
        if (differences.length > 0) {
          throw new WarehouseError(
            `the table ${where}.${TABLE_NAME} exists with another schema: ${differences.join('; ')}`,
          );
        }
      }
      // After the table: BigQuery checks a view's query against the tables it reads.
      await this.ensureIntervalsView();
    } catch (error) {
      if (error instanceof WarehouseError) throw error;
      throw new WarehouseError(`preparing BigQuery ${where}.${TABLE_NAME} failed: ${oneLine(error)}`, {
        cause: error,
      });
    }
  }

  /** The interval view (warehouse/intervals-view.ts), created or brought up to date. */
  private async ensureIntervalsView(): Promise<void> {
    const { projectId, datasetId } = this.target;
    const query = intervalsViewQuery('bigquery', `\`${projectId}.${datasetId}.${TABLE_NAME}\``);
    const view = this.client.dataset(datasetId).table(INTERVALS_VIEW);
    const [exists] = await view.exists();
    if (!exists) {
      await view.create({ view: { query, useLegacySql: false } }).catch(ignoreConflict);
      return;
    }
    const [metadata] = (await view.getMetadata()) as [{ view?: { query?: string } }, unknown];
    if (metadata.view?.query !== query) await view.setMetadata({ view: { query, useLegacySql: false } });
  }

  /** Polls the job with backoff until DONE, and returns it (whether it succeeded or failed). */
  private async waitFor(job: Job, jobId: string): Promise<JobMetadata> {
    const deadline = Date.now() + this.jobTimeoutMs;
    for (let delay = this.pollIntervalMs; ; delay = Math.min(delay * 2, 10_000)) {
      let metadata: JobMetadata;
      try {
        [metadata] = (await untilStopped(job.getMetadata(), this.signal)) as [JobMetadata, unknown];
      } catch (error) {
        if (error instanceof StoppedError) throw error;
        throw new WarehouseError(`reading BigQuery job ${jobId} failed: ${oneLine(error)}`, { cause: error });
      }
      if (metadata.status?.state === 'DONE') return metadata;
      if (Date.now() + delay > deadline)
        throw new WarehouseError(`BigQuery load job ${jobId} did not finish in time`);
      await sleepUnlessStopped(delay, this.signal);
    }
  }

  private loadRecordOf(dropDate: IsoDate, jobId: string, metadata: JobMetadata): LoadRecord {
    const sha = /_([0-9a-f]{64})(?:_|$)/.exec(jobId)?.[1] ?? '';
    const end = Number(metadata.statistics?.endTime ?? Date.now());
    return {
      dropDate,
      sourceSha256: sha,
      rows: Number(metadata.statistics?.load?.outputRows ?? -1),
      loadedAt: new Date(end).toISOString().replace(/\.\d+Z$/, 'Z'),
      jobId,
    };
  }
}

/** The parts of a table resource this backend reads. */
interface TableResource {
  schema?: { fields?: { name?: string; type?: string; mode?: string }[] };
  timePartitioning?: { type?: string; field?: string };
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** A create that lost a race with another creator is fine: the thing exists. */
function ignoreConflict(error: unknown): void {
  if (statusOf(error) !== 409) throw error;
}
