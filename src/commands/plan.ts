/**
 * `mta-ingest plan`: what a run with the same arguments would do, from the lake's manifests
 * and the warehouse's load records. Fetches nothing and writes nothing.
 */
import { resolveDropDates, type DropDateSelection, type IsoDate } from '../dates/drop-dates.ts';
import type { Config } from '../config.ts';
import { withReadOnlyBackends } from './read-only-backends.ts';
import type { BackendOverrides } from '../backends.ts';
import { weekKeys } from '../lake/lake-layout.ts';
import { parseManifest } from '../manifest/manifest.ts';
import { sourceUrlFor } from '../pipeline/ingest-week.ts';
import { shareOf, type TaskShare } from '../dates/shard.ts';

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
}

export interface PlanOptions {
  selection: DropDateSelection;
  force: boolean;
  config: Config;
  now: Date;
  overrides?: BackendOverrides | undefined;
  /** Plan only this task's share of the dates, as `run` with the same share would take. */
  share?: TaskShare | undefined;
}

export async function planCommand(options: PlanOptions): Promise<PlannedWeek[]> {
  const selected = resolveDropDates(options.selection, options.now);
  const dates = options.share ? shareOf(selected, options.share) : selected;
  return withReadOnlyBackends(
    options.config,
    async (lake, warehouse) => {
      const weeks: PlannedWeek[] = [];
      for (const date of dates) {
        const keys = weekKeys(date);
        const text = await lake.getText(keys.manifest);
        const manifest = text === undefined ? undefined : parseManifest(text, lake.uriOf(keys.manifest));
        const record = await warehouse.loadedWeek(date, manifest?.load);
        const inWarehouse = manifest !== undefined && record?.sourceSha256 === manifest.source.sha256;
        const state: PlannedState = inWarehouse ? 'loaded' : manifest ? 'stored, not loaded' : 'not stored';
        weeks.push({
          dropDate: date,
          sourceUrl: sourceUrlFor(options.config.sourceUrl, date),
          state,
          action:
            options.force || state === 'not stored'
              ? 'fetch, convert, store, load'
              : state === 'loaded'
                ? 'check source, skip if unchanged'
                : 'load from lake',
          objects: {
            raw: lake.uriOf(keys.raw),
            parquet: lake.uriOf(keys.parquet),
            rejects: lake.uriOf(keys.rejects),
            manifest: lake.uriOf(keys.manifest),
          },
          rows: manifest?.rows,
          sourceSha256: manifest?.source.sha256,
        });
      }
      return weeks;
    },
    options.overrides,
  );
}
