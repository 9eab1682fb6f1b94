/**
 * Two runs of the same weeks at once never load a week twice, and both succeed.
 *
 * - DuckDB (local lake): the warehouse file takes one process at a time, and a run holds it for
 *   a whole week, from before it reads the manifest until the load is recorded. The second run
 *   waits for the file (bounded: warehouse/duckdb/lock.ts), then finds the week loaded and does
 *   nothing. Each week: one `load.start` in all, one run `loaded`, the other `already-loaded`.
 * - GCS + BigQuery: nothing serialises the runs; the design is idempotent instead. The same
 *   source converts to byte-identical objects, so the two runs' lake writes (each under a
 *   generation precondition) converge on the same objects; a manifest write that loses a race
 *   to the same version adopts the other's (pipeline/ingest-week.ts, storeOrAdopt); and the load
 *   job id is derived from the drop date and the source sha256, so the second run's insert gets
 *   409 and waits for the first run's job. Each week: one load job, one load's rows.
 *
 * Both are proven by starting two CLI child processes at once, several times, and reading back
 * the warehouse (the DuckDB file; the stand-in's table contents, which its load jobs really read
 * from the lake) and the lake.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { startFakeGcs, type FakeGcs } from '../support/peers/fake-gcs.ts';
import { startBigQueryStandin, type BigQueryStandin } from '../support/peers/bigquery-standin.ts';
import { realWeekFile } from '../support/fixtures/real-week.ts';
import { holdFile } from '../support/harnesses/signal-fixtures.ts';
import {
  TABLE_KEY,
  WEEKS,
  checkFinal,
  gcsTarget,
  localTarget,
  newResult,
  runOnce,
  smallWeekContent,
  type CrashTarget,
  type Reference,
  type RunOutcome,
} from '../support/harnesses/crash-harness.ts';
import { weekKeys } from '../../src/lake/lake-layout.ts';
import { parseManifest, type Manifest } from '../../src/manifest/manifest.ts';
import { DuckDBWarehouse } from '../../src/warehouse/duckdb/duckdb-warehouse.ts';
import { lazyEngine } from '../../src/duckdb/duckdb-engine.ts';
import { WarehouseError } from '../../src/errors.ts';

const BUCKET = 'concurrency-lake';
const PROJECT = 'test-project';
const REPETITIONS = 3;

let source: SourceServer;
let gcs: FakeGcs;
let standin: BigQueryStandin;
let base: string;
let reference: Reference;
let serial = 0;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'mta-ingest-concurrency-'));
  source = await startSourceServer({
    files: [
      { name: 'turnstile_230527.txt', content: await smallWeekContent() },
      { name: 'turnstile_230603.txt', path: await realWeekFile() },
    ],
  });
  gcs = await startFakeGcs({ buckets: [BUCKET], location: 'US' });
  // A load job is RUNNING at its insert and first poll, DONE from the second: the run that did
  // not insert it gets 409 and polls the other's job while it is still running.
  standin = await startBigQueryStandin({
    expectedToken: 'emulator',
    gcsUrl: gcs.url,
    defaultScript: { states: ['RUNNING', 'DONE'] },
  });
  // The reference: one run on its own.
  const alone = await localTarget(join(base, 'alone'));
  const run = await runOnce({ target: alone, sourceUrl: source.baseUrl });
  expect(run.code, run.stderr).toBe(0);
  const weeks = await alone.warehouse();
  const rejects = new Map<string, number>();
  const sha256 = new Map<string, string>();
  for (const date of WEEKS) {
    const manifest = await manifestOf(alone, date);
    rejects.set(date, manifest.rejects);
    sha256.set(date, manifest.source.sha256);
  }
  reference = {
    weeks: new Map(
      [...weeks].map(([date, t]) => [date, { rows: t.rows, entries: t.entries, exits: t.exits }]),
    ),
    rejects,
    sha256,
  };
}, 60_000);

afterAll(async () => {
  await Promise.all([source?.close(), gcs?.stop(), standin?.close()]);
  if (base) await rm(base, { recursive: true, force: true });
});

async function manifestOf(target: CrashTarget, date: string): Promise<Manifest> {
  const key = weekKeys(date).manifest;
  return parseManifest((await target.readObject(key)).toString('utf8'), key);
}

/** Two runs of both weeks, started together. */
function twoAtOnce(target: CrashTarget): Promise<RunOutcome[]> {
  return Promise.all([0, 1].map(() => runOnce({ target, sourceUrl: source.baseUrl })));
}

