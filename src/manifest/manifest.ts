/**
 * The week's manifest: what was fetched, what was written, what was loaded. Written last to
 * the lake, it is the week's commit marker (a week without one is not loaded), and it is what
 * `status` and reruns read. Rewritten once more after the load, with the load's record.
 */
import { LakeError } from '../errors.ts';
import type { IsoDate } from '../dates/drop-dates.ts';
import type { Layout } from '../convert/layout.ts';
import type { WeekQuality } from '../quality/week-quality.ts';

export const MANIFEST_VERSION = 1;

export interface ManifestObject {
  key: string;
  uri: string;
  bytes: number;
  sha256: string;
  generation?: string | undefined;
  crc32c?: string | undefined;
}

export interface Manifest {
  manifestVersion: typeof MANIFEST_VERSION;
  dropDate: IsoDate;
  sourceFile: string;
  source: {
    url: string;
    bytes: number;
    sha256: string;
    etag?: string | undefined;
    lastModified?: string | undefined;
    layout: Layout;
    /** Lines in the file, header and blank lines included. */
    lines: number;
    blankLines: number;
  };
  rows: number;
  rejects: number;
  readings: { from?: string | undefined; to?: string | undefined };
  /** The week's quality report (quality/week-quality.ts); absent in manifests written before it. */
  quality?: WeekQuality | undefined;
  objects: { raw: ManifestObject; parquet: ManifestObject; rejects?: ManifestObject | undefined };
  load?: { warehouse: string; jobId: string; rows: number; loadedAt: string } | undefined;
  runId: string;
  writtenAt: string;
  tool: { name: string; version: string };
  timings: { fetchMs: number; convertMs: number; storeMs: number; loadMs?: number | undefined };
}

export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Parses and checks a manifest; a corrupt one is an error, never read as "not loaded". */
export function parseManifest(text: string, where: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LakeError(`${where} is not valid JSON: the manifest is corrupt; delete it and rerun the week`);
  }
  const m = value as Partial<Manifest>;
  const ok =
    m.manifestVersion === MANIFEST_VERSION &&
    typeof m.dropDate === 'string' &&
    typeof m.rows === 'number' &&
    typeof m.rejects === 'number' &&
    typeof m.source?.sha256 === 'string' &&
    typeof m.objects?.parquet?.key === 'string';
  if (!ok)
    throw new LakeError(
      `${where} is not a version ${MANIFEST_VERSION} manifest; delete it and rerun the week`,
    );
  return m as Manifest;
}
