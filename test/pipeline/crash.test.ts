/**
 * Crash consistency: the real CLI, killed with SIGKILL at each stage of a two-week run (the
 * moment it logs the stage's event, or the moment the BigQuery stand-in has taken its request),
 * then run again; after every kill and every rerun the lake, the warehouse and the work dir are
 * checked (see support/crash-harness.ts). The suite prints, per backend, "N trials, 0 lost,
 * 0 duplicated", and fails on any loss, duplicate or other inconsistency.
 *
 * Weeks: 2023-05-27 (small, derived from real data, one reject) then the real 2023-06-03, so
 * kills also land between the weeks. One source server, one fake-gcs-server and one BigQuery
 * stand-in serve every trial; each trial gets its own folder, GCS prefix and dataset, except the
 * `--force` trials, which reload over a target that already holds both weeks (a reload killed
 * midway must not lose what was there).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { startFakeGcs, type FakeGcs } from '../support/peers/fake-gcs.ts';
import { startBigQueryStandin, type BigQueryStandin } from '../support/peers/bigquery-standin.ts';
import { factsOf, realWeekFile, REAL_WEEK_ROWS } from '../support/fixtures/real-week.ts';
import {
  REAL_WEEK,
  SMALL_WEEK,
  SMALL_WEEK_REJECTS,
  SMALL_WEEK_ROWS,
  atEvent,
  atJobInsert,
  atRecordInsert,
  atJobPoll,
  describeTrials,
  gcsTarget,
  localTarget,
  runOnce,
  runTrials,
  smallWeekContent,
  summarise,
  StandinRouter,
  type CrashTarget,
  type Reference,
  type Trial,
} from '../support/harnesses/crash-harness.ts';
import { weekKeys } from '../../src/lake/lake-layout.ts';
import { parseManifest } from '../../src/manifest/manifest.ts';
import { LocalLake } from '../../src/lake/local/local-lake.ts';
import { removeStaleWorkDirs } from '../../src/pipeline/work-dir.ts';
import { silentLogger } from '../../src/log.ts';

const BUCKET = 'crash-lake';
const PROJECT = 'test-project';
const W1 = SMALL_WEEK;
const W2 = REAL_WEEK;

let source: SourceServer;
let gcs: FakeGcs;
let standin: BigQueryStandin;
let base: string;
let reference: Reference;
/** The local target the reference run filled: the `--force` trials reload over it. */
let loadedLocal: CrashTarget;
let serial = 0;

/** Kill points shared by both backends: the worker's own log events. */
const store = (date: string, object: string) => atEvent('store.object', date, { object });

const LOCAL_TRIALS: Trial[] = [
  { label: 'run.start', kills: [atEvent('run.start')] },
  { label: 'W1 fetch.start', kills: [atEvent('fetch.start', W1)] },
  { label: 'W1 convert.start', kills: [atEvent('convert.start', W1)] },
  { label: 'W1 after raw', kills: [store(W1, 'raw')] },
  { label: 'W1 after parquet', kills: [store(W1, 'parquet')] },
  { label: 'W1 after rejects', kills: [store(W1, 'rejects')] },
  { label: 'W1 after manifest', kills: [atEvent('store.manifest', W1)] },
  { label: 'W1 load.start', kills: [atEvent('load.start', W1)] },
  { label: 'W1 load.done (not recorded)', kills: [atEvent('load.done', W1)] },
  { label: 'between weeks (W1 week.done)', kills: [atEvent('week.done', W1)] },
  { label: 'W2 fetch.start', kills: [atEvent('fetch.start', W2)] },
  { label: 'W2 mid-download (fetch.progress)', kills: [atEvent('fetch.progress', W2)] },
  { label: 'W2 convert.start', kills: [atEvent('convert.start', W2)] },
  { label: 'W2 quality', kills: [atEvent('quality', W2)] },
  { label: 'W2 after raw', kills: [store(W2, 'raw')] },
  { label: 'W2 after parquet', kills: [store(W2, 'parquet')] },
  { label: 'W2 after manifest', kills: [atEvent('store.manifest', W2)] },
  { label: 'W2 load.start (mid-transaction)', kills: [atEvent('load.start', W2)] },
  { label: 'W2 load.done (not recorded)', kills: [atEvent('load.done', W2)] },
  { label: 'W2 record.done (spool not removed)', kills: [atEvent('record.done', W2)] },
  {
    label: 'W2 load.start, twice (the resume too)',
    kills: [atEvent('load.start', W2), atEvent('load.start', W2)],
  },
  { label: '--force: W2 after parquet', force: true, kills: [store(W2, 'parquet')] },
  { label: '--force: W2 load.start', force: true, kills: [atEvent('load.start', W2)] },
  { label: '--force: W1 load.done', force: true, kills: [atEvent('load.done', W1)] },
];

