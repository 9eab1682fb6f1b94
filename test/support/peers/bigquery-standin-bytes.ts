/**
 * totalBytesProcessed as BigQuery's on-demand pricing counts it, for the stand-in's queries:
 * "Data size calculation" (https://cloud.google.com/bigquery/pricing#data) and "On-demand query
 * size calculation" (https://cloud.google.com/bigquery/docs/estimate-costs#on-demand_query_size_calculation).
 * Per value: INT64, FLOAT64, DATE, DATETIME, TIMESTAMP, TIME 8 bytes; NUMERIC 16; BIGNUMERIC 32;
 * BOOL 1; STRING and BYTES 2 + their length in bytes (UTF-8); NULL 0. Only the columns the query
 * references (anywhere: SELECT, WHERE, JOIN, ...), of the partitions it reads.
 *
 * Approximations: columns are those sqlglot resolves (bigquery_sql.py; a statement it cannot
 * qualify counts every column of each table read); partitions are pruned only when a top-level
 * conjunct of the WHERE of the scope that reads the table pins the DAY partitioning column to
 * constants (=, IN, BETWEEN), not through a view or a subquery's outer filter; a view counts what
 * its whole query reads; no 10 MB minimum per table (that is billing, not bytes processed); an
 * INSERT ... VALUES reads nothing (0).
 */
import type { Read } from './bigquery-standin-transpiler.ts';

const FIXED_BYTES: Record<string, number> = {
  INTEGER: 8, INT64: 8, FLOAT: 8, FLOAT64: 8, DATE: 8, DATETIME: 8, TIMESTAMP: 8, TIME: 8,
  NUMERIC: 16, BIGNUMERIC: 32, BOOLEAN: 1, BOOL: 1,
}; // prettier-ignore

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * DuckDB SQL that sums one read's bytes over the table `qualifiedTable`, given the columns'
 * BigQuery types and the table's DAY partitioning field; undefined when it references no column.
 */
export function bytesSql(
  read: Read,
  qualifiedTable: string,
  types: Record<string, string>,
  partitionField: string | undefined,
): string | undefined {
  const sizes = read.columns.map((name) => {
    const type = String(types[name]).toUpperCase();
    // strlen counts a VARCHAR's bytes (UTF-8); octet_length a BLOB's.
    const length = type === 'BYTES' ? 'octet_length' : 'strlen';
    const size = FIXED_BYTES[type] ?? (/^(STRING|BYTES)$/.test(type) ? `2 + ${length}(${quote(name)})` : 8);
    return `(CASE WHEN ${quote(name)} IS NULL THEN 0 ELSE ${size} END)`;
  });
  if (sizes.length === 0) return undefined;
  // Days come from the query's literals: used only when they are plain dates.
  const days = read.days?.every(([lo, hi]) => DAY.test(lo) && DAY.test(hi)) ? read.days : null;
  const pinned = (field: string) =>
    days!
      .map(([lo, hi]) => `CAST(${quote(field)} AS DATE) BETWEEN DATE '${lo}' AND DATE '${hi}'`)
      .join(' OR ') || 'false';
  const where = partitionField && days ? ` WHERE ${pinned(partitionField)}` : '';
  return `SELECT CAST(COALESCE(SUM(${sizes.join(' + ')}), 0) AS BIGINT) FROM ${qualifiedTable}${where}`;
}
