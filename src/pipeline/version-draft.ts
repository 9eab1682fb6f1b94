/**
 * A fetched and converted version of a week as a manifest, but for the objects: the week store
 * (lake/week-store.ts) adds those as it writes them.
 */
import { fileNameFor, type IsoDate } from '../dates/drop-dates.ts';
import type { ConvertResult } from '../convert/convert-week.ts';
import type { FetchResult } from '../fetch/fetch-week.ts';
import { MANIFEST_VERSION, type Manifest } from '../manifest/manifest.ts';
import type { GateVerdict } from '../quality/plausibility-gate.ts';
import type { WeekQuality } from '../quality/week-quality.ts';
import { TOOL } from '../tool.ts';

export function draftOf(
  runId: string,
  date: IsoDate,
  fetched: Extract<FetchResult, { outcome: 'fetched' }>,
  converted: ConvertResult,
  quality: WeekQuality,
  gate: GateVerdict,
  timing: { fetchMs: number; convertMs: number; storeStarted: number },
): Omit<Manifest, 'objects' | 'versionPrefix'> {
  return {
    manifestVersion: MANIFEST_VERSION,
    dropDate: date,
    sourceFile: fileNameFor(date),
    source: {
      url: fetched.url,
      bytes: fetched.bytes,
      sha256: fetched.sha256,
      etag: fetched.etag,
      lastModified: fetched.lastModified,
      layout: fetched.layout,
      lines: fetched.lines,
      blankLines: fetched.blankLines,
    },
    rows: converted.rows,
    rejects: converted.rejects,
    readings: { from: converted.readingsFrom, to: converted.readingsTo },
    quality,
    gate,
    completeness: (fetched as { completeness?: string }).completeness,
    runId,
    writtenAt: new Date().toISOString(),
    tool: TOOL,
    timings: {
      fetchMs: Math.round(timing.fetchMs),
      convertMs: Math.round(timing.convertMs),
      storeMs: Math.round(performance.now() - timing.storeStarted),
    },
  };
}
