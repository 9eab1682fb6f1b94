/**
 * `mta-ingest status`: the weeks the lake holds (from their manifests) and whether the
 * warehouse holds the same source version. Writes nothing.
 */
import type { IsoDate } from '../dates/drop-dates.ts';
import type { Config } from '../config.ts';
import { withReadOnlyBackends } from './read-only-backends.ts';
import type { BackendOverrides } from '../backends.ts';
import { MANIFEST_PREFIX, dateOfManifestKey } from '../lake/lake-layout.ts';
import { parseManifest } from '../manifest/manifest.ts';
import { VERSIONS_PREFIX } from '../lake/week-store.ts';
import { warehouseDrift } from '../pipeline/week-decision.ts';
import type { WeekQuality } from '../quality/week-quality.ts';

export interface WeekStatus {
  dropDate: IsoDate;
  /** From the manifest (undefined for a week the warehouse holds without one). */
  rows: number | undefined;
  rejects: number | undefined;
  sourceBytes: number | undefined;
  sourceSha256: string | undefined;
  /** `drift`: the warehouse's rows for the week differ from the manifest (see `verify`). */
  warehouse: 'loaded' | 'not loaded' | 'other version' | 'drift' | 'loaded, no manifest';
  loadedAt: string | undefined;
  manifestUri: string | undefined;
  /** The week's quality figures, from its manifest. */
  quality: WeekQuality | undefined;
  /** The gate's reasons for the latest version held back as suspect, if one is pending. */
  suspect: string[] | undefined;
}

export async function statusCommand(options: {
  config: Config;
  overrides?: BackendOverrides | undefined;
  /** The command's stop (SIGINT/SIGTERM): waits and DuckDB queries end at once. */
  signal?: AbortSignal | undefined;
}): Promise<WeekStatus[]> {
  return withReadOnlyBackends(
    options.config,
    async (lake, warehouse) => {
      // One read of the load state for all weeks where the warehouse can list it (one query job
      // on BigQuery rather than one per week).
      const listed = warehouse.capabilities.listsWeeks ? await warehouse.listLoadedWeeks() : undefined;
      const records = new Map(listed?.map((record) => [record.dropDate, record]));
      const weeks = new Map<IsoDate, WeekStatus>();
      for (const key of await lake.list(MANIFEST_PREFIX)) {
        const date = dateOfManifestKey(key);
        const text = date === undefined ? undefined : await lake.getText(key);
        if (date === undefined || text === undefined) continue;
        const manifest = parseManifest(text, lake.uriOf(key));
        const record = listed ? records.get(date) : await warehouse.loadedWeek(date);
        const drift = await warehouseDrift(warehouse, date, manifest, record);
        const pending = manifest.history?.filter((entry) => entry.outcome === 'suspect').at(-1);
        weeks.set(date, {
          dropDate: date,
          rows: manifest.rows,
          rejects: manifest.rejects,
          sourceBytes: manifest.source.bytes,
          sourceSha256: manifest.source.sha256,
          warehouse: !record
            ? 'not loaded'
            : record.sourceSha256 !== manifest.source.sha256
              ? 'other version'
              : drift.length > 0
                ? 'drift'
                : 'loaded',
          loadedAt: record?.loadedAt,
          manifestUri: lake.uriOf(key),
          quality: manifest.quality,
          suspect: pending?.reasons,
        });
      }
      // Weeks held back as suspect before any version of them was loaded: only their kept
      // version records say so.
      for (const key of await lake.list(VERSIONS_PREFIX)) {
        const date = /drop_date=(\d{4}-\d{2}-\d{2})\/[0-9a-f]+\/version\.json$/.exec(key)?.[1];
        if (date === undefined || weeks.has(date)) continue;
        const text = await lake.getText(key);
        const version = text === undefined ? undefined : parseManifest(text, lake.uriOf(key));
        if (version?.gate?.verdict !== 'suspect') continue;
        weeks.set(date, {
          dropDate: date,
          rows: undefined,
          rejects: undefined,
          sourceBytes: undefined,
          sourceSha256: undefined,
          warehouse: 'not loaded',
          loadedAt: undefined,
          manifestUri: undefined,
          quality: undefined,
          suspect: version.gate.reasons,
        });
      }
      // Weeks the warehouse holds without a manifest in this lake (where it can list them).
      for (const record of listed ?? []) {
        const date = record.dropDate;
        if (weeks.has(date)) continue;
        weeks.set(date, {
          dropDate: date,
          rows: record.rows,
          rejects: undefined,
          sourceBytes: undefined,
          sourceSha256: record.sourceSha256,
          warehouse: 'loaded, no manifest',
          loadedAt: record.loadedAt,
          manifestUri: undefined,
          quality: undefined,
          suspect: undefined,
        });
      }
      return [...weeks.values()].sort((a, b) => a.dropDate.localeCompare(b.dropDate));
    },
    options.overrides,
    options.signal,
  );
}
