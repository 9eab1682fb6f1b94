/**
 * The warehouse as a DuckDB file. A week is replaced in one transaction: delete the drop
 * date's rows, insert the Parquet's, check the count, record the load. A crash at any point
 * leaves the week as it was before, or wholly replaced (DuckDB replays its WAL on the next
 * open and drops what was not committed).
 *
 * Concurrency: DuckDB lets one process at a time hold a file (an OS lock). A second run does
 * not fail on it: it waits, bounded, for the first to let go (lock.ts), and the run holds the
 * file for a whole week, from before it reads the week's manifest until the week is recorded.
 * So two runs of the same week are serialised, and the second finds the week loaded and does
 * nothing: a week is never loaded twice, and neither run fails.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { WarehouseOpenOptions } from '../../backend-options.ts';
import { WarehouseError, oneLine } from '../../errors.ts';
import type { IsoDate } from '../../dates/drop-dates.ts';
import { TABLE_NAME, duckdbCreateTable } from '../../schema/turnstile-schema.ts';
import { sqlString } from '../../util/sql.ts';
import { INTERVALS_VIEW, intervalsViewQuery } from '../intervals-view.ts';
import { topStationsQuery } from '../station-totals.ts';
import type {
  LoadRecord,
  StationReport,
  Warehouse,
  WarehouseCapabilities,
  WeekFacts,
  LoadRequest,
} from '../warehouse.ts';
import { attachWaiting } from './lock.ts';
import { DUCKDB_WAREHOUSE_CAPABILITIES } from '../../backends/capabilities.ts';
import { StoppedError } from '../../util/abort.ts';

/** The name the warehouse file is attached under in the engine. */
const CATALOG = 'warehouse';

/** One row per loaded week: which source version the table holds. */
export const LOADS_TABLE = '_mta_ingest_loads';

export class DuckDBWarehouse implements Warehouse {
  readonly capabilities: WarehouseCapabilities = DUCKDB_WAREHOUSE_CAPABILITIES;
  readonly description: string;
  /** Undefined when opened read-only on a file that does not exist yet: nothing is loaded. */
  private readonly db: DuckDBConnection | undefined;
  /** Whether a load replaced rows since the file was attached (see `compactOnlyReplacedRows`). */
  private replacedRows = false;

  private constructor(path: string, db: DuckDBConnection | undefined) {
    this.description = `duckdb:${path}`;
    this.db = db;
  }

  /**
   * Attaches the warehouse file to the run's engine (creating it if needed). Read-only opens
   * never create it: a missing file reads as an empty warehouse. DuckDB allows one process per
   * file; while another holds it, this waits (up to `lockWaitMs`), then fails with one line.
   */
  static async open(path: string, options: WarehouseOpenOptions): Promise<DuckDBWarehouse> {
    const file = resolve(path);
    const readOnly = options.readOnly === true;
    try {
      if (readOnly && !existsSync(file)) return new DuckDBWarehouse(file, undefined);
      if (!readOnly) await mkdir(dirname(file), { recursive: true });
      const db = await (await options.engine()).connect();
      await attachWaiting(db, `ATTACH ${sqlString(file)} AS ${CATALOG}${readOnly ? ' (READ_ONLY)' : ''}`, {
        file,
        log: options.log,
        waitMs: options.lockWaitMs,
        signal: options.signal,
      });
      await db.run(`USE ${CATALOG}`);
      if (!readOnly) {
        await db.run(duckdbCreateTable());
        await db.run(`CREATE TABLE IF NOT EXISTS ${LOADS_TABLE} (
          drop_date DATE PRIMARY KEY, source_sha256 VARCHAR NOT NULL, rows BIGINT NOT NULL,
          loaded_at TIMESTAMP NOT NULL, job_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL)`);
        await db.run(`CREATE OR REPLACE VIEW ${INTERVALS_VIEW} AS ${intervalsViewQuery('duckdb')}`);
        // The table's text (codes, names, one file name) always compresses best as a dictionary
        // (pragma_storage_info on the real week: no segment FSST), yet DuckDB analyzes every
        // string segment for FSST too. Not trying it took the real week's INSERT and COMMIT from
        // 279 to 306 ms down to 244 to 256 ms (medians of 7, docs/performance.md), same storage.
        // A setting of the engine's: the conversion writes no DuckDB storage.
        await db.run(`SET disabled_compression_methods = 'fsst'`);
      }
      return new DuckDBWarehouse(file, db);
    } catch (error) {
      if (error instanceof WarehouseError || error instanceof StoppedError) throw error;
      throw new WarehouseError(`cannot open the DuckDB warehouse ${file}: ${oneLine(error)}`, {
        cause: error,
      });
    }
  }

  async loadedWeek(dropDate: IsoDate): Promise<LoadRecord | undefined> {
    return (await this.select(`WHERE drop_date = DATE ${sqlString(dropDate)}`))[0];
  }

  async weekFacts(dropDate: IsoDate): Promise<WeekFacts | undefined> {
    if (this.db === undefined) return undefined;
    // One drop date's rows: the table is filled a week at a time, so its row groups' zone maps
    // on drop_date skip every other week.
    const reader = await this.db.runAndReadAll(
      `SELECT count(*)::BIGINT, coalesce(sum(entries), 0)::VARCHAR, coalesce(sum(exits), 0)::VARCHAR
       FROM ${TABLE_NAME} WHERE drop_date = $1::DATE`,
      [dropDate],
    );
    const [rows, entriesSum, exitsSum] = reader.getRows()[0] ?? [];
    return { rows: Number(rows), entriesSum: String(entriesSum), exitsSum: String(exitsSum) };
  }

