/**
 * What every week of a run shares (configuration, lake, run id, logger, scratch folder) and
 * what each week gets afresh: a DuckDB engine and, when one process at a time may hold it
 * (`capabilities.exclusivePerProcess`: a DuckDB file), the warehouse; any other warehouse is
 * opened once for the run.
 *
 * The engine lives for one week, not one run: DuckDB's allocator keeps what a conversion used,
 * and a run's RSS climbed from 300 MB to 430 MB over 10 weeks with one engine; closed after
 * each week, every week starts from the same ~130 MB. Opening one costs about 30 ms.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Config } from '../config.ts';
import type { Lake } from '../lake/lake.ts';
import type { Warehouse } from '../warehouse/warehouse.ts';
import type { Logger } from '../log.ts';
import { lazyEngine, type DuckDBEngineProvider } from '../duckdb/duckdb-engine.ts';
import type { ProgressEvent } from './week-result.ts';
import {
  openLake,
  openWarehouse,
  overridesFor,
  warehouseCapabilities,
  type BackendOverrides,
} from '../backends.ts';
import { createWorkDir, removeStaleWorkDirs, removeWorkDir } from './work-dir.ts';

/** A week's own resources, closed when the week ends. */
export interface WeekResources {
  readonly warehouse: Warehouse;
  /** The connection conversions run on (its engine is opened on first use). */
  converter(): Promise<DuckDBConnection>;
}

export interface RunContext {
  readonly config: Config;
  readonly lake: Lake;
  readonly runId: string;
  readonly log: Logger;
  /** This run's scratch folder, removed when the run ends. */
  readonly workDir: string;
  readonly signal?: AbortSignal | undefined;
  /** Live progress, for a terminal display (never needed for correctness). */
  readonly progress?: ((event: ProgressEvent) => void) | undefined;
  /** Runs `use` with fresh week resources, and closes them however it ends. */
  withWeek<T>(use: (week: WeekResources) => Promise<T>): Promise<T>;
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
  overrides: BackendOverrides = {},
  progress?: (event: ProgressEvent) => void,
): Promise<RunContext> {
  overrides = overridesFor(config, overrides);
  // The run's stop reaches every stage through the backends: uploads, DuckDB queries (the
  // conversion's included: its connection comes from the week's engine), lock waits, job polls.
  const lake = await openLake(config.lake, overrides, signal);
  const workDir = await createWorkDir(config.workDir, runId);
  const runLog = log.child({ runId });
  await removeStaleWorkDirs(config.workDir, runLog);
  const spill = join(workDir, 'duckdb-spill');
  const openFor = (engine: DuckDBEngineProvider): Promise<Warehouse> =>
    openWarehouse(config.warehouse, {
      engine,
      lake,
      overrides,
      log: runLog,
      lockWaitMs: config.lockWaitMs,
      signal,
    });
  // A warehouse one process holds at a time (DuckDB's file lock) is opened for each week, so
  // that concurrent runs take turns week by week; any other is opened once, for the whole run,
  // so that what opening it prepares (BigQuery's dataset, table and colocation check) is done
  // once. Its engine is opened only if it uses one (an embedded warehouse would).
  const runEngine = lazyEngine({ tempDirectory: spill, signal });
  const session = warehouseCapabilities(config.warehouse).exclusivePerProcess
    ? undefined
    : runSession(() => openFor(runEngine));
  return {
    config,
    lake,
    runId,
    log: runLog,
    workDir,
    signal,
    progress,
    async withWeek(use) {
      const engine = lazyEngine({ tempDirectory: spill, signal });
      try {
        const warehouse = await (session ? session.open() : openFor(engine));
        try {
          let converter: Promise<DuckDBConnection> | undefined;
          return await use({ warehouse, converter: () => (converter ??= engine().then((e) => e.connect())) });
        } finally {
          if (!session) await warehouse.close();
        }
      } finally {
        engine.opened()?.close();
      }
    },
    async close() {
      try {
        await session?.close();
      } finally {
        runEngine.opened()?.close();
        await removeWorkDir(workDir);
      }
    },
  };
}

/**
 * A warehouse opened on first use and kept until `close`. An open that fails is forgotten, so
 * the next week tries again (as a week whose warehouse could not be opened fails alone).
 */
function runSession(open: () => Promise<Warehouse>): { open(): Promise<Warehouse>; close(): Promise<void> } {
  let opened: Promise<Warehouse> | undefined;
  return {
    open() {
      if (opened === undefined) {
        const opening = open();
        opened = opening;
        opening.catch(() => {
          if (opened === opening) opened = undefined;
        });
      }
      return opened;
    },
    async close() {
      const warehouse = await opened?.catch(() => undefined);
      opened = undefined;
      await warehouse?.close();
    },
  };
}
