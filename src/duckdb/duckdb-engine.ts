/**
 * The process's one in-memory DuckDB instance: it converts spooled CSV to Parquet and, when the
 * warehouse is a DuckDB file, holds that file ATTACHed, so both share one buffer pool and one
 * memory limit (two instances peaked 120 MB higher on a real week). Memory is capped and
 * spills to the run's work folder, so a week costs the same whatever its size.
 *
 * Only what the npm package ships is used: no extension is ever loaded (they download at run
 * time).
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

export interface DuckDBEngine {
  /** A new connection (each has its own transaction and default catalog). */
  connect(): Promise<DuckDBConnection>;
  close(): void;
}

/** Opens the engine on first use; a run whose weeks are all up to date never starts it. */
export type DuckDBEngineProvider = () => Promise<DuckDBEngine>;

export interface EngineOptions {
  /** Spill folder for anything that does not fit under the memory limit. */
  tempDirectory: string;
  memoryLimit?: string;
  threads?: number;
}

export async function openDuckDBEngine(options: EngineOptions): Promise<DuckDBEngine> {
  const instance = await DuckDBInstance.create(':memory:', {
    threads: String(options.threads ?? 2),
    memory_limit: options.memoryLimit ?? '128MB',
    temp_directory: options.tempDirectory,
    // Kept in file order, so the same source converts to byte-identical Parquet: a rerun, or
    // a second run of the week at the same time, writes exactly the objects already in the
    // lake (pipeline/ingest-week.ts, storeOrAdopt). Without it, the two threads' row order
    // varied from run to run, and so did the bytes (test/concurrency.test.ts fails without it).
    // Measured on the real week: conversion 0.22 s -> 0.34 s, peak RSS unchanged (320-370 MB).
    preserve_insertion_order: 'true',
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });
  const connections: DuckDBConnection[] = [];
  return {
    async connect() {
      const connection = await instance.connect();
      connections.push(connection);
      return connection;
    },
    close() {
      for (const connection of connections) connection.closeSync();
      instance.closeSync();
    },
  };
}

/** A provider that opens the engine once, on first call. */
export function lazyEngine(
  options: EngineOptions,
): DuckDBEngineProvider & { opened(): DuckDBEngine | undefined } {
  let engine: Promise<DuckDBEngine> | undefined;
  let ready: DuckDBEngine | undefined;
  const provider = async (): Promise<DuckDBEngine> => (ready = await (engine ??= openDuckDBEngine(options)));
  return Object.assign(provider, { opened: () => ready });
}
