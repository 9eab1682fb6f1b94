/**
 * The one owner of the `turnstile_readings` schema. The DuckDB DDL, the Parquet the converter
 * writes (through `duckdbSelectList`), the BigQuery schema (`bigquerySchema`) and the terraform
 * table (scripts/write-terraform-schema.ts) all come from `COLUMNS`, so a column cannot drift between them.
 */

export const TABLE_NAME = 'turnstile_readings';

/** Logical types, named as BigQuery names them (the production warehouse). */
export type LogicalType = 'DATE' | 'STRING' | 'DATETIME' | 'INT64';

export interface Column {
  readonly name: string;
  readonly type: LogicalType;
  /** REQUIRED columns are NOT NULL in every backend; a source row lacking one is a reject. */
  readonly mode: 'REQUIRED' | 'NULLABLE';
  readonly description: string;
}

export const COLUMNS: readonly Column[] = [
  { name: 'drop_date', type: 'DATE', mode: 'REQUIRED', description: "The file's drop date (partition)." },
  { name: 'control_area', type: 'STRING', mode: 'REQUIRED', description: 'C/A: the control area (booth).' },
  { name: 'unit', type: 'STRING', mode: 'REQUIRED', description: "UNIT: the station's remote unit." },
  { name: 'scp', type: 'STRING', mode: 'REQUIRED', description: 'SCP: the turnstile within the unit.' },
  { name: 'station', type: 'STRING', mode: 'NULLABLE', description: 'STATION name.' },
  { name: 'line_name', type: 'STRING', mode: 'NULLABLE', description: 'LINENAME: the lines served.' },
  { name: 'division', type: 'STRING', mode: 'NULLABLE', description: 'DIVISION: BMT, IND, IRT, ...' },
  {
    name: 'reading_at',
    type: 'DATETIME',
    mode: 'REQUIRED',
    description: 'DATE + TIME of the reading, New York civil time, no zone.',
  },
  { name: 'description', type: 'STRING', mode: 'NULLABLE', description: 'DESC: REGULAR or RECOVR AUD.' },
  { name: 'entries', type: 'INT64', mode: 'REQUIRED', description: 'ENTRIES: cumulative entry counter.' },
  { name: 'exits', type: 'INT64', mode: 'REQUIRED', description: 'EXITS: cumulative exit counter.' },
  { name: 'source_file', type: 'STRING', mode: 'REQUIRED', description: 'e.g. turnstile_230603.txt' },
  { name: 'source_line', type: 'INT64', mode: 'REQUIRED', description: 'Line number in the source file.' },
];

/** BigQuery partitions on this column (DAY); every load replaces exactly one of its values. */
export const PARTITION_COLUMN = 'drop_date';
/** BigQuery clusters on these columns, in this order. */
export const CLUSTER_COLUMNS: readonly string[] = ['station', 'unit', 'scp'];

const DUCKDB_TYPES: Record<LogicalType, string> = {
  DATE: 'DATE',
  STRING: 'VARCHAR',
  DATETIME: 'TIMESTAMP',
  INT64: 'BIGINT',
};

export function duckdbType(type: LogicalType): string {
  return DUCKDB_TYPES[type];
}

/** `CREATE TABLE IF NOT EXISTS` for the readings table in DuckDB. */
export function duckdbCreateTable(table = TABLE_NAME): string {
  const columns = COLUMNS.map(
    (c) => `  ${c.name} ${duckdbType(c.type)}${c.mode === 'REQUIRED' ? ' NOT NULL' : ''}`,
  );
  return `CREATE TABLE IF NOT EXISTS ${table} (\n${columns.join(',\n')}\n)`;
}

/**
 * The converter's final SELECT list: every column cast to its declared type, in schema order,
 * so the Parquet file's columns and types are exactly the table's. `expressions` gives the
 * SQL expression for each column name.
 */
export function duckdbSelectList(expressions: Record<string, string>): string {
  return COLUMNS.map((c) => {
    const expression = expressions[c.name];
    if (expression === undefined) throw new Error(`no expression for column ${c.name}`);
    return `CAST(${expression} AS ${duckdbType(c.type)}) AS ${c.name}`;
  }).join(',\n  ');
}

/** A BigQuery table field, as the REST API and the client library take it. */
export interface BigQueryField {
  name: string;
  type: string;
  mode: 'REQUIRED' | 'NULLABLE';
  description: string;
}

/**
 * The BigQuery schema of the readings table: every field NULLABLE, because a load job accepts a
 * Parquet file only when each column's repetition matches its field's mode, and DuckDB writes
 * every column OPTIONAL (checked with parquet_schema on DuckDB 1.5.6, NOT NULL columns
 * included). The evidence (docs/google-cloud.md, "Parquet modes"): an OPTIONAL column into a
 * REQUIRED field fails ("Field x has changed mode from REQUIRED to NULLABLE",
 * googleapis/google-cloud-python#8093, #8305), and so does a REQUIRED column into a NULLABLE
 * field (googleapis/java-bigquery#13); one 2024 report (googleapis/python-bigquery#1981) says an
 * explicit REQUIRED schema accepts OPTIONAL columns, which the older reports contradict, so the
 * worker does not depend on it. The REQUIRED contract still holds: the converter turns a row
 * lacking such a value into a reject, DuckDB declares the columns NOT NULL, and the field's
 * description says so.
 */
export function bigquerySchema(): { fields: BigQueryField[] } {
  return {
    fields: COLUMNS.map((c) => ({
      name: c.name,
      type: c.type,
      mode: 'NULLABLE',
      description:
        c.mode === 'REQUIRED' ? `${c.description} Never NULL (rows without it are rejects).` : c.description,
    })),
  };
}

// BigQuery reports some standard SQL types by their legacy names (INT64 as INTEGER).
const BIGQUERY_TYPE_ALIASES: Record<string, string> = { INTEGER: 'INT64', FLOAT: 'FLOAT64', BOOLEAN: 'BOOL' };

/**
 * How an existing BigQuery table's fields differ from the schema, one phrase per difference
 * (empty when they match). A REQUIRED field is not a difference: `requiredFields` names them,
 * for the worker to relax (REQUIRED to NULLABLE is the one mode change BigQuery allows).
 */
export function bigquerySchemaDifferences(
  fields: readonly { name?: string; type?: string; mode?: string }[],
): string[] {
  const differences: string[] = [];
  const byName = new Map(fields.map((f) => [String(f.name), f]));
  for (const column of COLUMNS) {
    const field = byName.get(column.name);
    if (!field) {
      differences.push(`column ${column.name} is missing`);
      continue;
    }
    const type = String(field.type ?? '').toUpperCase();
    if ((BIGQUERY_TYPE_ALIASES[type] ?? type) !== column.type) {
      differences.push(`${column.name} is ${type}, expected ${column.type}`);
    }
    const mode = String(field.mode ?? 'NULLABLE').toUpperCase();
    // REQUIRED (a table made by an earlier version) is relaxed by ensureTable, not refused.
    if (mode !== 'NULLABLE' && mode !== 'REQUIRED')
      differences.push(`${column.name} is ${mode}, expected NULLABLE`);
    byName.delete(column.name);
  }
  for (const name of byName.keys()) differences.push(`unexpected column ${name}`);
  return differences;
}

/** The fields of an existing table that are REQUIRED (made so by an earlier version), to relax. */
export function requiredFields(fields: readonly { name?: string; mode?: string }[]): string[] {
  return fields.filter((f) => String(f.mode ?? '').toUpperCase() === 'REQUIRED').map((f) => String(f.name));
}
