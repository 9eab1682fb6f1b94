/**
 * The report's query: a week's busiest stations by entries, summed over the interval view's
 * turnstile intervals, written once for both dialects so that DuckDB and BigQuery answer with
 * the same rows in the same order (every sort key spelled out: BigQuery sorts NULLs first in
 * ascending order, DuckDB last).
 */
import type { SqlDialect } from './intervals-view.ts';

/**
 * `view` is the interval view as the dialect names it. The drop date is a parameter (`$1` in
 * DuckDB, `@drop_date` in BigQuery); `limit` is a validated whole number, written as a literal
 * (BigQuery's LIMIT takes a constant).
 */
export function topStationsQuery(dialect: SqlDialect, view: string, limit: number): string {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`limit ${limit} is not a whole number`);
  const dropDate = dialect === 'duckdb' ? '$1::DATE' : '@drop_date';
  return `SELECT station, line_name, SUM(entries) AS entries, SUM(exits) AS exits,
  COUNT(DISTINCT CONCAT(control_area, '|', unit, '|', scp)) AS turnstiles
FROM ${view}
WHERE drop_date = ${dropDate}
GROUP BY station, line_name
ORDER BY SUM(entries) DESC NULLS LAST, station ASC NULLS LAST, line_name ASC NULLS LAST
LIMIT ${limit}`;
}
