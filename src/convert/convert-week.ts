/**
 * Stage 2, convert: the spooled lines of one week to typed Parquet (ZSTD, row groups of 100k),
 * in DuckDB. DuckDB's own CSV reader types every column and stores the rows it cannot type
 * (`store_rejects`) with their errors; those, and rows missing a required value, go to a
 * rejects Parquet file with their source line and reason. Nothing is dropped silently:
 * rows + rejects = the file's non-blank data lines.
 *
 * `convertWeek` dispatches on the file's layout: the modern converter is below, the legacy
 * (pre-2014-10-18) one in legacy-layout.ts; both write the same Parquet and rejects formats.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { ConvertError, oneLine } from '../errors.ts';
import { COLUMNS, duckdbSelectList } from '../schema/turnstile-schema.ts';
import { sqlIdentifier, sqlString } from '../util/sql.ts';
import type { Layout } from './layout.ts';
import { convertLegacy } from './legacy-layout.ts';
import {
  CSV_BUFFER_BYTES,
  READINGS_PARQUET,
  createWeekRejects,
  finishWeek,
  nextConversionId,
  scalarNumber,
} from './week-output.ts';

import type { ConvertRequest, ConvertResult } from './convert-types.ts';

export type { ConvertRequest, ConvertResult };

type LayoutConverter = (request: ConvertRequest) => Promise<ConvertResult>;

/** One converter per layout; a Record, so a new Layout cannot compile without one. */
const CONVERTERS: Record<Layout, LayoutConverter> = { modern: convertModern, legacy: convertLegacy };

/** Layouts this converter reads. */
export const SUPPORTED_LAYOUTS: readonly Layout[] = Object.keys(CONVERTERS) as Layout[];

const MODERN_FIELDS = 11;

// The CSV reader's columns: our line-number prefix, then the source header's own names, so
// DuckDB's reject messages name the field as the file does.
const MODERN_COLUMNS = `{'source_line': 'UBIGINT', 'C/A': 'VARCHAR', 'UNIT': 'VARCHAR', 'SCP': 'VARCHAR',
  'STATION': 'VARCHAR', 'LINENAME': 'VARCHAR', 'DIVISION': 'VARCHAR', 'DATE': 'DATE', 'TIME': 'TIME',
  'DESC': 'VARCHAR', 'ENTRIES': 'UBIGINT', 'EXITS': 'UBIGINT'}`;

export async function convertWeek(request: ConvertRequest): Promise<ConvertResult> {
  const converter = CONVERTERS[request.layout] as LayoutConverter | undefined;
  if (!converter) throw new ConvertError(`${request.sourceFile}: no converter for layout ${request.layout}`);
  const db = request.db;
  // Rows in file order, so the same source converts to byte-identical Parquet: a rerun, or a
  // second run of the week at the same time, writes exactly the objects already in the lake
  // (pipeline/ingest-week.ts, storeOrAdopt; test/concurrency.test.ts fails without it). On one
  // thread, which keeps that order without ordering work: measured on the real week (medians of
  // 7, docs/performance.md), 2 threads keeping file order took 0.42 s and 176 MB, one thread
  // 0.33 s and 151 MB (2 threads in any order: 0.25 s, but the bytes differ run to run). Only
  // while converting: the quality queries and the warehouse load use both threads.
  const threads = await scalarNumber(db, "SELECT current_setting('threads')");
  try {
    await db.run('SET preserve_insertion_order = true');
    await db.run('SET threads = 1');
    return await converter(request);
  } catch (error) {
    if (error instanceof ConvertError) throw error;
    throw new ConvertError(`converting ${request.sourceFile} failed: ${oneLine(error)}`, { cause: error });
  } finally {
    await db.run(`SET threads = ${Math.max(1, Math.trunc(threads))}`).catch(() => undefined);
    await db.run('SET preserve_insertion_order = false').catch(() => undefined);
  }
}

