/**
 * The MTA's Remote-Booth-Station table: legacy lines carry only C/A (booth) and UNIT (remote),
 * so this table is how their readings get a station, line name and division. A copy ships in
 * the package (src/reference/) so a run never depends on anything outside it.
 */
import { fileURLToPath } from 'node:url';
import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlIdentifier, sqlString } from '../util/sql.ts';

/** The shipped copy: UTF-8 with a BOM, CRLF, columns Remote,Booth,Station,Line Name,Division. */
export const REMOTE_BOOTH_STATION_CSV = fileURLToPath(
  new URL('../reference/remote-booth-station.csv', import.meta.url),
);

// Explicit columns and header = true: the header line (BOM and all) is skipped, never sniffed.
const COLUMNS = `{'Remote': 'VARCHAR', 'Booth': 'VARCHAR', 'Station': 'VARCHAR', 'Line Name': 'VARCHAR', 'Division': 'VARCHAR'}`;

/**
 * Loads the table into a temp table `name` (remote, booth, station, line_name, division), one
 * row per (remote, booth) so the join can never multiply a reading. The shipped table has no
 * duplicate pair (a test checks it); should a future copy have one, the row whose
 * (station, line_name, division) sorts first wins: deterministic whatever order DuckDB reads
 * the file in (insertion order is not preserved on this engine).
 */
export async function loadRemoteBoothStation(
  db: DuckDBConnection,
  name: string,
  path: string = REMOTE_BOOTH_STATION_CSV,
): Promise<void> {
  await db.run(`CREATE TEMP TABLE ${sqlIdentifier(name)} AS
    SELECT DISTINCT ON (remote, booth) remote, booth, station, line_name, division
    FROM (
      SELECT trim(Remote) AS remote, trim(Booth) AS booth, NULLIF(trim(Station), '') AS station,
             NULLIF(trim("Line Name"), '') AS line_name, NULLIF(trim(Division), '') AS division
      FROM read_csv(${sqlString(path)}, columns = ${COLUMNS}, header = true, delim = ',',
        quote = '"', escape = '"', auto_detect = false)
    )
    WHERE remote <> '' AND booth <> ''
    ORDER BY remote, booth, station NULLS LAST, line_name NULLS LAST, division NULLS LAST`);
}