const GCS_TRIALS: Trial[] = [
  { label: 'W1 fetch.start', kills: [atEvent('fetch.start', W1)] },
  { label: 'W1 after raw', kills: [store(W1, 'raw')] },
  { label: 'W1 after parquet', kills: [store(W1, 'parquet')] },
  { label: 'W1 after rejects', kills: [store(W1, 'rejects')] },
  { label: 'W1 after manifest', kills: [atEvent('store.manifest', W1)] },
  { label: 'W1 job inserted', kills: [atJobInsert(W1, { jobStates: ['RUNNING', 'DONE'] })] },
  { label: 'W1 job inserted, finishes unwatched', kills: [atJobInsert(W1, { finishJobs: true })] },
  { label: 'W1 polling (RUNNING)', kills: [atJobPoll(W1, 'RUNNING')] },
  { label: 'W1 load.done (not recorded)', kills: [atEvent('load.done', W1)] },
  {
    label: 'W1 record job inserted (RUNNING)',
    kills: [atRecordInsert(W1, { jobStates: ['RUNNING', 'DONE'] })],
  },
  { label: 'W1 record job inserted, finishes unwatched', kills: [atRecordInsert(W1, { finishJobs: true })] },
  { label: 'between weeks (W1 week.done)', kills: [atEvent('week.done', W1)] },
  { label: 'W2 mid-download (fetch.progress)', kills: [atEvent('fetch.progress', W2)] },
  { label: 'W2 convert.start', kills: [atEvent('convert.start', W2)] },
  { label: 'W2 after raw', kills: [store(W2, 'raw')] },
  { label: 'W2 after parquet', kills: [store(W2, 'parquet')] },
  { label: 'W2 after manifest', kills: [atEvent('store.manifest', W2)] },
  { label: 'W2 load.start', kills: [atEvent('load.start', W2)] },
  { label: 'W2 job inserted', kills: [atJobInsert(W2, { jobStates: ['RUNNING', 'DONE'] })] },
  { label: 'W2 polling (RUNNING)', kills: [atJobPoll(W2, 'RUNNING')] },
  { label: 'W2 polling (DONE, never heard)', kills: [atJobPoll(W2, 'DONE')] },
  { label: 'W2 load.done (not recorded)', kills: [atEvent('load.done', W2)] },
  {
    label: 'W2 job inserted, then the resume polling',
    kills: [atJobInsert(W2, { jobStates: ['RUNNING', 'DONE'] }), atJobPoll(W2, 'RUNNING')],
  },
  { label: '--force: W2 after parquet', force: true, kills: [store(W2, 'parquet')] },
  { label: '--force: W2 job inserted', force: true, kills: [atJobInsert(W2, { finishJobs: true })] },
  { label: '--force: W2 load.done', force: true, kills: [atEvent('load.done', W2)] },
];

async function freshLocal(): Promise<CrashTarget> {
  serial += 1;
  return localTarget(join(base, `local-${serial}`));
}

