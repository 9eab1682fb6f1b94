/**
 * Stage 2, convert: the spooled lines of one week to typed Parquet (ZSTD, row groups of 100k),
 * in DuckDB. DuckDB's own CSV reader types every column and stores the rows it cannot type
 * (`store_rejects`) with their errors; those, and rows missing a required value, go to a
 * rejects Parquet file with their source line and reason. Nothing is dropped silently:
 * rows + rejects = the file's non-blank data lines.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { ConvertError, oneLine } from '../errors.ts';
import type { IsoDate } from '../dates/drop-dates.ts';
import { COLUMNS, duckdbSelectList } from '../schema/turnstile-schema.ts';
import { sqlIdentifier, sqlString } from '../util/sql.ts';
import type { Layout } from './layout.ts';

export interface ConvertRequest {
  dropDate: IsoDate;
  sourceFile: string;
  layout: Layout;
  /** The spool's numbered lines (`N,<line>`), see fetch/spool.ts. */
  linesPath: string;
  /** The last line, when the file did not end with a newline. */
  unterminatedLastLine?: { lineNumber: number; text: string } | undefined;
  outDir: string;
  db: DuckDBConnection;
}

export interface ConvertResult {
  rows: number;
  rejects: number;
  parquetPath: string;
  /** Only when there are rejects. */
  rejectsPath: string | undefined;
  /** Earliest and latest reading_at, 'YYYY-MM-DD HH:MM:SS' (undefined when no rows). */
  readingsFrom: string | undefined;
  readingsTo: string | undefined;
  /** Readings whose station the Remote-Booth-Station table does not know (legacy files). */
  unmatchedStations?: number;
}

/** Layouts this converter reads; the legacy wide layout is not supported yet. */
export const SUPPORTED_LAYOUTS: readonly Layout[] = ['modern'];

const MODERN_FIELDS = 11;

// The CSV reader's columns: our line-number prefix, then the source header's own names, so
// DuckDB's reject messages name the field as the file does.
const MODERN_COLUMNS = `{'source_line': 'UBIGINT', 'C/A': 'VARCHAR', 'UNIT': 'VARCHAR', 'SCP': 'VARCHAR',
  'STATION': 'VARCHAR', 'LINENAME': 'VARCHAR', 'DIVISION': 'VARCHAR', 'DATE': 'DATE', 'TIME': 'TIME',
  'DESC': 'VARCHAR', 'ENTRIES': 'UBIGINT', 'EXITS': 'UBIGINT'}`;

/**
 * The CSV reader's buffer per thread. DuckDB's default (16 MB and more) bought nothing on a
 * 33 MB week but 30 MB of peak RSS; 4 MiB still holds any line the spool lets through (1 MiB).
 */
const CSV_BUFFER_BYTES = 4 * 1024 * 1024;

let conversionCount = 0;

