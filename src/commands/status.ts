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
import type { WeekQuality } from '../quality/week-quality.ts';

export interface WeekStatus {
  dropDate: IsoDate;
  /** From the manifest (undefined for a week the warehouse holds without one). */
  rows: number | undefined;
  rejects: number | undefined;
  sourceBytes: number | undefined;
  sourceSha256: string | undefined;
  warehouse: 'loaded' | 'not loaded' | 'other version' | 'loaded, no manifest';
  loadedAt: string | undefined;
  manifestUri: string | undefined;
  /** The week's quality report, from its manifest. */
  quality: WeekQuality | undefined;
}

export async function statusCommand(options: {
  config: Config;
  overrides?: BackendOverrides | undefined;
}): Promise<WeekStatus[]> {
  return withReadOnlyBackends(
    options.config,
    async (lake, warehouse) => {
      const listed = (await warehouse.listLoadedWeeks?.()) ?? [];
      const weeks = new Map<IsoDate, WeekStatus>();
      for (const key of await lake.list(MANIFEST_PREFIX)) {
        const date = dateOfManifestKey(key);
        const text = date === undefined ? undefined : await lake.getText(key);
        if (date === undefined || text === undefined) continue;
        const manifest = parseManifest(text, lake.uriOf(key));
        const record = await warehouse.loadedWeek(date, manifest.load);
        weeks.set(date, {
          dropDate: date,
          rows: manifest.rows,
          rejects: manifest.rejects,
          sourceBytes: manifest.source.bytes,
          sourceSha256: manifest.source.sha256,
          warehouse: !record
            ? 'not loaded'
            : record.sourceSha256 === manifest.source.sha256
              ? 'loaded'
              : 'other version',
          loadedAt: record?.loadedAt,
          manifestUri: lake.uriOf(key),
          quality: manifest.quality,
        });
      }
      // Weeks the warehouse holds without a manifest in this lake (where it can list them).
      for (const record of listed) {
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
        });
      }
      return [...weeks.values()].sort((a, b) => a.dropDate.localeCompare(b.dropDate));
    },
    options.overrides,
  );
}
