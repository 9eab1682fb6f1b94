/**
 * The week decision (src/pipeline/week-decision.ts) over an in-memory lake and a fake
 * warehouse: what a week needs (nothing, a load from the lake, a fetch) from the manifest, the
 * lake's objects and the warehouse's own rows; how the warehouse drifted; which earlier weeks the
 * gate compares with. Milliseconds, no DuckDB.
 */
import { describe, expect, it } from 'vitest';
import type { IsoDate } from '../../src/dates/drop-dates.ts';
import { WeekStore } from '../../src/lake/week-store.ts';
import { silentLogger } from '../../src/log.ts';
import type { Manifest } from '../../src/manifest/manifest.ts';
import { assessWeek, recentWeeks, warehouseDrift } from '../../src/pipeline/week-decision.ts';
import { FakeWarehouse } from '../support/fakes/fake-warehouse.ts';
import { MemoryLake } from '../support/fakes/memory-lake.ts';
import {
  draft,
  figures,
  gate,
  sha,
  versionFiles,
  type VersionDraft,
} from '../support/fakes/week-versions.ts';
import { REAL_WEEK_ROWS, WEEK } from '../support/fixtures/real-week.ts';

const A = sha('a');
const B = sha('b');
const SUMS = { entriesSum: figures().entriesSum, exitsSum: figures().exitsSum };

interface World {
  lake: MemoryLake;
  store: WeekStore;
  warehouse: FakeWarehouse;
  manifest: Manifest;
}

/** A week committed in the lake (source A unless told) and, unless `load: false`, loaded exactly. */
async function world(
  overrides: Partial<VersionDraft> = {},
  options: { load?: boolean; answersFacts?: boolean } = {},
): Promise<World> {
  const lake = new MemoryLake();
  const store = new WeekStore(lake, WEEK, silentLogger, '/nonexistent');
  const files = await versionFiles('a');
  const version = await store.putVersion(draft(A, overrides), files);
  let manifest = await store.commitCurrent(version, files, undefined);
  const warehouse = new FakeWarehouse({ answersFacts: options.answersFacts ?? true });
  if (options.load ?? true) {
    const loaded = await warehouse.loadWeek({
      dropDate: WEEK,
      sourceSha256: manifest.source.sha256,
      rows: manifest.rows,
      parquetUri: manifest.objects.parquet.uri,
      runId: manifest.runId,
      force: false,
    });
    warehouse.facts.set(WEEK, { rows: manifest.rows, ...SUMS });
    manifest = await store.recordLoad(manifest, loaded, warehouse.description);
  }
  return { lake, store: new WeekStore(lake, WEEK, silentLogger, '/nonexistent'), warehouse, manifest };
}

