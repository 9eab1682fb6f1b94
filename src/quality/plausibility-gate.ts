/**
 * The plausibility gate: before a fetched week replaces the current version or is loaded, it is
 * checked against itself and its history. HTTP cannot prove that a body ended by a closed
 * connection is whole, a server can serve another week's file under this week's name, and a
 * re-published file can be much shorter: each of these loaded silently before the gate.
 *
 * A week that fails is *suspect*: kept in the lake beside the current version, not loaded,
 * reported with the reasons, until it is accepted (`--accept DATE`, or `--force`).
 *
 * Thresholds, from the real weeks in the shared data (README "Reliability"):
 * - the real week 2023-06-03 has 253,237 rows, 5,043 turnstiles, covers 724 of the 768 booths
 *   of the Remote-Booth-Station table (94%), 5,034 turnstiles (99.8%) read on its last day, and
 *   no reading outside the week; MTA weeks run 245,000 to 255,000 rows (±2%);
 * - its first half, cut on a line boundary, covers 420 booths (55%) and has 126,618 rows (50%);
 *   since the file is ordered by booth, every remaining turnstile keeps its full week, so only
 *   the booth or row count can tell;
 * - another week's file has every reading outside the week.
 * So: rows within 0.85x to 1.15x of the reference (7x the normal spread), turnstiles at least
 * 0.9x, booths at least 80% of the table when there is no history, at least half of the
 * turnstiles reading on the last day, and at most 1% of readings outside the week.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { IsoDate } from '../dates/drop-dates.ts';
import { sqlString } from '../util/sql.ts';
import { REMOTE_BOOTH_STATION_CSV } from '../convert/remote-booth-station.ts';

/** What the gate measures of a week (recorded in its manifest). */
export interface WeekFigures {
  rows: number;
  turnstiles: number;
  /** Distinct (C/A, UNIT) pairs of the week found in the Remote-Booth-Station table. */
  boothsKnown: number;
  /** Pairs in the table. */
  boothsInTable: number;
  /** Turnstiles with a reading on the week's last day (Friday D-1). */
  lastDayTurnstiles: number;
  /** Readings before Saturday D-7 or from Saturday D on. */
  outsideWeek: number;
  /** Counter sums, as decimal strings (exact: they can pass 2^53 on large weeks). */
  entriesSum: string;
  exitsSum: string;
}

export const THRESHOLDS = {
  minRowsRatio: 0.85,
  maxRowsRatio: 1.15,
  minTurnstilesRatio: 0.9,
  minBoothShare: 0.8,
  minLastDayShare: 0.5,
  maxOutsideShare: 0.01,
} as const;

/** What the week is compared with. */
export interface WeekHistory {
  /** The current version of this week, if it passed the gate itself. */
  current?: { sha256: string; rows: number; turnstiles: number } | undefined;
  /** Earlier weeks already loaded (their figures), most recent first. */
  recent: { dropDate: IsoDate; rows: number; turnstiles: number }[];
}

export interface GateVerdict {
  /** `passed`: plausible; `suspect`: held back; `accepted`: suspect but loaded on request. */
  verdict: 'passed' | 'suspect' | 'accepted';
  /** Why it is suspect (empty when it passed). */
  reasons: string[];
  /** What the counts were compared with. */
  reference: 'current version' | 'recent weeks' | 'station table';
  figures: WeekFigures;
}

