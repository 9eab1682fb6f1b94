/**
 * What opening a backend takes: ready-made clients, emulators and the options of a warehouse
 * open. A module of its own so that the backends (warehouse/duckdb/, …) do not import the
 * module that selects them (backends.ts).
 */
import type { Storage } from '@google-cloud/storage';
import type { BigQuery } from '@google-cloud/bigquery';
import type { DuckDBEngineProvider } from './duckdb/duckdb-engine.ts';
import type { Lake } from './lake/lake.ts';
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
