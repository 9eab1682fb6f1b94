/**
 * The view `turnstile_intervals`: per turnstile, the entries and exits since its previous
 * reading, across week boundaries. This is the number analysts want (the counters themselves
 * are cumulative and meaningless alone), computed once, the same way in DuckDB and BigQuery.
 *
 * A step below zero (a counter reset, or running backwards) or above the cap is NULL, with a
 * flag saying which. The cap is one passage per second of the interval, and never below one
 * regular 4-hour audit interval: a turnstile physically cannot pass more, so anything above
 * is a counter jump, not riders.
 */
import { TABLE_NAME } from '../schema/turnstile-schema.ts';

export const INTERVALS_VIEW = 'turnstile_intervals';

/** The cap for an interval of `seconds`: one passage per second, at least 4 hours' worth. */
export const MIN_CAP = 4 * 3600;

export type SqlDialect = 'duckdb' | 'bigquery';

const SECONDS_BETWEEN: Record<SqlDialect, (from: string, to: string) => string> = {
  duckdb: (from, to) => `date_diff('second', ${from}, ${to})`,
  bigquery: (from, to) => `DATETIME_DIFF(${to}, ${from}, SECOND)`,
};

/** The view's query; `readingsTable` is the readings table as the dialect names it. */
export function intervalsViewQuery(dialect: SqlDialect, readingsTable = TABLE_NAME): string {
  const seconds = SECONDS_BETWEEN[dialect]('previous_reading_at', 'reading_at');
  const value = (step: string) => `CASE WHEN ${step} BETWEEN 0 AND cap THEN ${step} END`;
  const flag = (step: string) => `CASE WHEN ${step} < 0 THEN 'backwards' WHEN ${step} > cap THEN 'jump' END`;
  return `WITH steps AS (
  SELECT drop_date, control_area, unit, scp, station, line_name, division, reading_at, description,
    LAG(reading_at) OVER turnstile AS previous_reading_at,
    entries - LAG(entries) OVER turnstile AS entries_step,
    exits - LAG(exits) OVER turnstile AS exits_step
  FROM ${readingsTable}
  WINDOW turnstile AS (PARTITION BY control_area, unit, scp ORDER BY reading_at, drop_date, source_line)
),
capped AS (
  SELECT *, GREATEST(${MIN_CAP}, ${seconds}) AS cap
  FROM steps
  WHERE previous_reading_at IS NOT NULL
)
SELECT drop_date, control_area, unit, scp, station, line_name, division, previous_reading_at, reading_at, description,
  ${value('entries_step')} AS entries,
  ${value('exits_step')} AS exits,
  ${flag('entries_step')} AS entries_flag,
  ${flag('exits_step')} AS exits_flag
FROM capped`;
}
