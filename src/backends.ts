/**
 * Opens the lake and the warehouse a configuration names. Each backend module is imported only
 * when chosen, so a run on the local defaults never loads a cloud SDK.
 */
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.ts';
import type { Lake } from './lake/lake.ts';
import type { Warehouse } from './warehouse/warehouse.ts';
import type { Config } from './config.ts';
import type { BackendOverrides, Emulators, WarehouseOpenOptions } from './backend-options.ts';

export type { BackendOverrides, Emulators, WarehouseOpenOptions } from './backend-options.ts';

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
