/**
 * The week store's version and resume logic (src/lake/week-store.ts) over an in-memory lake
 * (test/support/fakes/memory-lake.ts) that honours GCS's generation precondition: every
 * version kept in its own folder, the current one committed under a precondition (a concurrent
 * writer's manifest refused, another run's identical commit adopted), suspect versions and
 * loads recorded, objects checked. Milliseconds, no disk lake, no emulator.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LakeError } from '../../src/errors.ts';
import { WeekStore, versionPrefixOf } from '../../src/lake/week-store.ts';
import { silentLogger } from '../../src/log.ts';
import { parseManifest, serializeManifest, type Manifest } from '../../src/manifest/manifest.ts';
import { MemoryLake } from '../support/fakes/memory-lake.ts';
import { draft, sha, versionFiles } from '../support/fakes/week-versions.ts';
import { WEEK } from '../support/fixtures/real-week.ts';

const A = sha('a');
const B = sha('b');

function storeOn(lake: MemoryLake): WeekStore {
  return new WeekStore(lake, WEEK, silentLogger, '/nonexistent-scratch');
}

async function scratchStore(lake: MemoryLake): Promise<WeekStore> {
  return new WeekStore(lake, WEEK, silentLogger, await mkdtemp(join(tmpdir(), 'mta-week-store-')));
}

/** Stores and commits a version as a run would: read, put the version, commit it. */
async function commitVersion(
  store: WeekStore,
  sha256: string,
  overrides: Parameters<typeof draft>[1] = {},
  withRejects = false,
): Promise<Manifest> {
  const before = await store.readCurrent();
  const files = await versionFiles(sha256.slice(0, 1), withRejects);
  const version = await store.putVersion(draft(sha256, overrides), files);
  return store.commitCurrent(version, files, before);
}

function manifestIn(lake: MemoryLake, store: WeekStore): Manifest {
  const text = lake.objects.get(store.keys.manifest)?.bytes.toString('utf8');
  if (text === undefined) throw new Error('no manifest in the lake');
  return parseManifest(text, 'test');
}

describe('putVersion', () => {
  it("writes the version's objects and its record into its own folder, with their sizes and checksums", async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const files = await versionFiles('a', true);
    const progress: number[] = [];
    const version = await store.putVersion(draft(A), files, (bytes) => progress.push(bytes));

    const prefix = versionPrefixOf(WEEK, A);
    expect(prefix).toBe(`turnstile/_versions/drop_date=${WEEK}/${A.slice(0, 16)}/`);
    expect(version.versionPrefix).toBe(prefix);
    expect(await lake.list(prefix)).toEqual(
      [
        store.versionKeys(A).parquet,
        store.versionKeys(A).raw,
        store.versionKeys(A).rejects,
        `${prefix}version.json`,
      ].sort(),
    );
    const rawBytes = (await readFile(files.raw)).length;
    expect(version.objects.raw).toMatchObject({ key: store.versionKeys(A).raw, bytes: rawBytes });
    expect(version.objects.raw.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(version.objects.rejects?.key).toBe(store.versionKeys(A).rejects);
    // onBytes counts up to all three files
    expect(progress).toHaveLength(3);
    expect(progress.at(-1)).toBe(
      version.objects.raw.bytes + version.objects.parquet.bytes + version.objects.rejects!.bytes,
    );
    // the record is the version's own manifest; the week's keys are untouched
    expect(parseManifest((await lake.getText(store.versionKeys(A).record))!, 'record')).toEqual(version);
    expect(await lake.getText(store.keys.manifest)).toBeUndefined();
    expect(await lake.sizeOf(store.keys.parquet)).toBeUndefined();
  });

  it('lists the versions it keeps, oldest first, from their records only', async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    await store.putVersion(draft(B, { writtenAt: '2023-06-12T16:00:00.000Z' }), await versionFiles('b'));
    await store.putVersion(draft(A, { writtenAt: '2023-06-05T16:00:00.000Z' }), await versionFiles('a'));
    expect((await store.versions()).map((v) => v.source.sha256)).toEqual([A, B]);
    expect(await storeOn(lake).versions()).toHaveLength(2);
    expect(await new WeekStore(lake, '2023-06-10', silentLogger, '/x').versions()).toEqual([]);
  });
});

