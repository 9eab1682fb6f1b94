/**
 * Versions of a week for the fake-based suites: a manifest draft as the fetch and convert
 * stages would hand it to the week store, and small local files standing in for its raw file,
 * Parquet and rejects (the store only copies and digests them).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IsoDate } from '../../../src/dates/drop-dates.ts';
import type { VersionFiles } from '../../../src/lake/week-store.ts';
import { MANIFEST_VERSION, type Manifest } from '../../../src/manifest/manifest.ts';
import type { GateVerdict, WeekFigures } from '../../../src/quality/plausibility-gate.ts';
import { FILE, REAL_WEEK_ROWS, WEEK } from '../fixtures/real-week.ts';

export type VersionDraft = Omit<Manifest, 'objects' | 'versionPrefix'>;

/** A sha256 made of one repeated hex digit, so tests can tell versions apart at a glance. */
export function sha(digit: string): string {
  return digit.repeat(64);
}

export function figures(overrides: Partial<WeekFigures> = {}): WeekFigures {
  return {
    rows: REAL_WEEK_ROWS,
    turnstiles: 4_980,
    boothsKnown: 768,
    boothsInTable: 770,
    lastDayTurnstiles: 4_950,
    outsideWeek: 0,
    entriesSum: '1234567890123',
    exitsSum: '987654321098',
    ...overrides,
  };
}

export function gate(verdict: GateVerdict['verdict'], reasons: string[] = []): GateVerdict {
  return { verdict, reasons, reference: 'recent weeks', figures: figures() };
}

/** A version draft of the week: source `sha256`, passed by the gate unless `overrides` say otherwise. */
export function draft(sha256: string, overrides: Partial<VersionDraft> = {}): VersionDraft {
  const date: IsoDate = overrides.dropDate ?? WEEK;
  return {
    manifestVersion: MANIFEST_VERSION,
    dropDate: date,
    sourceFile: FILE,
    source: {
      url: `http://source.test/${FILE}`,
      bytes: 26_000_000,
      sha256,
      layout: 'modern',
      lines: REAL_WEEK_ROWS + 1,
      blankLines: 0,
    },
    rows: REAL_WEEK_ROWS,
    rejects: 0,
    readings: { from: '2023-05-27T00:00:00', to: '2023-06-02T23:59:59' },
    gate: gate('passed'),
    runId: 'run-1',
    writtenAt: '2023-06-05T16:00:00.000Z',
    tool: { name: 'mta-ingest', version: '0.0.0-test' },
    timings: { fetchMs: 1, convertMs: 1, storeMs: 1 },
    ...overrides,
  };
}

/** Local files for a version; `tag` goes into their bytes so two versions differ. */
export async function versionFiles(tag: string, withRejects = false): Promise<VersionFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'mta-fake-version-'));
  const write = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  return {
    raw: await write('raw.txt.gz', `raw bytes of ${tag}`),
    parquet: await write('week.parquet', `parquet bytes of ${tag}, a little longer`),
    rejects: withRejects ? await write('rejects.parquet', `rejects of ${tag}`) : undefined,
  };
}
