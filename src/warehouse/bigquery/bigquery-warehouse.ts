/**
 * The warehouse in BigQuery (`bigquery://PROJECT/DATASET[?location=LOC]`), with
 * `@google-cloud/bigquery`. Opening it for writing prepares the dataset, table and view
 * (bigquery-dataset.ts) and checks the lake's bucket is in a location it can load from.
 *
 * A week is loaded by one load job (bigquery-jobs.ts) from its Parquet object in the lake into
 * the partition `turnstile_readings$YYYYMMDD` with WRITE_TRUNCATE, so it replaces exactly that
 * week. After DONE, the job's output row count must equal the manifest's.
 *
 * Which source version a week holds is read back from the job its manifest records (the full
 * sha256 is in the job id). Credentials come from Application Default Credentials only.
 */
import type { BigQuery, JobMetadata } from '@google-cloud/bigquery';
import { untilStopped } from '../../util/abort.ts';
import { UsageError, WarehouseError, oneLine } from '../../errors.ts';
import type { IsoDate } from '../../dates/drop-dates.ts';
import type { Lake } from '../../lake/lake.ts';
import {
  CLUSTER_COLUMNS,
  PARTITION_COLUMN,
  TABLE_NAME,
  bigquerySchema,
} from '../../schema/turnstile-schema.ts';
import type {
  LoadRecord,
  LoadRequest,
  StationTotal,
  Warehouse,
  WarehouseCapabilities,
} from '../warehouse.ts';
import { BIGQUERY_WAREHOUSE_CAPABILITIES } from '../../backends/capabilities.ts';
import { canLoadFrom } from './bigquery-location.ts';
import { ensureTable } from './bigquery-dataset.ts';
import {
  MAX_LOAD_JOBS,
  jobIdFor,
  loadJobAttemptId,
  loadRecordOf,
  olderThan,
  startJob,
  statusOf,
  waitFor,
  weekJobPrefix,
  type JobRunner,
} from './bigquery-jobs.ts';
import { parseBigQueryUri, type BigQueryTarget } from '../../backends/bigquery-uri.ts';

export { jobIdFor } from './bigquery-jobs.ts';
export { parseBigQueryUri, type BigQueryTarget } from '../../backends/bigquery-uri.ts';

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

export class BigQueryWarehouse implements Warehouse {
  readonly capabilities: WarehouseCapabilities = BIGQUERY_WAREHOUSE_CAPABILITIES;
  readonly description: string;
  private readonly target: BigQueryTarget;
  /** The client, the dataset's actual location once read, and how jobs are polled. */
  private readonly jobs: JobRunner;

  private constructor(client: BigQuery, target: BigQueryTarget, options: BigQueryWarehouseOptions) {
    this.target = target;
    this.description = `bigquery://${target.projectId}/${target.datasetId}`;
    this.jobs = {
      client,
      location: target.location,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      jobTimeoutMs: options.jobTimeoutMs ?? 6 * 3600_000,
      signal: options.signal,
    };
  }

  /**
   * Opens the warehouse; for writing, prepares the dataset, table and view and checks the lake.
   * That costs a few API calls, so the backend is opened once per run, not per week (it is not
   * `exclusivePerProcess`: run-context.ts keeps one session for the run).
   */
  static async open(uri: string, options: BigQueryWarehouseOptions = {}): Promise<BigQueryWarehouse> {
    const target = parseBigQueryUri(uri);
    let client = options.client;
    if (!client) {
      const { BigQuery } = await import('@google-cloud/bigquery');
      client = new BigQuery({ projectId: target.projectId, location: target.location });
    }
    const warehouse = new BigQueryWarehouse(client, target, options);
    if (!options.readOnly) {
      const prepared = ensureTable(client, target).then(async (location) => {
        warehouse.jobs.location = location;
        if (options.lake) await warehouse.checkColocated(options.lake);
      });
      await untilStopped(prepared, options.signal);
    }
    return warehouse;
  }

  /**
   * Refuses a lake bucket BigQuery cannot load from, before anything is uploaded. That the lake
   * is in Cloud Storage at all is checked by the backend registry (`lakeSchemes`).
   */
  private async checkColocated(lake: Lake): Promise<void> {
    const bucketLocation = await lake.location();
    if (bucketLocation !== undefined && !canLoadFrom(this.jobs.location, bucketLocation)) {
      throw new UsageError(
        `the lake bucket (${lake.uri}) is in ${bucketLocation} but the dataset ${this.target.projectId}:${this.target.datasetId} is in ${this.jobs.location}: BigQuery loads only from a bucket in the dataset's location (or any bucket into the US multi-region)`,
      );
    }
  }

  /**
   * Not read here (`readsWeekFacts` false): counting a partition's rows and sums is a query job
   * (billed, slow), and the stand-in the tests use runs no SQL yet. A week's state comes from its
   * load job's record (rows loaded, checked at load time) until the load state lives in the
   * dataset (issue 14).
   */
  weekFacts(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  /** Not offered (`listsWeeks` false): loads are recorded in jobs, found from the manifests. */
  listLoadedWeeks(): Promise<LoadRecord[]> {
    return Promise.reject(new WarehouseError(`${this.description} cannot list its loaded weeks`));
  }

  /** Not offered (`answersQueries` false): a query is a billed job; query the view directly. */
  topStations(): Promise<StationTotal[]> {
    return Promise.reject(new WarehouseError(`${this.description} answers no queries here`));
  }

  async loadedWeek(dropDate: IsoDate, recorded?: { jobId: string }): Promise<LoadRecord | undefined> {
    if (!recorded || !recorded.jobId.startsWith(weekJobPrefix(this.target.datasetId, dropDate)))
      return undefined;
    let metadata: JobMetadata;
    try {
      [metadata] = (await this.jobs.client
        .job(recorded.jobId, { location: this.jobs.location })
        .getMetadata()) as [JobMetadata, unknown];
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
    return loadRecordOf(dropDate, recorded.jobId, metadata);
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
      const { job, ours } = await startJob(this.jobs, jobId, configuration);
      const metadata = await waitFor(this.jobs, job, jobId);
      const failure = metadata.status?.errorResult;
      // An earlier run's job that failed keeps its id for good: start the next attempt. So does
      // one that a newer load of another source version has overwritten since (A, B, A again).
      if (!ours && (failure || olderThan(metadata, jobId, load.previousLoad))) continue;
      if (failure) {
        throw new WarehouseError(
          `BigQuery load job ${jobId} failed: ${failure.message ?? failure.reason ?? 'unknown error'}`,
        );
      }
      const loaded = loadRecordOf(load.dropDate, jobId, metadata);
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

  close(): Promise<void> {
    return Promise.resolve();
  }
}
