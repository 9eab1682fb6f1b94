/**
 * The week's manifest: what was fetched, what was written, what was loaded. Written last to
 * the lake, it is the week's commit marker (a week without one is not loaded), and it is what
 * `status` and reruns read. Rewritten once more after the load, with the load's record.
 */
import { LakeError } from '../errors.ts';
import type { IsoDate } from '../dates/drop-dates.ts';
import type { Layout } from '../convert/layout.ts';
import type { WeekQuality } from '../quality/week-quality.ts';
import type { GateVerdict } from '../quality/plausibility-gate.ts';

/** Version 2 adds the gate's verdict, the body's completeness and the week's version history. */
export const MANIFEST_VERSION = 2;
/** Manifests this version reads (version 1 has no gate, completeness or history). */
const READABLE_VERSIONS: readonly number[] = [1, 2];

/** One version of a week that the lake keeps, in the week's history. */
export interface VersionEntry {
  sha256: string;
  bytes: number;
  rows: number;
  rejects: number;
  fetchedAt: string;
  /** `current`: what the week's objects and the warehouse hold; `superseded`: replaced by a later one. */
  outcome: 'current' | 'superseded' | 'suspect';
  /** Why it was held back, for a suspect version. */
  reasons?: string[] | undefined;
  /** The folder under which the lake keeps this version's objects and record. */
  prefix: string;
}

export interface ManifestObject {
  key: string;
  uri: string;
  bytes: number;
  sha256: string;
  generation?: string | undefined;
  crc32c?: string | undefined;
}

export interface Manifest {
  manifestVersion: 1 | typeof MANIFEST_VERSION;
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
  /** The week's quality figures (quality/week-quality.ts); absent in manifests written before it. */
  quality?: WeekQuality | undefined;
  objects: { raw: ManifestObject; parquet: ManifestObject; rejects?: ManifestObject | undefined };
  load?: { warehouse: string; jobId: string; rows: number; loadedAt: string } | undefined;
  /** The plausibility gate's verdict on this version (absent before manifest version 2). */
  gate?: GateVerdict | undefined;
  /**
   * What proved the body whole: a met Content-Length, a chunked terminator, or nothing but
   * the connection's close (then only the gate vouches for it).
   */
  completeness?: string | undefined;
  /** Where the lake keeps this version's own copy of its objects (see lake/week-store.ts). */
  versionPrefix?: string | undefined;
  /** Every version of the week the lake keeps, oldest first (absent before version 2). */
  history?: VersionEntry[] | undefined;
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
    READABLE_VERSIONS.includes(m.manifestVersion as number) &&
    typeof m.dropDate === 'string' &&
    typeof m.rows === 'number' &&
    typeof m.rejects === 'number' &&
    typeof m.source?.sha256 === 'string' &&
    typeof m.objects?.parquet?.key === 'string';
  if (!ok)
    throw new LakeError(
      `${where} is not a manifest of version ${READABLE_VERSIONS.join(' or ')}; delete it and rerun the week`,
    );
  return m as Manifest;
}
