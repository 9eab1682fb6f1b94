/**
 * The warehouse port: the table `turnstile_readings` (see schema/turnstile-schema.ts) and a
 * record of which source version of each week it holds. Backends: `duckdb/` (a file, the
 * default) and `bigquery/`, declared with their capabilities in src/backends/.
 *
 * A load replaces exactly one drop date's rows and records the load in the same atomic step,
 * so the warehouse never holds a week twice, and a recorded load always matches the rows.
 */
import type { IsoDate } from '../dates/drop-dates.ts';

/**
 * What differs between warehouse backends, declared by each (src/backends/capabilities.ts)
 * rather than tested for by name or by which methods an object has.
 */
export interface WarehouseCapabilities {
  /**
   * Where a load reads the week's Parquet from: a file on this machine (embedded engines) or
   * the lake object's URI (a cloud warehouse reading the cloud lake).
   */
  readonly loadsFrom: 'local-file' | 'lake-uri';
  /**
   * The lake schemes it can load from: `any` (the Parquet is copied to this machine first) or
   * only these, read by the warehouse itself (a staging destination: BigQuery loads gs:// only).
   */
  readonly lakeSchemes: 'any' | readonly string[];
  /**
   * Where the record of a week's load lives: a table in the same transaction as the rows
   * (DuckDB's `_mta_ingest_loads`), or a table written right after the load job (BigQuery's
   * `_mta_ingest_loads`: a crash between the two leaves the week reading as not loaded, and the
   * rerun's load is idempotent).
   */
  readonly loadState: 'same-transaction' | 'after-load';
  /**
   * One process at a time may hold it (DuckDB's file lock). Such a warehouse is opened for each
   * week, so that concurrent runs take turns week by week; any other is opened once per run.
   */
  readonly exclusivePerProcess: boolean;
  /** Whether `listLoadedWeeks` answers (cheaply, from its load table). */
  readonly listsWeeks: boolean;
  /** Whether `topStations` answers (on the embedded engine, or by a query job). */
  readonly answersQueries: boolean;
  /** Whether `weekFacts` reads the week's rows cheaply here (not a billed query job). */
  readonly readsWeekFacts: boolean;
}

/** What the warehouse records of a load it made: which source version of a week it holds. */
export interface LoadRecord {
  dropDate: IsoDate;
  sourceSha256: string;
  rows: number;
  loadedAt: string;
  /** The load's id (a BigQuery job id; a generated id for DuckDB). */
  jobId: string;
  /**
   * The counter sums the week's rows had when the load was recorded (decimal strings), where
   * the warehouse records them (BigQuery's `_mta_ingest_loads`): checked against the manifest
   * without reading the rows again.
   */
  entriesSum?: string | undefined;
  exitsSum?: string | undefined;
}

/** What the warehouse's table actually holds for a week, read from its rows. */
export interface WeekFacts {
  rows: number;
  /** Counter sums as decimal strings (exact past 2^53). */
  entriesSum: string;
  exitsSum: string;
}

/** A station's riders in one week, summed over its turnstiles' intervals. */
export interface StationTotal {
  /** NULL where the station is unknown (legacy rows not in the Remote-Booth-Station table). */
  station: string | null;
  lineName: string | null;
  entries: number;
  exits: number;
  turnstiles: number;
}

/** The report's answer: the stations, and what the query cost where queries are billed. */
export interface StationReport {
  stations: StationTotal[];
  /** Bytes the query processed (BigQuery's on-demand billing); undefined for an embedded engine. */
  bytesProcessed?: number | undefined;
}

/** What the pipeline asks the warehouse to load: one week's Parquet, from one source version. */
export interface LoadRequest {
  dropDate: IsoDate;
  sourceSha256: string;
  /** Rows the manifest promises; the load fails if the warehouse counts another number. */
  rows: number;
  /** The Parquet file on this machine (for `loadsFrom: 'local-file'`). */
  parquetPath?: string | undefined;
  /** The Parquet object in the lake (for `loadsFrom: 'lake-uri'`). */
  parquetUri: string;
  runId: string;
  /** Reload even if this source version was loaded before (`--force`). */
  force: boolean;
  /**
   * The load the week's manifest recorded when this run began. A backend that takes an earlier
   * load of the same source as done (BigQuery finds its job by id) must not take one older than
   * this: the source went A, B, then A again, and the week holds B.
   */
  previousLoad?: { jobId: string; loadedAt: string } | undefined;
}

export interface Warehouse {
  /** Where it is, for messages (never holds a credential). */
  readonly description: string;
  readonly capabilities: WarehouseCapabilities;
  /**
   * What the warehouse holds for a week, from its own load-state table: the source version and
   * rows of its last load, or undefined.
   */
  loadedWeek(dropDate: IsoDate): Promise<LoadRecord | undefined>;
  /**
   * The week's rows as the table holds them (count and counter sums), to verify a load rather
   * than trust its record. Every backend answers; `capabilities.readsWeekFacts` says whether it
   * is cheap enough for every run (DuckDB) or only for `verify` (BigQuery: a billed query job).
   * Undefined where there is no table.
   */
  weekFacts(dropDate: IsoDate): Promise<WeekFacts | undefined>;
  /** Every loaded week, from the load-state table; only with `capabilities.listsWeeks`. */
  listLoadedWeeks(): Promise<LoadRecord[]>;
  /**
   * The week's busiest stations by entries, from the `turnstile_intervals` view
   * (station-totals.ts); only with `capabilities.answersQueries`.
   */
  topStations(dropDate: IsoDate, limit: number): Promise<StationReport>;
  /** Replaces the week's rows with the Parquet's, atomically, and records the load. */
  loadWeek(load: LoadRequest): Promise<LoadRecord>;
  close(): Promise<void>;
}

/**
 * Ten minutes: a week holds the warehouse for seconds (minutes with fetch retries), so a run
 * that waits longer than this is waiting for a stuck process, and says so.
 */
export const DEFAULT_LOCK_WAIT_MS = 10 * 60_000;