describe('commitCurrent', () => {
  it("a first version: the week's keys get its objects, the manifest names them, history holds it as current", async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    expect(await store.readCurrent()).toBeUndefined();
    const current = await commitVersion(store, A);

    expect(current.objects.parquet.key).toBe(store.keys.parquet);
    expect(current.objects.raw.key).toBe(store.keys.raw);
    expect(current.objects.rejects).toBeUndefined();
    expect(current.history).toEqual([
      expect.objectContaining({ sha256: A, outcome: 'current', prefix: versionPrefixOf(WEEK, A) }),
    ]);
    expect(manifestIn(lake, store)).toEqual(current);
    expect(await store.readCurrent()).toEqual(current);
    // the manifest is written last
    expect(lake.writes.at(-1)).toBe(store.keys.manifest);
    expect(await store.checkObjects(current)).toEqual([]);
  });

  it("a version without rejects deletes the rejects the week's keys held before", async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const first = await commitVersion(store, A, {}, true);
    expect(first.objects.rejects?.key).toBe(store.keys.rejects);
    expect(await lake.sizeOf(store.keys.rejects)).toBeGreaterThan(0);
    await commitVersion(store, B);
    expect(await lake.sizeOf(store.keys.rejects)).toBeUndefined();
  });

  it('a new version keeps the one before in its folder, and the history marks it superseded', async () => {
    const lake = new MemoryLake();
    const store = await scratchStore(lake);
    await commitVersion(store, A);
    // a week committed by an older run keeps no version folder: drop A's to see it kept again
    for (const key of await lake.list(versionPrefixOf(WEEK, A))) await lake.delete(key);

    const current = await commitVersion(store, B, { writtenAt: '2023-06-12T16:00:00.000Z', runId: 'run-2' });
    expect(current.history?.map((e) => [e.sha256, e.outcome])).toEqual([
      [A, 'superseded'],
      [B, 'current'],
    ]);
    const kept = await store.versions();
    expect(kept.map((v) => v.source.sha256)).toEqual([A, B]);
    expect(await lake.getText(store.versionKeys(A).raw)).toBe('raw bytes of a');
    expect(await lake.getText(store.keys.raw)).toBe('raw bytes of b');
  });

  it('a version already kept in its folder is not copied again', async () => {
    const lake = new MemoryLake();
    const store = await scratchStore(lake);
    await commitVersion(store, A);
    const writesBefore = lake.writes.length;
    await commitVersion(store, B, { runId: 'run-2' });
    const newWrites = lake.writes.slice(writesBefore);
    expect(newWrites.filter((key) => key.startsWith(versionPrefixOf(WEEK, A)))).toEqual([]);
  });

  it('a manifest written before versions (no history) becomes the first history entry, superseded', async () => {
    const lake = new MemoryLake();
    const store = await scratchStore(lake);
    const old = await commitVersion(store, A);
    const legacy = {
      ...old,
      manifestVersion: 1 as const,
      history: undefined,
      versionPrefix: undefined,
      gate: undefined,
    };
    lake.putRaw(store.keys.manifest, serializeManifest(legacy));
    for (const key of await lake.list(versionPrefixOf(WEEK, A))) await lake.delete(key);

    const current = await commitVersion(store, B, { runId: 'run-2' });
    expect(current.history?.map((e) => [e.sha256, e.outcome, e.prefix])).toEqual([
      [A, 'superseded', versionPrefixOf(WEEK, A)],
      [B, 'current', versionPrefixOf(WEEK, B)],
    ]);
    expect(await lake.sizeOf(store.versionKeys(A).record)).toBeGreaterThan(0);
  });

  it("refuses to overwrite a concurrent writer's manifest of another version, and leaves it in place", async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const before = await store.readCurrent();
    const files = await versionFiles('a');
    const version = await store.putVersion(draft(A), files);
    const theirs = serializeManifest({
      ...version,
      source: { ...version.source, sha256: B },
      runId: 'run-other',
    });
    lake.putRaw(store.keys.manifest, theirs);

    await expect(store.commitCurrent(version, files, before)).rejects.toThrow(LakeError);
    expect(await lake.getText(store.keys.manifest)).toBe(theirs);
  });

  it("adopts another run's commit of the same source version, and loads from its manifest", async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const before = await store.readCurrent();
    const files = await versionFiles('a');
    const version = await store.putVersion(draft(A), files);
    lake.putRaw(store.keys.manifest, serializeManifest({ ...version, runId: 'run-other' }));

    const adopted = await store.commitCurrent(version, files, before);
    expect(adopted.runId).toBe('run-other');
    expect(adopted.source.sha256).toBe(A);
    expect(manifestIn(lake, store).runId).toBe('run-other');
  });

  it("does not adopt a manifest of its own run id: that is this run's conflict, not another's commit", async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const before = await store.readCurrent();
    const files = await versionFiles('a');
    const version = await store.putVersion(draft(A), files);
    lake.putRaw(store.keys.manifest, serializeManifest(version));
    await expect(store.commitCurrent(version, files, before)).rejects.toThrow(/changed since it was read/);
  });
});