describe('assessWeek', () => {
  it('no manifest: fetch, nothing trusted, and the warehouse is still asked', async () => {
    const lake = new MemoryLake();
    const warehouse = new FakeWarehouse();
    const store = new WeekStore(lake, WEEK, silentLogger, '/nonexistent');
    const assessment = await assessWeek(store, warehouse, WEEK, false);
    expect(assessment).toEqual({
      manifest: undefined,
      loaded: undefined,
      trusted: false,
      lakeProblems: [],
      warehouseProblems: [],
      need: 'fetch',
    });
    expect(warehouse.lookups).toEqual([WEEK]);
  });

  it('a passed version, whole in the lake, held exactly by the warehouse: nothing', async () => {
    const { store, warehouse, manifest } = await world();
    const assessment = await assessWeek(store, warehouse, WEEK, false);
    expect(assessment.need).toBe('nothing');
    expect(assessment.trusted).toBe(true);
    expect(assessment.lakeProblems).toEqual([]);
    expect(assessment.warehouseProblems).toEqual([]);
    expect(assessment.loaded?.jobId).toBe(manifest.load?.jobId);
    // the warehouse's own load state is asked, not the manifest's copy of it
    expect(warehouse.lookups.at(-1)).toEqual(WEEK);
  });

  it('--force: fetch, however whole the week is', async () => {
    const { store, warehouse } = await world();
    const assessment = await assessWeek(store, warehouse, WEEK, true);
    expect(assessment.need).toBe('fetch');
    expect(assessment.warehouseProblems).toEqual([]);
  });

  it('an accepted version is trusted like a passed one', async () => {
    const { store, warehouse } = await world({ gate: gate('accepted', ['half the rows']) });
    const assessment = await assessWeek(store, warehouse, WEEK, false);
    expect(assessment.trusted).toBe(true);
    expect(assessment.need).toBe('nothing');
  });

  it.each([
    ['a suspect verdict', { gate: gate('suspect', ['half the rows']) }],
    ['no verdict (a manifest from before the gate)', { gate: undefined }],
  ])('an untrusted manifest (%s): fetch, even with the warehouse in step', async (_name, overrides) => {
    const { store, warehouse } = await world(overrides);
    const assessment = await assessWeek(store, warehouse, WEEK, false);
    expect(assessment.trusted).toBe(false);
    expect(assessment.warehouseProblems).toEqual([]);
    expect(assessment.need).toBe('fetch');
  });

  it('lake objects missing or resized: fetch, naming each', async () => {
    const { lake, store, warehouse, manifest } = await world();
    await lake.delete(manifest.objects.raw.key);
    lake.putRaw(manifest.objects.parquet.key, 'x');
    const assessment = await assessWeek(store, warehouse, WEEK, false);
    expect(assessment.need).toBe('fetch');
    expect(assessment.lakeProblems).toEqual([
      `raw object ${manifest.objects.raw.uri} is missing`,
      `parquet object ${manifest.objects.parquet.uri} has 1 bytes, the manifest ${manifest.objects.parquet.bytes}`,
    ]);
  });

  it('the warehouse lacks the week: load from the lake', async () => {
    const { store, warehouse } = await world({}, { load: false });
    const assessment = await assessWeek(store, warehouse, WEEK, false);
    expect(assessment.need).toBe('load from lake');
    expect(assessment.warehouseProblems).toEqual(['the warehouse has no load of this week']);
  });

  it('the warehouse drifted (rows deleted behind its back): load from the lake', async () => {
    const { store, warehouse } = await world();
    warehouse.facts.set(WEEK, { rows: REAL_WEEK_ROWS - 1, ...SUMS });
    const assessment = await assessWeek(store, warehouse, WEEK, false);
    expect(assessment.need).toBe('load from lake');
    expect(assessment.warehouseProblems).toEqual([
      `the warehouse holds ${REAL_WEEK_ROWS - 1} rows, the manifest ${REAL_WEEK_ROWS}`,
    ]);
  });

  it('missing lake objects win over a drifted warehouse: fetch', async () => {
    const { lake, store, warehouse, manifest } = await world({}, { load: false });
    await lake.delete(manifest.objects.parquet.key);
    expect((await assessWeek(store, warehouse, WEEK, false)).need).toBe('fetch');
  });
});

describe('warehouseDrift', () => {
  const loadedOf = (manifest: Manifest, overrides: Partial<{ sourceSha256: string; rows: number }> = {}) => ({
    dropDate: WEEK,
    sourceSha256: manifest.source.sha256,
    rows: manifest.rows,
    loadedAt: '2023-06-05T16:01:00.000Z',
    jobId: 'job-1',
    ...overrides,
  });

  it('none when the rows match the manifest by count and sums', async () => {
    const { warehouse, manifest } = await world();
    expect(await warehouseDrift(warehouse, WEEK, manifest, loadedOf(manifest))).toEqual([]);
  });

  it('another source version loaded: both shas, shortened', async () => {
    const { warehouse, manifest } = await world();
    expect(await warehouseDrift(warehouse, WEEK, manifest, loadedOf(manifest, { sourceSha256: B }))).toEqual([
      `the warehouse holds source ${B.slice(0, 12)}, the lake ${A.slice(0, 12)}`,
    ]);
  });

  it("the load's record counts other rows than the manifest", async () => {
    const { warehouse, manifest } = await world();
    expect(await warehouseDrift(warehouse, WEEK, manifest, loadedOf(manifest, { rows: 10 }))).toEqual([
      `the warehouse's load has 10 rows, the manifest ${REAL_WEEK_ROWS}`,
    ]);
  });

  it('the rows count right but hold other counter sums (another version restored)', async () => {
    const { warehouse, manifest } = await world();
    warehouse.facts.set(WEEK, { rows: REAL_WEEK_ROWS, entriesSum: '1', exitsSum: SUMS.exitsSum });
    expect(await warehouseDrift(warehouse, WEEK, manifest, loadedOf(manifest))).toEqual([
      'the warehouse rows hold other counter sums than the manifest (another version of the week)',
    ]);
    warehouse.facts.set(WEEK, { rows: REAL_WEEK_ROWS, entriesSum: SUMS.entriesSum, exitsSum: '2' });
    expect(await warehouseDrift(warehouse, WEEK, manifest, loadedOf(manifest))).toHaveLength(1);
  });

  it('sums are not compared when the count already differs, nor when the manifest has no figures', async () => {
    const { warehouse, manifest } = await world();
    warehouse.facts.set(WEEK, { rows: 5, entriesSum: '1', exitsSum: '2' });
    expect(await warehouseDrift(warehouse, WEEK, manifest, loadedOf(manifest))).toEqual([
      `the warehouse holds 5 rows, the manifest ${REAL_WEEK_ROWS}`,
    ]);
    warehouse.facts.set(WEEK, { rows: REAL_WEEK_ROWS, entriesSum: '1', exitsSum: '2' });
    const ungated = { ...manifest, gate: undefined };
    expect(await warehouseDrift(warehouse, WEEK, ungated, loadedOf(ungated))).toEqual([]);
  });

  it("trusts the load's record where the warehouse cannot read its rows here (BigQuery)", async () => {
    const { warehouse, manifest } = await world({}, { answersFacts: false });
    warehouse.facts.set(WEEK, { rows: 1, entriesSum: '1', exitsSum: '1' });
    expect(await warehouseDrift(warehouse, WEEK, manifest, loadedOf(manifest))).toEqual([]);
  });
});