async function freshGcs(): Promise<CrashTarget> {
  serial += 1;
  return gcsTarget({
    gcsUrl: gcs.url,
    bucket: BUCKET,
    prefix: `trial-${serial}`,
    standin,
    project: PROJECT,
    dataset: `crash_${serial}`,
    workDir: join(base, `gcs-work-${serial}`),
  });
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'mta-ingest-crash-'));
  const realWeek = await realWeekFile();
  source = await startSourceServer({
    files: [
      { name: 'turnstile_230527.txt', content: await smallWeekContent() },
      { name: 'turnstile_230603.txt', path: realWeek },
    ],
  });
  gcs = await startFakeGcs({ buckets: [BUCKET], location: 'US' });
  standin = await startBigQueryStandin({
    expectedToken: 'emulator',
    gcsUrl: gcs.url,
    defaultScript: { states: ['DONE'] },
  });

  // The clean reference, once: a run with no kill, read back from its warehouse and checked
  // against the source's own facts (summed here without DuckDB).
  loadedLocal = await freshLocal();
  const clean = await runOnce({ target: loadedLocal, sourceUrl: source.baseUrl });
  expect(clean.code, clean.stderr).toBe(0);
  const weeks = await loadedLocal.warehouse();
  const facts = await factsOf(realWeek);
  expect(weeks.get(W2)).toMatchObject({ rows: REAL_WEEK_ROWS, entries: facts.entries, exits: facts.exits });
  expect(weeks.get(W1)).toMatchObject({ rows: SMALL_WEEK_ROWS, duplicates: 0 });
  const rejects = new Map<string, number>();
  const sha256 = new Map<string, string>();
  for (const date of [W1, W2]) {
    const key = weekKeys(date).manifest;
    const manifest = parseManifest((await loadedLocal.readObject(key)).toString('utf8'), key);
    rejects.set(date, manifest.rejects);
    sha256.set(date, manifest.source.sha256);
  }
  expect(rejects.get(W1)).toBe(SMALL_WEEK_REJECTS);
  reference = {
    weeks: new Map(
      [...weeks].map(([date, t]) => [date, { rows: t.rows, entries: t.entries, exits: t.exits }]),
    ),
    rejects,
    sha256,
  };
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.close(), gcs?.stop(), standin?.close()]);
  if (base) await rm(base, { recursive: true, force: true });
});

/** Trials run two at a time: a run is mostly one core's work, and these machines have two. */
const PARALLEL = 2;

/** Runs the trials, prints the summary line and the table, and returns the summary. */
async function crashTrials(
  name: string,
  trials: Trial[],
  fresh: () => Promise<CrashTarget>,
  loaded: CrashTarget,
  router?: StandinRouter,
) {
  const started = performance.now();
  const results = await runTrials(trials, {
    parallel: PARALLEL,
    fresh,
    loaded,
    reference,
    sourceUrl: source.baseUrl,
    router,
  });
  const summary = summarise(name, results);
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`${summary.line} (${seconds} s)\n${describeTrials(results)}`);
  return summary;
}

