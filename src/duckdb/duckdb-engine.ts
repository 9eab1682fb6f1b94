/**
 * The process's one in-memory DuckDB instance: it converts spooled CSV to Parquet and, when the
 * warehouse is a DuckDB file, holds that file ATTACHed, so both share one buffer pool and one
 * memory limit (two instances peaked 120 MB higher on a real week). Memory is capped and
 * spills to the run's work folder, so a week costs the same whatever its size.
 *
 * Only what the npm package ships is used: no extension is ever loaded (they download at run
 * time).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { stopWith, track } from './stoppable.ts';

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
  /** The run's stop: interrupts what the engine's connections run, and refuses new work. */
  signal?: AbortSignal | undefined;
}

export async function openDuckDBEngine(options: EngineOptions): Promise<DuckDBEngine> {
  // Imported here, not at the top: DuckDB's native library (about 180 modules and 40 MB) loads
  // only when an engine opens, never for --help, --version or a plan that opens no DuckDB file.
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:', {
    threads: String(options.threads ?? 2),
    memory_limit: options.memoryLimit ?? '128MB',
    temp_directory: options.tempDirectory,
    // Off: two threads may reorder rows, which is faster and uses less memory. Conversion turns
    // it on for its own statements, for byte-identical Parquet (convert/convert-week.ts).
    // Measured on the real week: conversion 0.21 s off, 0.36 s on; the warehouse load 0.25 s
    // off, 0.33 s on.
    preserve_insertion_order: 'false',
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });
  const connections: { connection: DuckDBConnection; untrack: () => void }[] = [];
  return {
    async connect() {
      const connection = await instance.connect();
      if (options.signal) stopWith(connection, options.signal);
      connections.push({ connection, untrack: track(connection) });
      return connection;
    },
    close() {
      for (const { connection, untrack } of connections) {
        untrack();
        connection.closeSync();
      }
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