/** The modern layout: a header, then one reading per line in 11 fields. */
async function convertModern(request: ConvertRequest): Promise<ConvertResult> {
  const id = nextConversionId();
  const rejectsTable = sqlIdentifier(`csv_rejects_${id}`);
  let weekRejects: string | undefined;
  const stagedPath = join(request.outDir, 'staged.parquet');
  const parquetPath = join(request.outDir, 'readings.parquet');
  const rejectsPath = join(request.outDir, 'rejects.parquet');
  const db = request.db;
  try {
    const cut = cutLastLine(request.unterminatedLastLine);
    /** A line number from the spool (0: no cut line), so a plain integer in the SQL below. */
    const cutLine = Math.trunc(cut?.lineNumber ?? 0);
    weekRejects = await createWeekRejects(db, id);
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
      entries: inInt64('ENTRIES'),
      exits: inInt64('EXITS'),
      source_file: sqlString(request.sourceFile),
      source_line: 'source_line',
    });
    await db.run(`COPY (
      SELECT ${select}
      FROM read_csv(${sqlString(request.linesPath)}, columns = ${MODERN_COLUMNS},
        header = false, skip = 1, delim = ',', quote = '', escape = '', auto_detect = false,
        dateformat = '%m/%d/%Y', buffer_size = ${CSV_BUFFER_BYTES},
        store_rejects = true, rejects_table = ${sqlString(rejectsTable)}, rejects_scan = ${sqlString(`${rejectsTable}_scan`)})
      WHERE source_line <> ${cutLine}
    ) TO ${sqlString(stagedPath)} ${READINGS_PARQUET}`);
    // The cut line is already a reject: the reader's own error for it (it may not type either)
    // would count the line twice.
    await db.run(`INSERT INTO ${weekRejects}
      SELECT * FROM (${csvRejectsQuery(rejectsTable)}) WHERE source_line <> ${cutLine}`);
    await separateMissingRequired(db, stagedPath, parquetPath, weekRejects, request.linesPath);
    const result = await finishWeek(db, request, weekRejects, parquetPath, rejectsPath);
    // Modern lines name their station themselves: none is looked up, none can be unmatched.
    return { ...result, unmatchedStations: 0 };
  } finally {
    if (weekRejects) await db.run(`DROP TABLE IF EXISTS ${weekRejects}`).catch(() => undefined);
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

/** The largest counter the warehouse holds (BIGINT / INT64). */
const INT64_MAX = 9223372036854775807n;
const COUNTERS = new Set(['entries', 'exits']);

/**
 * A counter as read (UBIGINT: not negative), or NULL above INT64_MAX. Casting such a value to
 * BIGINT would fail the whole week's COPY for one bad line; as NULL, the line becomes a reject
 * with the other rows missing a required value, below.
 */
function inInt64(column: 'ENTRIES' | 'EXITS'): string {
  return `CASE WHEN ${column} <= ${INT64_MAX} THEN ${column} END`;
}

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
  linesPath: string,
): Promise<void> {
  const required = COLUMNS.filter((c) => c.mode === 'REQUIRED').map((c) => c.name);
  const anyMissing = required.map((name) => `${name} IS NULL`).join(' OR ');
  const staged = `read_parquet(${sqlString(stagedPath)})`;
  const missing = await scalarNumber(db, `SELECT count(*) FROM ${staged} WHERE ${anyMissing}`);
  if (missing === 0) {
    await rename(stagedPath, parquetPath);
    return;
  }
  const missingList = required
    .map(
      (name) =>
        `CASE WHEN ${name} IS NULL THEN ${sqlString(COUNTERS.has(name) ? `${name} (empty or above ${INT64_MAX})` : name)} END`,
    )
    .join(', ');
  // The reject keeps its source line's text, as every other does: read back from the spool
  // (whole lines, no quoting or delimiters: the first comma ends our line-number prefix).
  // (A line holding the delimiter byte, 0x01, is skipped and its reject has no text.)
  const spooled = `read_csv(${sqlString(linesPath)}, header = false, delim = chr(1), quote = '', escape = '',
      columns = {'numbered': 'VARCHAR'}, ignore_errors = true)`;
  await db.run(`INSERT INTO ${weekRejects}
    WITH missing AS (
      SELECT source_line, 'missing required value: ' || concat_ws(', ', ${missingList}) AS reason
      FROM ${staged} WHERE ${anyMissing}),
    texts AS (
      SELECT CAST(split_part(numbered, ',', 1) AS BIGINT) AS source_line,
             substr(numbered, strpos(numbered, ',') + 1) AS line
      FROM ${spooled})
    SELECT m.source_line, m.reason, t.line
    FROM missing m LEFT JOIN texts t ON t.source_line = m.source_line`);
  await db.run(`COPY (SELECT * FROM ${staged} WHERE NOT (${anyMissing}))
    TO ${sqlString(parquetPath)} ${READINGS_PARQUET}`);
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
