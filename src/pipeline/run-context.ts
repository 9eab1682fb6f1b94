/**
 * What every week of a run shares: the configuration, the opened backends, the DuckDB engine
 * (opened on first use), the run id and the logger.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Config } from '../config.ts';
import type { Lake } from '../lake/lake.ts';
import type { Warehouse } from '../warehouse/warehouse.ts';
import type { Logger } from '../log.ts';
import { lazyEngine } from '../duckdb/duckdb-engine.ts';
import { openLake, openWarehouse } from '../backends.ts';

export interface RunContext {
  readonly config: Config;
  readonly lake: Lake;
  readonly warehouse: Warehouse;
  readonly runId: string;
  readonly log: Logger;
  /** This run's scratch folder, removed when the run ends. */
  readonly workDir: string;
  readonly signal?: AbortSignal | undefined;
  /** The connection conversions run on (opened on first use). */
  converter(): Promise<DuckDBConnection>;
  close(): Promise<void>;
}

export function newRunId(now: Date): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export async function openRunContext(
  config: Config,
  log: Logger,
  runId: string,
  signal?: AbortSignal,
): Promise<RunContext> {
  const workDir = await mkdtemp(join(config.workDir, `mta-ingest-${runId}-`));
  const engine = lazyEngine({ tempDirectory: join(workDir, 'duckdb-spill') });
  let lake: Lake | undefined;
  let warehouse: Warehouse | undefined;
  const release = async (): Promise<void> => {
    await warehouse?.close();
    engine.opened()?.close();
    await rm(workDir, { recursive: true, force: true });
  };
  try {
    lake = await openLake(config.lake);
    warehouse = await openWarehouse(config.warehouse, { engine });
  } catch (error) {
    await release();
    throw error;
  }
  let converter: Promise<DuckDBConnection> | undefined;
  return {
    config,
    lake,
    warehouse,
    runId,
    log: log.child({ runId }),
    workDir,
    signal,
    converter: () => (converter ??= engine().then((e) => e.connect())),
    close: release,
  };
}