export async function convertWeek(request: ConvertRequest): Promise<ConvertResult> {
  if (!SUPPORTED_LAYOUTS.includes(request.layout)) {
    throw new ConvertError(
      `${request.sourceFile} uses the legacy layout (files before 2014-10-18): legacy layout not supported yet`,
    );
  }
  const id = `c${process.pid}_${(conversionCount += 1)}`;
  const rejectsTable = sqlIdentifier(`csv_rejects_${id}`);
  const weekRejects = sqlIdentifier(`week_rejects_${id}`);
  const stagedPath = join(request.outDir, 'staged.parquet');
  const parquetPath = join(request.outDir, 'readings.parquet');
  const rejectsPath = join(request.outDir, 'rejects.parquet');
  const db = request.db;
  try {
    const cut = cutLastLine(request.unterminatedLastLine);
    await db.run(
      `CREATE TEMP TABLE ${weekRejects} (source_line BIGINT NOT NULL, reason VARCHAR NOT NULL, line VARCHAR)`,
    );
    if (cut) {
      await db.run(`INSERT INTO ${weekRejects} VALUES ($1, $2, $3)`, [cut.lineNumber, cut.reason, cut.text]);
    }
    const select = duckdbSelectList({
      drop_date: `DATE ${sqlString(request.dropDate)}`,
      control_area: `NULLIF(trim("C/A"), '')`,
      unit: `NULLIF(trim(UNIT), '')`,
      scp: `NULLIF(trim(SCP), '')`,
      station: `NULLIF(trim(STATION), '')`,
      line_name: `NULLIF(trim(LINENAME), '')`,
      division: `NULLIF(trim(DIVISION), '')`,
      reading_at: `"DATE" + "TIME"`,
      description: `NULLIF(trim("DESC"), '')`,
      entries: 'ENTRIES',
      exits: 'EXITS',
      source_file: sqlString(request.sourceFile),
      source_line: 'source_line',
    });
    await db.run(`COPY (
      SELECT ${select}
      FROM read_csv(${sqlString(request.linesPath)}, columns = ${MODERN_COLUMNS},
        header = false, skip = 1, delim = ',', quote = '', escape = '', auto_detect = false,
        dateformat = '%m/%d/%Y', buffer_size = ${CSV_BUFFER_BYTES},
        store_rejects = true, rejects_table = ${sqlString(rejectsTable)}, rejects_scan = ${sqlString(`${rejectsTable}_scan`)})
      WHERE source_line <> ${cut?.lineNumber ?? 0}
    ) TO ${sqlString(stagedPath)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)`);
    await db.run(`INSERT INTO ${weekRejects} ${csvRejectsQuery(rejectsTable)}`);
    await separateMissingRequired(db, stagedPath, parquetPath, weekRejects);

    const rejects = await scalarNumber(db, `SELECT count(*) FROM ${weekRejects}`);
    if (rejects > 0) {
      await db.run(`COPY (
        SELECT DATE ${sqlString(request.dropDate)} AS drop_date, ${sqlString(request.sourceFile)} AS source_file,
               source_line, reason, line
        FROM ${weekRejects} ORDER BY source_line
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
  } catch (error) {
    if (error instanceof ConvertError) throw error;
    throw new ConvertError(`converting ${request.sourceFile} failed: ${oneLine(error)}`, { cause: error });
  } finally {
    await db.run(`DROP TABLE IF EXISTS ${weekRejects}`).catch(() => undefined);
    await db.run(`DROP TABLE IF EXISTS ${rejectsTable}`).catch(() => undefined);
    await db.run(`DROP TABLE IF EXISTS ${rejectsTable}_scan`).catch(() => undefined);
  }
}

/**
 * DuckDB's rejects, one row per source line: it can record several errors for a line (one per
 * missing column), and counts our line-number prefix as a field, which is taken off here.
 */
function csvRejectsQuery(rejectsTable: string): string {
  return `
    WITH errors AS (
      SELECT CAST(split_part(csv_line, ',', 1) AS BIGINT) AS source_line,
             substr(csv_line, strpos(csv_line, ',') + 1) AS line,
             error_type, column_idx,
             ${CAST_REASON} AS cast_reason,
             TRY_CAST(regexp_extract(error_message, 'Found: (\\d+)', 1) AS INTEGER) - 1 AS found
      FROM ${rejectsTable}
    )
    SELECT source_line,
      CASE
        WHEN bool_or(error_type = 'TOO MANY COLUMNS') THEN format('expected ${MODERN_FIELDS} fields, found {}', max(found))
        WHEN bool_or(error_type = 'MISSING COLUMNS') THEN format('expected ${MODERN_FIELDS} fields, found {}', min(found))
        ELSE arg_min(cast_reason, column_idx)
      END AS reason,
      rtrim(first(line), ' ') AS line
    FROM errors GROUP BY source_line`;
}

/** A cast error as a person reads it: which field, what it should be, what it was. */
const CAST_REASON = `CASE WHEN error_type = 'CAST' THEN format('{} is not a valid {}: "{}"', column_name,
    CASE column_name WHEN 'DATE' THEN 'date (MM/DD/YYYY)' WHEN 'TIME' THEN 'time (HH:MM:SS)'
      ELSE 'counter (a whole number, not negative)' END,
    regexp_extract(error_message, 'string "(.*)" to', 1))
  ELSE lower(error_type) || ': ' || error_message END`;

/**
 * A row with an empty C/A, UNIT, SCP, DATE, TIME, ENTRIES or EXITS types fine but cannot be
 * loaded (the columns are NOT NULL). Such rows are rare, so the check reads the staged
 * Parquet's few columns and rewrites it only when it finds one; otherwise it is renamed.
 */
async function separateMissingRequired(
  db: DuckDBConnection,
  stagedPath: string,
  parquetPath: string,
  weekRejects: string,
): Promise<void> {
  const required = COLUMNS.filter((c) => c.mode === 'REQUIRED').map((c) => c.name);
  const anyMissing = required.map((name) => `${name} IS NULL`).join(' OR ');
  const staged = `read_parquet(${sqlString(stagedPath)})`;
  const missing = await scalarNumber(db, `SELECT count(*) FROM ${staged} WHERE ${anyMissing}`);
  if (missing === 0) {
    await rename(stagedPath, parquetPath);
    return;
  }
  const missingList = required.map((name) => `CASE WHEN ${name} IS NULL THEN '${name}' END`).join(', ');
  await db.run(`INSERT INTO ${weekRejects}
    SELECT source_line, 'missing required value: ' || concat_ws(', ', ${missingList}), NULL
    FROM ${staged} WHERE ${anyMissing}`);
  await db.run(`COPY (SELECT * FROM ${staged} WHERE NOT (${anyMissing}))
    TO ${sqlString(parquetPath)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)`);
}

/**
 * A last line without a newline is either complete (some real files end so) or a download cut
 * mid-line that still parses: "…,0000001220" cut to "…,000000122" is a valid, wrong counter.
 * Counters are zero-padded to one width, so a last line whose EXITS is shorter than its ENTRIES
 * was cut. Lines with the wrong number of fields are left to the CSV reader's own rejects.
 */
function cutLastLine(
  last: ConvertRequest['unterminatedLastLine'],
): { lineNumber: number; text: string; reason: string } | undefined {
  if (!last) return undefined;
  const fields = last.text.trimEnd().split(',');
  if (fields.length !== MODERN_FIELDS) return undefined;
  const entries = fields[MODERN_FIELDS - 2]?.trim() ?? '';
  const exits = fields[MODERN_FIELDS - 1]?.trim() ?? '';
  if (exits.length >= entries.length) return undefined;
  return {
    lineNumber: last.lineNumber,
    text: last.text.trimEnd(),
    reason: 'the file ends inside this line (no newline, EXITS shorter than ENTRIES): cut-off download',
  };
}

async function scalarNumber(db: DuckDBConnection, sql: string): Promise<number> {
  const reader = await db.runAndReadAll(sql);
  return Number(reader.getRows()[0]?.[0] ?? 0);
}