/** The week's outcome a run printed (`2023-06-03  loaded  ...`). */
function outcomeOf(run: RunOutcome, date: string): string | undefined {
  return new RegExp(`^${date}\\s+(\\S+)`, 'm').exec(run.stdout)?.[1];
}

const eventsOf = (runs: RunOutcome[], event: string, date?: string) =>
  runs
    .flatMap((run) => run.events)
    .filter((e) => e.event === event && (date === undefined || e.dropDate === date));

/** The state after both runs: the clean one, recorded, with nothing left over; and both exit 0. */
async function expectSettled(target: CrashTarget, runs: RunOutcome[]): Promise<void> {
  for (const run of runs) {
    const result = newResult('concurrent run');
    await checkFinal(target, reference, run, result);
    expect(result.problems, run.stderr.slice(-2000)).toEqual([]);
    expect(result.duplicated).toBe(false);
    expect(result.lost).toBe(false);
  }
}

describe('two runs of the same weeks at once', () => {
  it('local lake + DuckDB: the second waits for the warehouse, then finds each week loaded', async () => {
    const parquets = new Set<string>();
    for (let repetition = 0; repetition < REPETITIONS; repetition++) {
      serial += 1;
      const target = await localTarget(join(base, `local-${serial}`));
      const runs = await twoAtOnce(target);
      expect(runs.map((run) => run.code)).toEqual([0, 0]);
      await expectSettled(target, runs);
      for (const date of WEEKS) {
        expect(eventsOf(runs, 'load.start', date), `${date}: loads`).toHaveLength(1);
        expect(runs.map((run) => outcomeOf(run, date)).sort()).toEqual(['already-loaded', 'loaded']);
      }
      // The second run waited for the file rather than failing on it.
      expect(eventsOf(runs, 'warehouse.lock.wait').length).toBeGreaterThanOrEqual(1);
      expect(runs.map((run) => run.stdout).join('')).not.toMatch(/in use/);
      parquets.add((await manifestOf(target, '2023-06-03')).objects.parquet.sha256);
    }
    // Every repetition converted the real week to the same bytes (what the GCS case relies on).
    expect(parquets.size).toBe(1);
  }, 120_000);

  it('GCS lake + BigQuery: one load job per week, one load of rows, a consistent manifest', async () => {
    let adopted = 0;
    let conflicts = 0;
    for (let repetition = 0; repetition < REPETITIONS; repetition++) {
      serial += 1;
      const dataset = `concurrent_${serial}`;
      const target = await gcsTarget({
        gcsUrl: gcs.url,
        bucket: BUCKET,
        prefix: `rep-${serial}`,
        standin,
        project: PROJECT,
        dataset,
        workDir: join(base, `gcs-work-${serial}`),
      });
      const runs = await twoAtOnce(target);
      expect(
        runs.map((run) => run.code),
        runs.map((run) => run.stdout).join('\n'),
      ).toEqual([0, 0]);
      await expectSettled(target, runs);
      const table = standin.partitions.get(TABLE_KEY(PROJECT, dataset));
      for (const date of WEEKS) {
        const partition = date.replaceAll('-', '');
        const jobs = [...standin.jobs.values()].filter(
          (job) =>
            job.configuration.load?.destinationTable?.datasetId === dataset &&
            job.configuration.load.destinationTable.tableId?.endsWith(`$${partition}`),
        );
        expect(jobs, `${date}: load jobs`).toHaveLength(1);
        expect(table?.get(partition), `${date}: loads in the partition`).toHaveLength(1);
        expect((await manifestOf(target, date)).load?.jobId).toBe(jobs[0]!.jobId);
      }
      // Both runs went to the load (neither found the week done): the second insert was a 409.
      conflicts += standin.requests.filter(
        (r) => r.method === 'POST' && r.path.endsWith('/jobs') && JSON.stringify(r.body).includes(dataset),
      ).length;
      adopted += eventsOf(runs, 'store.adopted').length;
    }
    console.log(
      `gcs+bigquery concurrency: ${REPETITIONS} repetitions, ${conflicts} job inserts for ${REPETITIONS * WEEKS.length} week loads, ${adopted} manifests adopted`,
    );
  }, 120_000);
});

