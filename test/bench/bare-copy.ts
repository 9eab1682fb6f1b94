/**
 * The benchmark's baseline: DuckDB's bare CSV→Parquet COPY of a file, with DuckDB's defaults
 * and auto-detection, and nothing else. Usage: node bare-copy.ts <input.csv> <output.parquet>
 */
import { DuckDBInstance } from '@duckdb/node-api';

const [input, output] = process.argv.slice(2);
if (!input || !output) throw new Error('usage: bare-copy.ts <input.csv> <output.parquet>');
const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
const quote = (s: string): string => `'${s.replaceAll("'", "''")}'`;
await connection.run(
  `COPY (SELECT * FROM read_csv(${quote(input)})) TO ${quote(output)} (FORMAT parquet, COMPRESSION zstd)`,
);
connection.closeSync();
instance.closeSync();
