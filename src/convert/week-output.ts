/**
 * What every layout's converter shares: the per-conversion temp tables, the rejects Parquet
 * file and the summary read back from the readings Parquet. Kept apart from the converters so
 * a result means the same thing whichever layout produced it.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { ConvertRequest, ConvertResult } from './convert-types.ts';
import { sqlIdentifier, sqlString } from '../util/sql.ts';

/**
 * The CSV reader's buffer per thread. DuckDB's default (16 MB and more) bought nothing on a
 * 33 MB week but 30 MB of peak RSS; 4 MiB still holds any line the spool lets through (1 MiB).
 */
export const CSV_BUFFER_BYTES = 4 * 1024 * 1024;

/** How readings Parquet is written: ZSTD, row groups of about 100k rows. */
export const READINGS_PARQUET = '(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)';

let conversionCount = 0;

/**
 * A suffix for this conversion's temp tables: connections may be shared, and a failed week's
 * tables must never be mistaken for the next one's.
 */
export function nextConversionId(): string {
  return `c${process.pid}_${(conversionCount += 1)}`;
}

/** The week's rejects, one row per reject, filled by the converter; returns its name. */
export async function createWeekRejects(db: DuckDBConnection, id: string): Promise<string> {
  const table = sqlIdentifier(`week_rejects_${id}`);
  await db.run(
    `CREATE TEMP TABLE ${table} (source_line BIGINT NOT NULL, reason VARCHAR NOT NULL, line VARCHAR)`,
  );
  return table;
}

/**
 * Writes the rejects Parquet (only when there are rejects) and reads the readings' count and
 * time span back from the Parquet file, so the result describes what was written.
 */
export async function finishWeek(
  db: DuckDBConnection,
  request: ConvertRequest,
  weekRejects: string,
  parquetPath: string,
  rejectsPath: string,
): Promise<ConvertResult> {
  // Lines the spool did not write (over its length limit) never reached the reader: their
  // rejects join the reader's here, for every layout alike.
  for (const reject of request.spoolRejects ?? []) {
    await db.run(`INSERT INTO ${weekRejects} VALUES ($1, $2, $3)`, [
      reject.lineNumber,
      reject.reason,
      reject.text,
    ]);
  }
  const rejects = await scalarNumber(db, `SELECT count(*) FROM ${weekRejects}`);
  if (rejects > 0) {
    await db.run(`COPY (
      SELECT DATE ${sqlString(request.dropDate)} AS drop_date, ${sqlString(request.sourceFile)} AS source_file,
             source_line, reason, line
      FROM ${weekRejects} ORDER BY source_line, reason
    ) TO ${sqlString(rejectsPath)} (FORMAT parquet, COMPRESSION zstd)`);
  }
  const stats = await db.runAndReadAll(
    `SELECT count(*)::BIGINT, min(reading_at)::VARCHAR, max(reading_at)::VARCHAR FROM read_parquet(${sqlString(parquetPath)})`,
  );
  const [rows, from, to] = stats.getRows()[0] ?? [];
  return {
    rows: Number(rows),
    rejects,
    parquetPath,
    rejectsPath: rejects > 0 ? rejectsPath : undefined,
    readingsFrom: (from as string | null) ?? undefined,
    readingsTo: (to as string | null) ?? undefined,
  };
}

export async function scalarNumber(db: DuckDBConnection, sql: string): Promise<number> {
  const reader = await db.runAndReadAll(sql);
  return Number(reader.getRows()[0]?.[0] ?? 0);
}