describe('waiting for a DuckDB warehouse another process holds', () => {
  async function open(file: string, lockWaitMs: number) {
    const engine = lazyEngine({ tempDirectory: join(base, 'spill') });
    try {
      const warehouse = await DuckDBWarehouse.open(file, { engine, lockWaitMs });
      await warehouse.close();
    } finally {
      engine.opened()?.close();
    }
  }

  it('gives up after the bounded wait with one line naming the holder', async () => {
    const file = join(base, 'held.duckdb');
    const holder = await holdFile(file);
    try {
      const started = performance.now();
      const error = await open(file, 400).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(performance.now() - started).toBeGreaterThanOrEqual(400);
      expect(error).toBeInstanceOf(WarehouseError);
      const message = (error as Error).message;
      expect(message.replace(/waiting \d+\.\d s/, 'waiting N s')).toBe(
        `the DuckDB warehouse ${file} is still in use by another process (PID ${holder.pid}) after waiting N s: is a run stuck?`,
      );
      expect(message).not.toContain('\n');
    } finally {
      await holder.release();
    }
  });

  it('carries on as soon as the holder lets go', async () => {
    const file = join(base, 'released.duckdb');
    const holder = await holdFile(file);
    const started = performance.now();
    setTimeout(() => void holder.release(), 500);
    await open(file, 30_000);
    expect(performance.now() - started).toBeGreaterThanOrEqual(450);
  });

  it('a week whose file stays held past --lock-wait-ms fails, and the run goes on to the next', async () => {
    serial += 1;
    const dir = join(base, `held-long-${serial}`);
    const target = await localTarget(dir);
    const holder = await holdFile(join(dir, 'wh.duckdb'));
    try {
      const run = await runOnce({
        target: { ...target, env: { ...target.env, MTA_INGEST_LOCK_WAIT_MS: '300' } },
        sourceUrl: source.baseUrl,
      });
      expect(run.code, run.stderr).toBe(1);
      // One failed line per week: the second week was tried too, not skipped by the first.
      const failed = run.stdout.split('\n').filter((line) => /^\d{4}-\d{2}-\d{2}\s+failed\s/.test(line));
      expect(failed.map((line) => line.slice(0, 10))).toEqual([...WEEKS]);
      for (const line of failed) expect(line).toMatch(/still in use by another process/);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await holder.release();
    }
  }, 60_000);

  it('a CLI run waits for the file and then loads (exit 0), logging the wait', async () => {
    serial += 1;
    const target = await localTarget(join(base, `held-run-${serial}`));
    const holder = await holdFile(join(base, `held-run-${serial}`, 'wh.duckdb'));
    const releasing = new Promise<void>((resolve) =>
      setTimeout(() => void holder.release().then(resolve), 1500),
    );
    const run = await runOnce({ target, sourceUrl: source.baseUrl });
    await releasing;
    expect(run.code, run.stderr).toBe(0);
    const waits = run.events.filter((e) => e.event === 'warehouse.lock.wait');
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({ holderPid: String(holder.pid) });
    expect(run.events.some((e) => e.event === 'warehouse.lock.acquired')).toBe(true);
    const result = newResult('held');
    await checkFinal(target, reference, run, result);
    expect(result.problems).toEqual([]);
  }, 60_000);
});
