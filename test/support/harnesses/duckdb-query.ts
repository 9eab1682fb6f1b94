/** Reads a warehouse file or a Parquet file with a DuckDB of the test's own. */
import { DuckDBInstance } from '@duckdb/node-api';

export async function query(sql: string, databasePath = ':memory:'): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(databasePath, {
    access_mode: databasePath === ':memory:' ? 'READ_WRITE' : 'READ_ONLY',
  });
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(sql);
    return reader.getRowObjectsJS();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