describe('recentWeeks', () => {
  function weekBefore(back: number): IsoDate {
    return new Date(Date.parse(`${WEEK}T00:00:00Z`) - back * 7 * 86_400_000).toISOString().slice(0, 10);
  }
  function loadedManifest(
    date: IsoDate,
    rows: number,
    verdict: 'passed' | 'suspect' | 'accepted' = 'passed',
  ): Manifest {
    return {
      ...draft(A, {
        dropDate: date,
        rows,
        gate: { ...gate(verdict), figures: figures({ rows, turnstiles: rows / 10 }) },
      }),
      objects: {
        raw: { key: 'r', uri: 'r', bytes: 1, sha256: A },
        parquet: { key: 'p', uri: 'p', bytes: 1, sha256: A },
      },
      load: { warehouse: 'w', jobId: 'j', rows, loadedAt: 'x' },
    };
  }

  it('the loaded, gate-passed weeks before, most recent first, at most four', async () => {
    const manifests = new Map(
      [1, 2, 3, 4, 5, 6].map((back) => [weekBefore(back), loadedManifest(weekBefore(back), back * 1000)]),
    );
    const recent = await recentWeeks((date) => Promise.resolve(manifests.get(date)), WEEK);
    expect(recent).toEqual([
      { dropDate: '2023-05-27', rows: 1000, turnstiles: 100 },
      { dropDate: '2023-05-20', rows: 2000, turnstiles: 200 },
      { dropDate: '2023-05-13', rows: 3000, turnstiles: 300 },
      { dropDate: '2023-05-06', rows: 4000, turnstiles: 400 },
    ]);
  });

  it('skips weeks not loaded, not passed (suspect or accepted) or unreadable, looking back eight weeks at most', async () => {
    const asked: IsoDate[] = [];
    const manifests = new Map<IsoDate, Manifest>([
      [weekBefore(1), { ...loadedManifest(weekBefore(1), 1000), load: undefined }],
      [weekBefore(2), loadedManifest(weekBefore(2), 2000, 'suspect')],
      [weekBefore(3), loadedManifest(weekBefore(3), 3000, 'accepted')],
      [weekBefore(5), loadedManifest(weekBefore(5), 5000)],
      [weekBefore(9), loadedManifest(weekBefore(9), 9000)],
    ]);
    const recent = await recentWeeks((date) => {
      asked.push(date);
      if (date === weekBefore(4)) return Promise.reject(new Error('corrupt manifest'));
      return Promise.resolve(manifests.get(date));
    }, WEEK);
    expect(recent).toEqual([{ dropDate: weekBefore(5), rows: 5000, turnstiles: 500 }]);
    expect(asked).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map(weekBefore));
  });
});