describe('what a killed run leaves is removed; what a live run holds is not', () => {
  /** A PID that is alive for the test (a sleeping child), and one that is not (a child that ended). */
  async function pids() {
    const live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((resolve) => dead.once('exit', resolve));
    return { live: live.pid!, dead: dead.pid!, stop: () => live.kill('SIGKILL') };
  }

  it("spool folders: a dead run's are removed at the next run's start; a live run's and another host's stay", async () => {
    const work = join(base, 'sweep-work');
    const { live, dead, stop } = await pids();
    try {
      const folder = async (name: string, host: string | undefined) => {
        await mkdir(join(work, name, '2023-06-03'), { recursive: true });
        await writeFile(join(work, name, '2023-06-03', 'lines.csv'), 'spooled');
        if (host !== undefined) await writeFile(join(work, name, 'owner'), `${host}\n`);
      };
      await folder(`mta-ingest-20230605T160000Z-aaaaaa-p${dead}-Abc123`, hostname());
      await folder(`mta-ingest-20230605T160000Z-bbbbbb-p${live}-Abc123`, hostname());
      await folder(`mta-ingest-20230605T160000Z-cccccc-p${dead}-Abc123`, 'another-host');
      await folder(`mta-ingest-20230605T160000Z-dddddd-p${dead}-Abc123`, undefined);
      await folder('unrelated-folder', hostname());
      // In a container every run is PID 1: a killed earlier run's folder carries our PID.
      await folder(`mta-ingest-20230605T160000Z-eeeeee-p${process.pid}-Abc123`, hostname());
      const removed = await removeStaleWorkDirs(work, silentLogger);
      expect(removed.sort()).toEqual([
        `mta-ingest-20230605T160000Z-aaaaaa-p${dead}-Abc123`,
        `mta-ingest-20230605T160000Z-eeeeee-p${process.pid}-Abc123`,
      ]);
      expect((await readdir(work)).sort()).toEqual([
        `mta-ingest-20230605T160000Z-bbbbbb-p${live}-Abc123`,
        `mta-ingest-20230605T160000Z-cccccc-p${dead}-Abc123`,
        // No owner file yet: too young to tell from a run that is just starting.
        `mta-ingest-20230605T160000Z-dddddd-p${dead}-Abc123`,
        'unrelated-folder',
      ]);
    } finally {
      stop();
    }
  });

  it("local lake temporaries: a dead writer's are removed when the week begins; a live writer's stay", async () => {
    const root = join(base, 'sweep-lake');
    const lake = new LocalLake(root);
    const keys = weekKeys(W2);
    const { live, dead, stop } = await pids();
    try {
      const folder = join(root, 'turnstile', 'parquet', `drop_date=${W2}`);
      await mkdir(folder, { recursive: true });
      const name = 'turnstile_230603.parquet';
      await writeFile(join(folder, `${name}.tmp-p${dead}-0123456789ab`), 'half');
      await writeFile(join(folder, `${name}.tmp-p${live}-0123456789ab`), 'in flight');
      expect(await lake.removeStaleTemporaries([keys.raw, keys.parquet, keys.rejects, keys.manifest])).toBe(
        1,
      );
      expect(await readdir(folder)).toEqual([`${name}.tmp-p${live}-0123456789ab`]);
      // A write of the key itself also leaves the live writer's temporary alone.
      const source = join(base, 'sweep-source.parquet');
      await writeFile(source, 'whole');
      await lake.putFile(keys.parquet, source);
      expect((await readdir(folder)).sort()).toEqual([name, `${name}.tmp-p${live}-0123456789ab`]);
    } finally {
      stop();
    }
  });
});

