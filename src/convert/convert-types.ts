/**
 * What a conversion takes and gives, for every layout's converter (convert-week.ts dispatches,
 * legacy-layout.ts and week-output.ts implement): a module of their own, so the converters do
 * not import the dispatcher that imports them.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { IsoDate } from '../dates/drop-dates.ts';
import type { SpoolReject } from '../fetch/spool.ts';
import type { Layout } from './layout.ts';

export interface ConvertRequest {
  dropDate: IsoDate;
  sourceFile: string;
  layout: Layout;
  /** The spool's numbered lines (`N,<line>`), see fetch/spool.ts. */
  linesPath: string;
  /** The last line, when the file did not end with a newline. */
  unterminatedLastLine?: { lineNumber: number; text: string } | undefined;
  /** Lines the spool did not write to `linesPath` (longer than its limit): rejects as they are. */
  spoolRejects?: readonly SpoolReject[] | undefined;
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
  /**
   * Readings whose station the Remote-Booth-Station table does not know (legacy files, whose
   * station, line_name and division are then NULL); modern files name their station: 0.
   */
  unmatchedStations?: number;
}
