/**
 * The warehouse in BigQuery (`bigquery://PROJECT/DATASET[?location=LOC]`), with
 * `@google-cloud/bigquery`. Opening it for writing prepares the dataset, tables and view
 * (bigquery-dataset.ts) and checks the lake's bucket is in a location it can load from; opening
 * it read-only only asks where the dataset is (datasets.get), so every job runs there.
 *
 * A week is loaded by one load job (bigquery-jobs.ts) from its Parquet object in the lake into
 * the partition `turnstile_readings$YYYYMMDD` with WRITE_TRUNCATE, so it replaces exactly that
 * week; then a query job records it in `_mta_ingest_loads` (bigquery-load-state.ts), with the
 * rows and sums the partition then holds, which must match the manifest's. Which source version
 * a week holds is read from that table, never from job metadata, which BigQuery drops after
 * about six months. Credentials come from Application Default Credentials only.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import { untilStopped } from '../../util/abort.ts';
import { UsageError, WarehouseError } from '../../errors.ts';
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
  StationReport,
  Warehouse,
  WarehouseCapabilities,
  WeekFacts,
} from '../warehouse.ts';
import { BIGQUERY_WAREHOUSE_CAPABILITIES } from '../../backends/capabilities.ts';
import { canLoadFrom } from './bigquery-location.ts';
import { ensureTable, findDataset } from './bigquery-dataset.ts';
import { readLoads, recordLoad } from './bigquery-load-state.ts';
import { integerText, runQuery, textOf } from './bigquery-queries.ts';
import { INTERVALS_VIEW } from '../intervals-view.ts';
import { topStationsQuery } from '../station-totals.ts';
import {
  MAX_LOAD_JOBS,
  jobIdFor,
  loadJobAttemptId,
  loadRecordOf,
  olderThan,
  startJob,
  waitFor,
  type JobRunner,
} from './bigquery-jobs.ts';
import { parseBigQueryUri, tableRef, type BigQueryTarget } from '../../backends/bigquery-uri.ts';

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
  /**
   * Whether the dataset holds the load-state table: false for a read-only open of a dataset that
   * does not exist yet, or that no run of this version has prepared (nothing is loaded, then).
   */
  private hasLoadState = true;

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
    if (options.readOnly) {
      const found = await untilStopped(findDataset(client, target), options.signal);
      warehouse.jobs.location = found.location ?? target.location;
      warehouse.hasLoadState = found.hasLoadState;
    } else {
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
   * The week's rows counted and summed by a query job (billed: two columns of one partition,
   * about 6 MB a week, so 10 MB at on-demand's minimum): `readsWeekFacts` is false, and only
   * `verify` asks. A run trusts the load record, whose figures the load itself checked.
   */
  async weekFacts(dropDate: IsoDate): Promise<WeekFacts | undefined> {
    if (!this.hasLoadState) return undefined;
    const result = await runQuery(
      this.jobs,
      `SELECT COUNT(*) AS row_count, IFNULL(SUM(CAST(entries AS NUMERIC)), 0) AS entries_sum,
  IFNULL(SUM(CAST(exits AS NUMERIC)), 0) AS exits_sum
FROM ${tableRef(this.target, TABLE_NAME)}
WHERE ${PARTITION_COLUMN} = @drop_date`,
      [{ name: 'drop_date', type: 'DATE', value: dropDate }],
    );
    const row = result?.rows[0];
    if (row === undefined) return undefined;
    return {
      rows: Number(textOf(row.row_count)),
      entriesSum: integerText(row.entries_sum),
      exitsSum: integerText(row.exits_sum),
    };
  }

  /** The newest record of every week, from `_mta_ingest_loads` (one query job). */
  listLoadedWeeks(): Promise<LoadRecord[]> {
    return this.hasLoadState ? readLoads(this.jobs, this.target) : Promise.resolve([]);
  }

  /** The busiest stations, by a query job on the view; bytes processed as BigQuery bills them. */
  async topStations(dropDate: IsoDate, limit: number): Promise<StationReport> {
    if (!this.hasLoadState) return { stations: [], bytesProcessed: 0 };
    const view = tableRef(this.target, INTERVALS_VIEW);
    const result = await runQuery(this.jobs, topStationsQuery('bigquery', view, limit), [
      { name: 'drop_date', type: 'DATE', value: dropDate },
    ]);
    const stations = (result?.rows ?? []).map((row) => ({
      station: row.station === null ? null : textOf(row.station),
      lineName: row.line_name === null ? null : textOf(row.line_name),
      entries: Number(textOf(row.entries) || 0),
      exits: Number(textOf(row.exits) || 0),
      turnstiles: Number(textOf(row.turnstiles)),
    }));
    return { stations, bytesProcessed: result?.bytesProcessed ?? 0 };
  }

  async loadedWeek(dropDate: IsoDate): Promise<LoadRecord | undefined> {
    if (!this.hasLoadState) return undefined;
    return (await readLoads(this.jobs, this.target, dropDate))[0];
  }

  async loadWeek(load: LoadRequest): Promise<LoadRecord> {
    const base = jobIdFor(this.target.datasetId, load);
    // The week's own record is the truth of what it holds; the manifest's copy is the fallback.
    const previous = (await this.loadedWeek(load.dropDate)) ?? load.previousLoad;
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
      // An earlier job whose metadata BigQuery no longer keeps (409, then 404): its id stays
      // taken, and what it loaded is unknown, so the next attempt loads again.
      if (metadata === undefined) continue;
      const failure = metadata.status?.errorResult;
      // An earlier run's job that failed keeps its id for good: start the next attempt. So does
      // one that a newer load of another source version has overwritten since (A, B, A again).
      if (!ours && (failure || olderThan(metadata, jobId, previous))) continue;
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
      const record = await recordLoad(this.jobs, this.target, { ...load, jobId });
      if (record.rows !== load.rows) {
        throw new WarehouseError(
          `${TABLE_NAME}$${partition} holds ${record.rows} rows after load job ${jobId}, but the manifest has ${load.rows}`,
        );
      }
      return record;
    }
    throw new WarehouseError(
      `BigQuery load jobs ${base} to ${loadJobAttemptId(base, MAX_LOAD_JOBS)} all failed or were overwritten since: see them in BigQuery, then rerun with --force`,
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
