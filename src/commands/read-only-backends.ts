/**
 * The lake and warehouse opened for reading only, for the commands that inspect (plan,
 * status): nothing is created or changed, and everything is closed however `use` ends.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { openLake, openWarehouse, overridesFor, type BackendOverrides } from '../backends.ts';
import { lazyEngine } from '../duckdb/duckdb-engine.ts';
import type { Lake } from '../lake/lake.ts';
import type { Warehouse } from '../warehouse/warehouse.ts';
import type { Logger } from '../log.ts';

export async function withReadOnlyBackends<T>(
  config: Config,
  use: (lake: Lake, warehouse: Warehouse) => Promise<T>,
  overrides: BackendOverrides = {},
  /** The command's stop: ends a wait for a warehouse file another run holds, and DuckDB queries. */
  signal?: AbortSignal,
  /** Where a wait for a warehouse file another run holds is told (it can last minutes). */
  log?: Logger,
): Promise<T> {
  overrides = overridesFor(config, overrides);
  const lake = await openLake(config.lake, overrides, signal);
  const engine = lazyEngine({ tempDirectory: join(tmpdir(), 'mta-ingest-duckdb-spill'), signal });
  try {
    const warehouse = await openWarehouse(config.warehouse, {
      engine,
      readOnly: true,
      // A DuckDB file another run holds is waited for as long as a run would wait (--lock-wait-ms).
      lockWaitMs: config.lockWaitMs,
      overrides,
      signal,
      log,
    });
    try {
      return await use(lake, warehouse);
    } finally {
      await warehouse.close();
    }
  } finally {
    engine.opened()?.close();
  }
}