describe('the BigQuery stand-in holds what its loads put in the table', () => {
  /** One load job of `uri` into `table`, answered DONE at once; its final job resource. */
  async function load(dataset: string, tableId: string, uri: string, writeDisposition: string) {
    const headers = { authorization: 'Bearer emulator', 'content-type': 'application/json' };
    const jobs = `${standin.url}/bigquery/v2/projects/${PROJECT}/jobs`;
    serial += 1;
    const response = await fetch(jobs, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jobReference: { projectId: PROJECT, jobId: `standin_check_${serial}` },
        configuration: {
          load: {
            sourceUris: [uri],
            sourceFormat: 'PARQUET',
            destinationTable: { projectId: PROJECT, datasetId: dataset, tableId },
            writeDisposition,
          },
        },
      }),
    });
    return (await response.json()) as {
      status: { state: string; errorResult?: { message: string } };
      statistics?: { load?: { outputRows?: string } };
    };
  }

  it('WRITE_TRUNCATE replaces the partition, WRITE_APPEND adds to it, rows outside the decorator fail', async () => {
    const dataset = 'standin_contents';
    const headers = { authorization: 'Bearer emulator', 'content-type': 'application/json' };
    const api = `${standin.url}/bigquery/v2/projects/${PROJECT}/datasets`;
    await fetch(api, {
      method: 'POST',
      headers,
      body: JSON.stringify({ datasetReference: { datasetId: dataset } }),
    });
    await fetch(`${api}/${dataset}/tables`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        tableReference: { tableId: 'turnstile_readings' },
        timePartitioning: { type: 'DAY', field: 'drop_date' },
      }),
    });
    // The small week's Parquet, from the reference run's lake, as an object in fake-gcs.
    const parquet = await loadedLocal.readObject(weekKeys(W1).parquet);
    const name = 'standin-check/w1.parquet';
    const upload = await fetch(
      `${gcs.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent(name)}`,
      { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: parquet },
    );
    expect(upload.status).toBe(200);
    const uri = `gs://${BUCKET}/${name}`;
    const partition = () =>
      standin.partitions.get(`${PROJECT}.${dataset}.turnstile_readings`)?.get('20230527');
    const week = reference.weeks.get(W1)!;

    const first = await load(dataset, 'turnstile_readings$20230527', uri, 'WRITE_TRUNCATE');
    expect(first.status).toEqual({ state: 'DONE' });
    expect(first.statistics?.load?.outputRows).toBe(String(SMALL_WEEK_ROWS));
    expect(partition()).toHaveLength(1);
    expect(partition()![0]).toMatchObject({
      rows: week.rows,
      sums: { entries: week.entries, exits: week.exits },
    });

    await load(dataset, 'turnstile_readings$20230527', uri, 'WRITE_APPEND');
    expect(partition()?.map((chunk) => chunk.rows)).toEqual([week.rows, week.rows]);
    await load(dataset, 'turnstile_readings$20230527', uri, 'WRITE_TRUNCATE');
    expect(partition()?.map((chunk) => chunk.rows)).toEqual([week.rows]);

    const empty = await load(dataset, 'turnstile_readings$20230527', uri, 'WRITE_EMPTY');
    expect(empty.status.errorResult?.message).toMatch(/not empty/);
    const elsewhere = await load(dataset, 'turnstile_readings$20230603', uri, 'WRITE_TRUNCATE');
    expect(elsewhere.status.errorResult?.message).toMatch(/20230527/);
    const missing = await load(
      dataset,
      'turnstile_readings$20230527',
      `gs://${BUCKET}/nothing.parquet`,
      'WRITE_TRUNCATE',
    );
    expect(missing.status.errorResult?.message).toMatch(/Not found: URI/);
    expect(partition()?.map((chunk) => chunk.rows)).toEqual([week.rows]);
  });
});

describe('crash and rerun', () => {
  it('local lake + DuckDB: every kill, then a rerun, ends in the clean state', async () => {
    const summary = await crashTrials('local+duckdb', LOCAL_TRIALS, freshLocal, loadedLocal);
    expect(summary.trials.length).toBeGreaterThanOrEqual(20);
    expect(summary.problems).toEqual([]);
    expect(summary.line).toBe(`local+duckdb: ${LOCAL_TRIALS.length} trials, 0 lost, 0 duplicated`);
  }, 240_000);

  it('GCS lake + BigQuery: every kill, then a rerun, ends in the clean state', async () => {
    // The --force trials reload over a target that a clean run filled (and that each rerun
    // leaves clean again); the clean run is itself checked against the reference.
    const router = new StandinRouter(standin);
    const loaded = await freshGcs();
    const clean = await runOnce({ target: loaded, sourceUrl: source.baseUrl, router });
    expect(clean.code, clean.stderr).toBe(0);
    const totals = await loaded.warehouse();
    for (const [date, week] of reference.weeks)
      expect(totals.get(date)).toMatchObject({ ...week, duplicates: 0 });

    const summary = await crashTrials('gcs+bigquery', GCS_TRIALS, freshGcs, loaded, router);
    expect(summary.trials.length).toBeGreaterThanOrEqual(20);
    expect(summary.problems).toEqual([]);
    expect(summary.line).toBe(`gcs+bigquery: ${GCS_TRIALS.length} trials, 0 lost, 0 duplicated`);
  }, 240_000);
});