export async function measureFigures(
  db: DuckDBConnection,
  parquetPath: string,
  dropDate: IsoDate,
): Promise<WeekFigures> {
  const week = `DATE ${sqlString(dropDate)}`;
  // Read where used, not materialized (as week-quality.ts, for the same reason).
  const reader = await db.runAndReadAll(`
    WITH readings AS NOT MATERIALIZED (SELECT control_area, unit, scp, reading_at, entries, exits FROM read_parquet(${sqlString(parquetPath)})),
    booths AS (
      SELECT DISTINCT trim(Remote) AS unit, trim(Booth) AS control_area
      FROM read_csv(${sqlString(REMOTE_BOOTH_STATION_CSV)}, header = true, all_varchar = true, auto_detect = false,
        columns = {'Remote': 'VARCHAR', 'Booth': 'VARCHAR', 'Station': 'VARCHAR', 'Line Name': 'VARCHAR', 'Division': 'VARCHAR'})
    )
    SELECT
      count(*)::BIGINT,
      count(DISTINCT (control_area, unit, scp))::BIGINT,
      (SELECT count(*) FROM (SELECT DISTINCT control_area, unit FROM readings) r
         JOIN booths b ON b.unit = r.unit AND b.control_area = r.control_area)::BIGINT,
      (SELECT count(*) FROM booths)::BIGINT,
      count(DISTINCT (control_area, unit, scp)) FILTER (
        WHERE reading_at >= ${week} - INTERVAL 1 DAY AND reading_at < ${week})::BIGINT,
      count(*) FILTER (WHERE reading_at < ${week} - INTERVAL 7 DAY OR reading_at >= ${week})::BIGINT,
      coalesce(sum(entries), 0)::VARCHAR,
      coalesce(sum(exits), 0)::VARCHAR
    FROM readings`);
  const [rows, turnstiles, known, inTable, lastDay, outside, entries, exits] = reader.getRows()[0] ?? [];
  return {
    rows: Number(rows),
    turnstiles: Number(turnstiles),
    boothsKnown: Number(known),
    boothsInTable: Number(inTable),
    lastDayTurnstiles: Number(lastDay),
    outsideWeek: Number(outside),
    entriesSum: String(entries),
    exitsSum: String(exits),
  };
}

/** The gate's verdict on a week's figures, given its history. */
export function judgeWeek(figures: WeekFigures, history: WeekHistory, accepted: boolean): GateVerdict {
  const reasons: string[] = [];
  const t = THRESHOLDS;
  const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;
  if (figures.rows === 0) reasons.push('the week has no readings');
  const outsideShare = figures.rows === 0 ? 0 : figures.outsideWeek / figures.rows;
  if (outsideShare > t.maxOutsideShare) {
    reasons.push(
      `${pct(outsideShare)} of readings fall outside the week (at most ${pct(t.maxOutsideShare)})`,
    );
  }
  const lastDayShare = figures.turnstiles === 0 ? 0 : figures.lastDayTurnstiles / figures.turnstiles;
  if (figures.rows > 0 && lastDayShare < t.minLastDayShare) {
    reasons.push(
      `only ${pct(lastDayShare)} of turnstiles read on the week's last day (at least ${pct(t.minLastDayShare)})`,
    );
  }
  let reference: GateVerdict['reference'];
  const base = history.current ?? median(history.recent);
  if (base !== undefined) {
    reference = history.current ? 'current version' : 'recent weeks';
    const rowsRatio = figures.rows / base.rows;
    if (rowsRatio < t.minRowsRatio || rowsRatio > t.maxRowsRatio) {
      reasons.push(
        `${figures.rows} rows against ${base.rows} in the ${reference} (${rowsRatio.toFixed(2)}x; ${t.minRowsRatio}x to ${t.maxRowsRatio}x expected)`,
      );
    }
    const turnstileRatio = figures.turnstiles / base.turnstiles;
    if (turnstileRatio < t.minTurnstilesRatio) {
      reasons.push(
        `${figures.turnstiles} turnstiles against ${base.turnstiles} in the ${reference} (at least ${t.minTurnstilesRatio}x expected)`,
      );
    }
  } else {
    reference = 'station table';
    const share = figures.boothsInTable === 0 ? 0 : figures.boothsKnown / figures.boothsInTable;
    if (share < t.minBoothShare) {
      reasons.push(
        `covers ${figures.boothsKnown} of the ${figures.boothsInTable} booths of the Remote-Booth-Station table (${pct(share)}; at least ${pct(t.minBoothShare)} expected)`,
      );
    }
  }
  const verdict = reasons.length === 0 ? 'passed' : accepted ? 'accepted' : 'suspect';
  return { verdict, reasons, reference, figures };
}

/** The median week of the recent ones (by rows), or undefined when there are none. */
function median(weeks: WeekHistory['recent']): { rows: number; turnstiles: number } | undefined {
  if (weeks.length === 0) return undefined;
  const sorted = [...weeks].sort((a, b) => a.rows - b.rows);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}
