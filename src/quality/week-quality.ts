/**
 * A week's quality figures, measured in DuckDB on the week's Parquet right after conversion,
 * recorded in the manifest and shown by `status`. These are the things an analyst would
 * otherwise find the hard way: readings twice over, readings from another week, counters that
 * run backwards, and how much of the week is recovered (off-grid) audits.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { IsoDate } from '../dates/drop-dates.ts';
import { sqlString } from '../util/sql.ts';

export interface WeekQuality {
  rows: number;
  rejects: number;
  /** Distinct turnstiles (C/A + UNIT + SCP). */
  turnstiles: number;
  /** Rows repeating the turnstile and reading_at of another row (every copy after the first). */
  duplicateReadings: number;
  /** Readings outside the file's week: before Saturday D-7 00:00 or from Saturday D 00:00 on. */
  outsideWeek: number;
  /** Readings whose entries or exits are lower than the same turnstile's previous reading. */
  countersBackwards: number;
  /** Share of rows that are recovered audits (DESC = RECOVR AUD), 0 to 1. */
  recoveredAuditShare: number;
  /** Readings whose station could not be looked up (legacy files only). */
  unmatchedStations: number;
}

export async function measureWeek(
  db: DuckDBConnection,
  parquetPath: string,
  dropDate: IsoDate,
  counted: { rejects: number; unmatchedStations: number },
): Promise<WeekQuality> {
  const week = `DATE ${sqlString(dropDate)}`;
  // NOT MATERIALIZED: DuckDB materializes a CTE read more than once, and holding every column of
  // the week in memory spilled on a 10x week: 2.27 s and 180 MB (real week 0.108 s) materialized,
  // 1.08 s and 152 MB (0.092 s) read where used (docs/performance.md).
  const reader = await db.runAndReadAll(`
    WITH readings AS NOT MATERIALIZED (SELECT * FROM read_parquet(${sqlString(parquetPath)})),
    stepped AS (
      SELECT entries < lag(entries) OVER turnstile OR exits < lag(exits) OVER turnstile AS backwards
      FROM readings
      WINDOW turnstile AS (PARTITION BY control_area, unit, scp ORDER BY reading_at, source_line)
    )
    SELECT
      (SELECT count(*) FROM readings)::BIGINT,
      (SELECT count(DISTINCT (control_area, unit, scp)) FROM readings)::BIGINT,
      (SELECT count(*) - count(DISTINCT (control_area, unit, scp, reading_at)) FROM readings)::BIGINT,
      (SELECT count(*) FILTER (WHERE reading_at < ${week} - INTERVAL 7 DAY OR reading_at >= ${week}) FROM readings)::BIGINT,
      (SELECT count(*) FILTER (WHERE backwards) FROM stepped)::BIGINT,
      (SELECT coalesce(avg(CASE WHEN description = 'RECOVR AUD' THEN 1.0 ELSE 0.0 END), 0) FROM readings)::DOUBLE`);
  const [rows, turnstiles, duplicates, outside, backwards, recovered] = reader.getRows()[0] ?? [];
  return {
    rows: Number(rows),
    rejects: counted.rejects,
    turnstiles: Number(turnstiles),
    duplicateReadings: Number(duplicates),
    outsideWeek: Number(outside),
    countersBackwards: Number(backwards),
    recoveredAuditShare: Math.round(Number(recovered) * 1e6) / 1e6,
    unmatchedStations: counted.unmatchedStations,
  };
}

/** Why `--strict` refuses a week, or undefined when it passes. */
export function strictFailure(quality: WeekQuality): string | undefined {
  const problems = [
    quality.rejects > 0 ? `${quality.rejects} rejects` : undefined,
    quality.duplicateReadings > 0 ? `${quality.duplicateReadings} duplicate readings` : undefined,
    quality.outsideWeek > 0 ? `${quality.outsideWeek} readings outside the week` : undefined,
  ].filter((p) => p !== undefined);
  return problems.length === 0 ? undefined : `--strict: ${problems.join(', ')}; nothing was stored or loaded`;
}
