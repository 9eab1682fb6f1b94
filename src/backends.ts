/**
 * Opens the lake and the warehouse a configuration names. Each backend module is imported only
 * when chosen, so a run on the local defaults never loads a cloud SDK.
 */
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.ts';
import type { Lake } from './lake/lake.ts';
import type { Warehouse } from './warehouse/warehouse.ts';
import type { DuckDBEngineProvider } from './duckdb/duckdb-engine.ts';
import type { Storage } from '@google-cloud/storage';
import type { BigQuery } from '@google-cloud/bigquery';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';

/**
 * Ready-made clients to use instead of building them from Application Default Credentials:
 * for embedding the worker in a process that has its own, and for tests against emulators and
 * stand-ins. (Type-only imports: nothing is loaded unless a backend that needs it is chosen.)
 */
export interface BackendOverrides {
  storage?: Storage;
  bigquery?: BigQuery;
  /** First wait between BigQuery job polls (default 1 s). */
  bigqueryPollIntervalMs?: number;
}

/** Emulators a configuration names, which backends reach without credentials. */
export interface Emulators {
  gcsEmulator?: string;
  bigqueryEmulator?: string;
}

/** The overrides a configuration itself implies (emulators), under the caller's own. */
export function overridesFor(config: Config, overrides: BackendOverrides = {}): BackendOverrides & Emulators {
  const emulators: Emulators = {};
  if (config.gcsEmulator !== undefined) emulators.gcsEmulator = config.gcsEmulator;
  if (config.bigqueryEmulator !== undefined) emulators.bigqueryEmulator = config.bigqueryEmulator;
  return { ...emulators, ...overrides };
}

/** `signal`: the run's stop, which ends a file's upload (nothing is half-written: writes are atomic). */
export async function openLake(
  uri: string,
  overrides: BackendOverrides & Emulators = {},
  signal?: AbortSignal,
): Promise<Lake> {
  if (/^gs:\/\//i.test(uri)) {
    const { GcsLake, emulatorStorage } = await import('./lake/gcs/gcs-lake.ts');
    const emulator = overrides.gcsEmulator;
    return new GcsLake(
      uri,
      overrides.storage ?? (emulator === undefined ? undefined : emulatorStorage(emulator)),
      signal,
    );
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !uri.startsWith('file://')) {
    throw new UsageError(`--lake ${uri}: expected a folder path, a file:// URL or gs://bucket/prefix`);
  }
  const { LocalLake } = await import('./lake/local/local-lake.ts');
  return new LocalLake(uri.startsWith('file://') ? fileURLToPath(uri) : uri, signal);
}

export interface WarehouseOpenOptions {
  /** The run's DuckDB engine, which an embedded warehouse attaches its file to. */
  engine: DuckDBEngineProvider;
  /** For commands that only read (plan, status): never creates or changes anything. */
  readOnly?: boolean;
  /** The lake the warehouse will load from, for warehouses that check they can reach it. */
  lake?: Lake;
  overrides?: BackendOverrides & Emulators;
  /** Where a warehouse says that it waits for another run (a DuckDB file takes one at a time). */
  log?: Logger | undefined;
  /** Longest wait for another process's hold on the warehouse (default DEFAULT_LOCK_WAIT_MS). */
  lockWaitMs?: number | undefined;
  /** The run's stop: lock waits and job polls end at once (src/util/abort.ts). */
  signal?: AbortSignal | undefined;
}

export async function openWarehouse(uri: string, options: WarehouseOpenOptions): Promise<Warehouse> {
  if (/^bigquery:\/\//i.test(uri)) {
    const { BigQueryWarehouse, emulatorBigQuery } =
      await import('./warehouse/bigquery/bigquery-warehouse.ts');
    const emulator = options.overrides?.bigqueryEmulator;
    return BigQueryWarehouse.open(uri, {
      readOnly: options.readOnly,
      lake: options.lake,
      client:
        options.overrides?.bigquery ??
        (emulator === undefined ? undefined : await emulatorBigQuery(uri, emulator)),
      pollIntervalMs: options.overrides?.bigqueryPollIntervalMs,
      signal: options.signal,
    });
  }
  const path = uri.replace(/^duckdb:(\/\/)?/i, '');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) || path === '') {
    throw new UsageError(
      `--warehouse ${uri}: expected a DuckDB file path (or duckdb:PATH) or bigquery://project/dataset`,
    );
  }
  const { DuckDBWarehouse } = await import('./warehouse/duckdb/duckdb-warehouse.ts');
  return DuckDBWarehouse.open(path, options);
}