describe('recordSuspect', () => {
  it('with no current version writes nothing: the version record is the only trace', async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const version = await store.putVersion(draft(B, { gate: undefined }), await versionFiles('b'));
    const writes = lake.writes.length;
    await store.recordSuspect(version, undefined, ['half the rows']);
    expect(lake.writes.length).toBe(writes);
    expect(await lake.getText(store.keys.manifest)).toBeUndefined();
  });

  it('adds the suspect version to the history with its reasons; the current version stays current', async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const current = await commitVersion(store, A);
    const suspect = await store.putVersion(draft(B, { runId: 'run-2' }), await versionFiles('b'));
    await store.recordSuspect(suspect, current, ['126618 rows against 253237']);

    const manifest = manifestIn(lake, store);
    expect(manifest.source.sha256).toBe(A);
    expect(manifest.objects).toEqual(current.objects);
    expect(manifest.history).toEqual([
      expect.objectContaining({ sha256: A, outcome: 'current' }),
      expect.objectContaining({ sha256: B, outcome: 'suspect', reasons: ['126618 rows against 253237'] }),
    ]);
    // the suspect version's objects are in its folder only
    expect(await lake.getText(store.keys.raw)).toBe('raw bytes of a');
    expect(await lake.getText(store.versionKeys(B).raw)).toBe('raw bytes of b');
  });

  it('a suspect version suspected again replaces its entry rather than adding one', async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const current = await commitVersion(store, A);
    const suspect = await store.putVersion(draft(B), await versionFiles('b'));
    await store.recordSuspect(suspect, current, ['first']);
    await store.recordSuspect(suspect, await store.readCurrent(), ['second']);
    const history = manifestIn(lake, store).history ?? [];
    expect(history.filter((e) => e.sha256 === B)).toEqual([expect.objectContaining({ reasons: ['second'] })]);
    expect(history).toHaveLength(2);
  });
});

describe('recordLoad', () => {
  const loaded = {
    dropDate: WEEK,
    sourceSha256: A,
    rows: 253_237,
    loadedAt: '2023-06-05T16:01:00.000Z',
    jobId: 'job-1',
  };

  it("rewrites the manifest with the load's record", async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const current = await commitVersion(store, A);
    const recorded = await store.recordLoad(current, loaded, 'duckdb:/w.duckdb');
    expect(recorded.load).toEqual({
      warehouse: 'duckdb:/w.duckdb',
      jobId: 'job-1',
      rows: 253_237,
      loadedAt: loaded.loadedAt,
    });
    expect(manifestIn(lake, store)).toEqual(recorded);
  });

  it('writes again when another run rewrote the same version meanwhile', async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const current = await commitVersion(store, A);
    lake.beforeWrite = () => {
      lake.putRaw(store.keys.manifest, serializeManifest({ ...current, runId: 'run-other' }));
    };
    const recorded = await store.recordLoad(current, loaded, 'w');
    expect(manifestIn(lake, store).load?.jobId).toBe('job-1');
    expect(recorded.runId).toBe(current.runId);
  });

  it("leaves another run's newer source version alone: that run records its own load", async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const current = await commitVersion(store, A);
    const theirs = serializeManifest({
      ...current,
      source: { ...current.source, sha256: B },
      runId: 'run-other',
    });
    lake.beforeWrite = () => {
      lake.putRaw(store.keys.manifest, theirs);
    };
    const recorded = await store.recordLoad(current, loaded, 'w');
    expect(recorded.load?.jobId).toBe('job-1');
    expect(await lake.getText(store.keys.manifest)).toBe(theirs);
  });

  it('gives up after three attempts when the manifest keeps changing under it', async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const current = await commitVersion(store, A);
    let interruptions = 0;
    const interrupt = (): void => {
      interruptions += 1;
      lake.putRaw(
        store.keys.manifest,
        serializeManifest({ ...current, runId: `run-other-${interruptions}` }),
      );
      lake.beforeWrite = interrupt;
    };
    lake.beforeWrite = interrupt;
    await expect(store.recordLoad(current, loaded, 'w')).rejects.toThrow(LakeError);
    expect(interruptions).toBe(3);
    expect(manifestIn(lake, store).load).toBeUndefined();
  });
});

describe('checkObjects', () => {
  it('names each object that is missing or of another size than the manifest says', async () => {
    const lake = new MemoryLake();
    const store = storeOn(lake);
    const current = await commitVersion(store, A, {}, true);
    expect(await store.checkObjects(current)).toEqual([]);

    await lake.delete(store.keys.raw);
    lake.putRaw(store.keys.parquet, 'short');
    expect(await store.checkObjects(current)).toEqual([
      `raw object ${lake.uriOf(store.keys.raw)} is missing`,
      `parquet object ${lake.uriOf(store.keys.parquet)} has 5 bytes, the manifest ${current.objects.parquet.bytes}`,
    ]);
  });
});

describe('fetchVersion (restore)', () => {
  it("copies a kept version's objects to local files, checked against its record", async () => {
    const lake = new MemoryLake();
    const store = await scratchStore(lake);
    const version = await store.putVersion(draft(A), await versionFiles('a', true));
    const files = await store.fetchVersion(version);
    expect(await readFile(files.raw, 'utf8')).toBe('raw bytes of a');
    expect(await readFile(files.parquet, 'utf8')).toBe('parquet bytes of a, a little longer');
    expect(files.rejects).toBeDefined();
  });

  it('refuses an object whose bytes changed, even at the same size', async () => {
    const lake = new MemoryLake();
    const store = await scratchStore(lake);
    const version = await store.putVersion(draft(A), await versionFiles('a'));
    lake.putRaw(store.versionKeys(A).raw, 'raw bytes of z');
    await expect(store.fetchVersion(version)).rejects.toThrow(/does not match its version record/);
  });
});
