/**
 * DuckDB tables for the BigQuery stand-in's tables (bigquery-standin-sql.ts): column types from
 * the table resource's schema fields, and quoting. STRING→VARCHAR, INTEGER/INT64→BIGINT,
 * FLOAT/FLOAT64→DOUBLE, BOOLEAN/BOOL→BOOLEAN, DATE→DATE, DATETIME→TIMESTAMP, TIMESTAMP→TIMESTAMPTZ,
 * NUMERIC→DECIMAL(38,9) (BigQuery's precision and scale), BIGNUMERIC→DECIMAL(38,9) too: DuckDB's
 * widest decimal, narrower than BIGNUMERIC's 76 digits and 38 decimals, so values beyond 29
 * integer digits or 9 decimals are refused (or rounded) here where BigQuery takes them; BYTES→BLOB;
 * TIME→TIME; anything else (RECORD, JSON, GEOGRAPHY) VARCHAR. Mode REQUIRED→NOT NULL, REPEATED→a list.
 */
import type { TableResource } from './bigquery-standin-types.ts';

const COLUMN_TYPES: Record<string, string> = {
  STRING: 'VARCHAR',
  INTEGER: 'BIGINT',
  INT64: 'BIGINT',
  FLOAT: 'DOUBLE',
  FLOAT64: 'DOUBLE',
  BOOLEAN: 'BOOLEAN',
  BOOL: 'BOOLEAN',
  DATE: 'DATE',
  DATETIME: 'TIMESTAMP',
  TIMESTAMP: 'TIMESTAMPTZ',
  NUMERIC: 'DECIMAL(38,9)',
  BIGNUMERIC: 'DECIMAL(38,9)',
  BYTES: 'BLOB',
  TIME: 'TIME',
};

/** A DuckDB identifier, quoted. */
export const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;
/** `project.dataset.table` as DuckDB's "project"."dataset"."table". */
export const qualified = (key: string): string => key.split('.').map(quote).join('.');
/** A DuckDB string literal. */
export const literal = (text: string): string => `'${text.replaceAll("'", "''")}'`;

/** The column definitions of a table resource's schema, for CREATE TABLE. */
export function columnDefinitions(resource: TableResource): string[] {
  return (resource.schema?.fields ?? []).map((f) => {
    const type = COLUMN_TYPES[String(f.type).toUpperCase()] ?? 'VARCHAR';
    const repeated = f.mode === 'REPEATED' ? '[]' : '';
    return `${quote(String(f.name))} ${type}${repeated}${f.mode === 'REQUIRED' ? ' NOT NULL' : ''}`;
  });
}