  listLoadedWeeks(): Promise<LoadRecord[]> {
    return this.select('');
  }

  async topStations(dropDate: IsoDate, limit: number): Promise<StationReport> {
    if (this.db === undefined) return { stations: [] };
    const reader = await this.db.runAndReadAll(topStationsQuery('duckdb', INTERVALS_VIEW, limit), [dropDate]);
    const stations = reader.getRows().map(([station, lineName, entries, exits, turnstiles]) => ({
      station: station === null ? null : String(station),
      lineName: lineName === null ? null : String(lineName),
      entries: Number(entries ?? 0),
      exits: Number(exits ?? 0),
      turnstiles: Number(turnstiles),
    }));
    return { stations };
  }

  /** Load records; `where` is built here from validated dates only. */
  private async select(where: string): Promise<LoadRecord[]> {
    if (this.db === undefined) return [];
    const reader = await this.db.runAndReadAll(
      `SELECT drop_date::VARCHAR, source_sha256, rows, strftime(loaded_at, '%Y-%m-%dT%H:%M:%SZ'), job_id
       FROM ${LOADS_TABLE} ${where} ORDER BY drop_date`,
    );
    return reader.getRows().map(([dropDate, sourceSha256, rows, loadedAt, jobId]) => ({
      dropDate: String(dropDate),
      sourceSha256: String(sourceSha256),
      rows: Number(rows),
      loadedAt: String(loadedAt),
      jobId: String(jobId),
    }));
  }

  async loadWeek(load: LoadRequest): Promise<LoadRecord> {
    if (!load.parquetPath) throw new WarehouseError('the DuckDB warehouse loads from a local Parquet file');
    const jobId = `duckdb_${load.dropDate.replaceAll('-', '')}_${load.sourceSha256.slice(0, 16)}`;
    const db = this.db;
    if (db === undefined) throw new WarehouseError('the warehouse was opened read-only');
    try {
      await db.run('BEGIN TRANSACTION');
      const deleted = await db.runAndReadAll(`DELETE FROM ${TABLE_NAME} WHERE drop_date = $1::DATE`, [
        load.dropDate,
      ]);
      const replaced = Number(deleted.getRows()[0]?.[0] ?? 0) > 0;
      const inserted = await db.runAndReadAll(
        `INSERT INTO ${TABLE_NAME} SELECT * FROM read_parquet(${sqlString(load.parquetPath)})`,
      );
      const count = Number(inserted.getRows()[0]?.[0] ?? -1);
      if (count !== load.rows) {
        throw new WarehouseError(
          `loaded ${count} rows for ${load.dropDate} but the manifest has ${load.rows}`,
        );
      }
      await db.run(
        `INSERT OR REPLACE INTO ${LOADS_TABLE} VALUES ($1::DATE, $2, $3, $4::TIMESTAMP, $5, $6)`,
        // loaded_at is UTC; DuckDB's time-zone functions need ICU, which is an extension.
        [
          load.dropDate,
          load.sourceSha256,
          load.rows,
          new Date().toISOString().slice(0, 19),
          jobId,
          load.runId,
        ],
      );
      await db.run('COMMIT');
      this.replacedRows ||= replaced;
    } catch (error) {
      await db.run('ROLLBACK').catch(() => undefined);
      if (error instanceof WarehouseError) throw error;
      throw new WarehouseError(`loading ${load.dropDate} into DuckDB failed: ${oneLine(error)}`, {
        cause: error,
      });
    }
    // Committed: the setting only decides how long the checkpoint takes, so a failure (a stop
    // refusing new statements) leaves the default, never a failed load.
    await this.compactOnlyReplacedRows(db).catch(() => undefined);
    const loaded = await this.loadedWeek(load.dropDate);
    if (!loaded) throw new WarehouseError(`the load of ${load.dropDate} was not recorded`);
    return loaded;
  }

  /**
   * The file is checkpointed when it is detached (close), and by default DuckDB's checkpoint
   * merges adjacent row groups that fit in fewer ("vacuum"): the partial last row group of the
   * week before with this week's first ones, rewriting and recompressing them. A new week has
   * nothing to compact, so that merge is turned off unless a load replaced rows (a reload, whose
   * deleted rows the merge does clear out). Measured on the real week, from the second week on:
   * the detach took 0.40 to 0.60 s with the merge and 4 to 11 ms without (docs/performance.md),
   * and each week keeps row groups of its own, so its drop date's zone maps skip every other
   * week (`weekFacts`, the partition-like reads).
   */
  private async compactOnlyReplacedRows(db: DuckDBConnection): Promise<void> {
    await db.run(this.replacedRows ? 'RESET max_vacuum_tasks' : 'SET max_vacuum_tasks = 0');
  }

  async close(): Promise<void> {
    // Detach so the file is released (and checkpointed) even if the engine lives on.
    await this.db?.run(`USE memory; DETACH ${CATALOG}`);
  }
}
