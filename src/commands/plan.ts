/**
 * `mta-ingest plan`: what a run with the same arguments would do, from the lake's manifests
 * and the warehouse's load records. Fetches no week's file (a run with no date selection reads
 * the MTA's index page, as the run would) and writes nothing.
 */
import { sourceUrlFor, type DropDateSelection, type IsoDate } from '../dates/drop-dates.ts';
import { resolveSelection } from '../dates/selection.ts';
import type { Config } from '../config.ts';
import { withReadOnlyBackends } from './read-only-backends.ts';
import type { BackendOverrides } from '../backends.ts';
import { tmpdir } from 'node:os';
import { WeekStore } from '../lake/week-store.ts';
import { createLogger } from '../log.ts';
import { assessWeek, type WeekNeed } from '../pipeline/week-decision.ts';
import type { TaskShare } from '../dates/shard.ts';
import { refuseMissingWithForce, selectWeeks, type SelectionNote } from './week-selection.ts';

export type PlannedState = 'loaded' | 'stored, not loaded' | 'not stored';

export interface PlannedWeek {
  dropDate: IsoDate;
  sourceUrl: string;
  state: PlannedState;
  /** What a run does: confirm the source is unchanged, load from the lake, or fetch and load. */
  action: 'check source, skip if unchanged' | 'load from lake' | 'fetch, convert, store, load';
  objects: { raw: string; parquet: string; rejects: string; manifest: string };
  rows?: number | undefined;
  sourceSha256?: string | undefined;
  /** How the stores differ from the manifest (what a run would heal). */
  problems: string[];
}

const ACTIONS: Record<WeekNeed, PlannedWeek['action']> = {
  nothing: 'check source, skip if unchanged',
  'load from lake': 'load from lake',
  fetch: 'fetch, convert, store, load',
};

/** plan writes nothing and logs nothing. */
const noLog = createLogger('silent');

export interface PlanOptions {
  selection: DropDateSelection;
  force: boolean;
  /** Plan as for `run --missing`: only the weeks the warehouse does not hold. */
  missing?: boolean | undefined;
  config: Config;
  now: Date;
  overrides?: BackendOverrides | undefined;
  /** The command's stop (SIGINT/SIGTERM): waits and DuckDB queries end at once. */
  signal?: AbortSignal | undefined;
  /** Plan only this task's share of the dates, as `run` with the same share would take. */
  share?: TaskShare | undefined;
  /** Lines about the selection, as the run would log them (catch-up, its bound, the index page). */
  onNote?: ((note: SelectionNote) => void) | undefined;
}

export async function planCommand(options: PlanOptions): Promise<PlannedWeek[]> {
  const selected = resolveSelection(options.selection, options.now);
  refuseMissingWithForce(options.missing, options.force);
  // The weeks the run would take (catch-up, --missing), from the same stores and index page.
  const { dates, notes } = await selectWeeks({ ...options, resolved: selected });
  for (const note of notes) options.onNote?.(note);
  return withReadOnlyBackends(
    options.config,
    async (lake, warehouse) => {
      const weeks: PlannedWeek[] = [];
      for (const date of dates) {
        const store = new WeekStore(lake, date, noLog, tmpdir());
        const { keys } = store;
        // The same decision a run makes (pipeline/week-decision.ts), from the same stores.
        const assessed = await assessWeek(store, warehouse, date, options.force);
        const { manifest } = assessed;
        const state: PlannedState =
          manifest === undefined
            ? 'not stored'
            : assessed.warehouseProblems.length === 0
              ? 'loaded'
              : 'stored, not loaded';
        weeks.push({
          dropDate: date,
          sourceUrl: sourceUrlFor(options.config.sourceUrl, date),
          state,
          action: ACTIONS[assessed.need],
          objects: {
            raw: lake.uriOf(keys.raw),
            parquet: lake.uriOf(keys.parquet),
            rejects: lake.uriOf(keys.rejects),
            manifest: lake.uriOf(keys.manifest),
          },
          rows: manifest?.rows,
          sourceSha256: manifest?.source.sha256,
          problems: [...assessed.lakeProblems, ...(manifest ? assessed.warehouseProblems : [])],
        });
      }
      return weeks;
    },
    options.overrides,
    options.signal,
  );
}
