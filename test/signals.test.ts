/**
 * SIGTERM and SIGINT stop every command within 3 s at every stage, with a line for every
 * selected week (`interrupted` with its stage, `skipped` for weeks not begun), exit 143 or 130,
 * nothing half-written, and a rerun that then loads the week exactly.
 *
 * The real CLI runs as a child process; the signal goes when it has logged the stage (or when a
 * server has taken its request), never after a sleep, and the bound is measured from the signal
 * to the process's exit. The conversion, measure and load stages run on a 10x week (the real
 * 2023-06-03 file's rows ten times, 2,532,370 rows: its conversion alone takes ~8.5 s), so a
 * stop within the bound proves the work was interrupted, not waited out.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from './support/source-server.ts';
import { realWeekFile, REAL_WEEK_ROWS } from './support/real-week.ts';
import { duckdbTotals } from './support/crash-harness.ts';
import { startFakeGcs, type FakeGcs } from './support/fake-gcs.ts';
import { startBigQueryStandin, type BigQueryStandin } from './support/bigquery-standin.ts';
import { installProcessStop } from '../src/process-stop.ts';
import {
  at,
  jsonSummary,
  startCli,
  startSilentServer,
  type SignalRun,
  type Stopped,
} from './support/signal-run.ts';

/** The promise: gone within this long after the signal. */
const BOUND_MS = 3000;
const WEEK = '2023-06-03';
const FILE = 'turnstile_230603.txt';
const NOW = '2023-06-19T16:00:00Z';
const BUCKET = 'signal-lake';
const PROJECT = 'test-project';

let source: SourceServer;
let realWeek: string;
let bigWeek: string;
let base: string;
let serial = 0;
/** Measured stop times, printed at the end: stage → ms. */
const measured: string[] = [];

/** The real week's rows ten times over (one header), made once per machine. */
async function bigWeekFile(real: string): Promise<string> {
  const path = join(tmpdir(), 'mta-ingest-test-data', 'turnstile_230603_x10.txt');
  if (existsSync(path)) return path;
  const temp = `${path}.${process.pid}.tmp`;
  const out = createWriteStream(temp);
  const header = (await readFile(real, 'latin1')).split('\n', 1)[0]!;
  out.write(`${header}\n`);
  for (let copy = 0; copy < 10; copy++) {
    let first = true;
    for await (const line of createInterface({ input: createReadStream(real, 'latin1') })) {
      if (first || line === '') {
        first = false;
        continue;
      }
      if (!out.write(`${line}\n`, 'latin1'))
        await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  await rename(temp, path);
  return path;
}

function freshDir(): Promise<string> {
  const dir = join(base, `t${++serial}`);
  return mkdir(join(dir, 'work'), { recursive: true }).then(() => dir);
}

/** `run` of the selected weeks into `dir`'s local lake and DuckDB warehouse, JSON out, debug log. */
function runArgs(dir: string, ...selection: string[]): string[] {
  return [
    'run',
    ...(selection.length > 0 ? selection : ['--date', WEEK]),
    '--source-url',
    source.baseUrl,
    '--lake',
    join(dir, 'lake'),
    '--warehouse',
    join(dir, 'wh.duckdb'),
    '--work-dir',
    join(dir, 'work'),
    '--json',
    '--log-level',
    'debug',
  ];
}

function startRun(dir: string, ...selection: string[]): SignalRun {
  return startCli(runArgs(dir, ...selection), { MTA_INGEST_NOW: NOW });
}

/** Exit code and bound, and the stop's measured time recorded for the summary. */
function expectStopped(stopped: Stopped, code: 130 | 143, label: string): void {
  expect(stopped.signal, stopped.stderr.slice(-2000)).toBeNull();
  expect(stopped.code, stopped.stderr.slice(-2000)).toBe(code);
  expect(stopped.ms).toBeLessThan(BOUND_MS);
  // The clean stop, not the hard exit at the grace bound.
  expect(stopped.stderr).not.toMatch(/exiting now/);
  measured.push(`${label}: ${Math.round(stopped.ms)} ms`);
}

/** Every file under `dir`, relative. */
async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1));
}

/**
 * Nothing half-written: no lake temporary, every manifest's objects present at their size, no
 * spool left, and the warehouse holding the week wholly (`rows`) or as before (`before`).
 */
async function expectNothingHalfWritten(dir: string, allowed: (number | undefined)[]): Promise<void> {
  const lake = join(dir, 'lake');
  const files = await filesUnder(lake);
  expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
  for (const file of files.filter((f) => f.includes('_manifests'))) {
    const manifest = JSON.parse(await readFile(join(lake, file), 'utf8')) as {
      objects: Record<string, { key: string; bytes: number } | undefined>;
    };
    for (const object of Object.values(manifest.objects)) {
      if (!object) continue;
      expect((await stat(join(lake, ...object.key.split('/')))).size, object.key).toBe(object.bytes);
    }
  }
  expect((await readdir(join(dir, 'work'))).filter((n) => n.startsWith('mta-ingest-'))).toEqual([]);
  const totals = await duckdbTotals(join(dir, 'wh.duckdb'));
  expect(allowed).toContain(totals.get(WEEK)?.rows);
  expect(totals.get(WEEK)?.duplicates ?? 0).toBe(0);
}

/** A plain rerun on the real week loads it exactly. */
async function expectRerunLoads(dir: string, ...extra: string[]): Promise<void> {
  source.serve({ name: FILE, path: realWeek });
  source.fault(FILE, undefined);
  const rerun = await startCli([...runArgs(dir), ...extra], { MTA_INGEST_NOW: NOW }).exited();
  expect(rerun.code, rerun.stderr.slice(-2000)).toBe(0);
  expect(jsonSummary(rerun.stdout).weeks).toMatchObject([
    { dropDate: WEEK, outcome: 'loaded', rows: REAL_WEEK_ROWS },
  ]);
  const totals = await duckdbTotals(join(dir, 'wh.duckdb'));
  expect(totals.get(WEEK)).toMatchObject({ rows: REAL_WEEK_ROWS, duplicates: 0 });
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'mta-ingest-signals-'));
  realWeek = await realWeekFile();
  bigWeek = await bigWeekFile(realWeek);
  source = await startSourceServer({ files: [{ name: FILE, path: realWeek }] });
}, 120_000);

afterAll(async () => {
  await source.close();
  await rm(base, { recursive: true, force: true });
  console.log(`stop times (signal → exit):\n  ${measured.join('\n  ')}`);
});

describe('run: every stage stops within 3 s, every week gets its line', () => {
  it('fetch (a stalled source), SIGTERM: the week interrupted, the weeks after it skipped, 143', async () => {
    const dir = await freshDir();
    source.fault(FILE, { kind: 'stall', afterBytes: 64 * 1024, ms: 600_000 });
    const run = startRun(dir, '--from', WEEK, '--to', '2023-06-17');
    await run.until(at('fetch.start', WEEK));
    const stopped = await run.stop('SIGTERM');
    expectStopped(stopped, 143, 'fetch, SIGTERM');
    const summary = jsonSummary(stopped.stdout);
    expect(summary.exitCode).toBe(143);
    expect(summary.weeks.map((w) => [w.dropDate, w.outcome, w.failedStage])).toEqual([
      [WEEK, 'interrupted', 'fetch'],
      ['2023-06-10', 'skipped', undefined],
      ['2023-06-17', 'skipped', undefined],
    ]);
    expect(summary.weeks[0]!.detail).toMatch(/interrupted by SIGTERM during fetch/);
    // A signal is no network fault: the advice is to rerun.
    expect(summary.weeks[0]!.advice).toMatch(/stopped by a signal; nothing was half-written/);
    expect(summary.weeks[1]!.advice).toMatch(/not begun/);
    await expectNothingHalfWritten(dir, [undefined]);
    await expectRerunLoads(dir);
  });

  it('fetch, SIGINT: 130', async () => {
    const dir = await freshDir();
    source.fault(FILE, { kind: 'stall', afterBytes: 64 * 1024, ms: 600_000 });
    const run = startRun(dir);
    await run.until(at('fetch.start', WEEK));
    const stopped = await run.stop('SIGINT');
    expectStopped(stopped, 130, 'fetch, SIGINT');
    expect(jsonSummary(stopped.stdout).weeks).toMatchObject([
      { outcome: 'interrupted', failedStage: 'fetch' },
    ]);
    source.fault(FILE, undefined);
  });

  it('conversion of a 10x week is interrupted, not waited out; the rerun loads the real week exactly', async () => {
    const dir = await freshDir();
    source.serve({ name: FILE, path: bigWeek });
    const run = startRun(dir);
    await run.until(at('convert.start', WEEK));
    const stopped = await run.stop('SIGTERM');
    expectStopped(stopped, 143, 'convert (10x week), SIGTERM');
    expect(jsonSummary(stopped.stdout).weeks).toMatchObject([
      { dropDate: WEEK, outcome: 'interrupted', failedStage: 'convert' },
    ]);
    // The advice of an interrupted week is to rerun, not to look at the network.
    expect(stopped.stdout).not.toMatch(/check the network/);
    await expectNothingHalfWritten(dir, [undefined]);
    await expectRerunLoads(dir);
  }, 120_000);

  it('measure (10x week), SIGINT', async () => {
    const dir = await freshDir();
    source.serve({ name: FILE, path: bigWeek });
    const run = startRun(dir);
    await run.until(at('convert.done', WEEK));
    const stopped = await run.stop('SIGINT');
    expectStopped(stopped, 130, 'measure (10x week), SIGINT');
    const [week] = jsonSummary(stopped.stdout).weeks;
    expect(week).toMatchObject({ outcome: 'interrupted' });
    expect(['measure', 'store']).toContain(week!.failedStage);
    measured.push(`  (landed in ${week!.failedStage})`);
    await expectNothingHalfWritten(dir, [undefined]);
  }, 120_000);

  it('store (10x week), SIGTERM: no temporary, no manifest without its objects', async () => {
    const dir = await freshDir();
    source.serve({ name: FILE, path: bigWeek });
    const run = startRun(dir);
    await run.until(at('store.object', WEEK));
    const stopped = await run.stop('SIGTERM');
    expectStopped(stopped, 143, 'store (10x week), SIGTERM');
    const [week] = jsonSummary(stopped.stdout).weeks;
    expect(week).toMatchObject({ outcome: 'interrupted' });
    expect(['store', 'load']).toContain(week!.failedStage);
    measured.push(`  (landed in ${week!.failedStage})`);
    await expectNothingHalfWritten(dir, [undefined]);
    await expectRerunLoads(dir);
  }, 120_000);

  it('load (10x week over the loaded real week, --force), SIGTERM: rolled back, rows unchanged', async () => {
    const dir = await freshDir();
    source.serve({ name: FILE, path: realWeek });
    expect((await startRun(dir).exited()).code).toBe(0);
    source.serve({ name: FILE, path: bigWeek });
    const run = startCli([...runArgs(dir), '--force'], { MTA_INGEST_NOW: NOW });
    await run.until(at('load.start', WEEK));
    const stopped = await run.stop('SIGTERM');
    expectStopped(stopped, 143, 'load (10x week), SIGTERM');
    expect(jsonSummary(stopped.stdout).weeks).toMatchObject([
      { outcome: 'interrupted', failedStage: 'load' },
    ]);
    // The transaction was interrupted: the warehouse holds the real week as before.
    await expectNothingHalfWritten(dir, [REAL_WEEK_ROWS]);
    await expectRerunLoads(dir);
  }, 180_000);

  it('waiting for a DuckDB warehouse another process holds, SIGTERM (the wait is 600 s)', async () => {
    const dir = await freshDir();
    const holder = await holdFile(join(dir, 'wh.duckdb'));
    try {
      const run = startRun(dir, '--from', WEEK, '--to', '2023-06-10');
      await run.until(at('warehouse.lock.wait'));
      const stopped = await run.stop('SIGTERM');
      expectStopped(stopped, 143, 'DuckDB lock wait, SIGTERM');
      expect(jsonSummary(stopped.stdout).weeks.map((w) => [w.outcome, w.failedStage])).toEqual([
        ['interrupted', 'load'],
        ['skipped', undefined],
      ]);
    } finally {
      await holder.release();
    }
  });

  it('a warehouse that turns invalid mid-run: every later week gets a failed line, a summary, exit 1', async () => {
    const dir = await freshDir();
    source.serve({ name: FILE, path: realWeek });
    const run = startRun(dir, '--from', WEEK, '--to', '2023-06-17');
    await run.until(at('week.done', WEEK));
    // Replaced (not written in place): the run's open handle keeps the old file, the next open
    // finds this one.
    await writeFile(join(dir, 'garbage'), 'this is not a DuckDB database\n'.repeat(200));
    await rename(join(dir, 'garbage'), join(dir, 'wh.duckdb'));
    const done = await run.exited();
    expect(done.code, done.stderr.slice(-2000)).toBe(1);
    const summary = jsonSummary(done.stdout);
    expect(summary.weeks.map((w) => w.dropDate)).toEqual([WEEK, '2023-06-10', '2023-06-17']);
    expect(summary.weeks[0]!.outcome).toBe('loaded');
    expect(summary.weeks[2]).toMatchObject({ outcome: 'failed', failedStage: 'load' });
    expect(summary.weeks[2]!.detail).toMatch(/wh\.duckdb/);
  });
});

describe('BigQuery: a load job still RUNNING is no longer waited for', () => {
  let gcs: FakeGcs;
  let standin: BigQueryStandin;
  beforeAll(async () => {
    gcs = await startFakeGcs({ buckets: [BUCKET], location: 'US' });
    standin = await startBigQueryStandin({
      expectedToken: 'emulator',
      gcsUrl: gcs.url,
      defaultScript: { states: ['RUNNING'] },
    });
  }, 60_000);
  afterAll(async () => {
    await standin?.close();
    await gcs?.stop();
  });

  it('SIGTERM while polling: 143 within the bound; the job finishes unwatched and the rerun loads the week once', async () => {
    const dir = await freshDir();
    source.serve({ name: FILE, path: realWeek });
    let polled: () => void = () => undefined;
    const poll = new Promise<void>((resolve) => (polled = resolve));
    standin.beforeResponse((request) => {
      if (request.method === 'GET' && request.path.includes('/jobs/')) polled();
    });
    const target = ['--lake', `gs://${BUCKET}/signals`, '--warehouse', `bigquery://${PROJECT}/signals`];
    const env = {
      MTA_INGEST_NOW: NOW,
      MTA_INGEST_GCS_EMULATOR: gcs.url,
      MTA_INGEST_BIGQUERY_EMULATOR: standin.url,
      METADATA_SERVER_DETECTION: 'none',
    };
    const args = ['run', '--date', WEEK, '--source-url', source.baseUrl, '--work-dir', join(dir, 'work')];
    const run = startCli([...args, ...target, '--json'], env);
    await poll;
    const stopped = await run.stop('SIGTERM');
    standin.beforeResponse(undefined);
    expectStopped(stopped, 143, 'BigQuery job polling, SIGTERM');
    expect(jsonSummary(stopped.stdout).weeks).toMatchObject([
      { outcome: 'interrupted', failedStage: 'load' },
    ]);
    await standin.finishAll();
    standin.defaultScript({ states: ['DONE'] });
    const rerun = await startCli([...args, ...target, '--json'], env).exited();
    expect(rerun.code, rerun.stderr.slice(-2000)).toBe(0);
    const chunks = standin.partitions.get(`${PROJECT}.signals.turnstile_readings`)?.get('20230603') ?? [];
    expect(chunks.map((c) => c.rows)).toEqual([REAL_WEEK_ROWS]);
  }, 120_000);
});

describe('the other commands stop within 3 s', () => {
  it('demo, SIGTERM: its week gets a line, 143', async () => {
    const dir = await freshDir();
    const run = startCli(['demo', '--dir', dir, '--json']);
    // The demo's run has begun once its warehouse file exists (its log is warnings only).
    while (!existsSync(join(dir, 'warehouse.duckdb'))) {
      if (run.child.exitCode !== null) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const stopped = await run.stop('SIGTERM');
    expectStopped(stopped, 143, 'demo, SIGTERM');
    const demo = JSON.parse(stopped.stdout) as { weeks: { outcome: string }[] };
    expect(demo.weeks.map((w) => w.outcome)).toEqual(['interrupted']);
  });

  for (const [label, signal, code] of [
    ['plan', 'SIGTERM', 143],
    ['status', 'SIGINT', 130],
    ['verify', 'SIGTERM', 143],
  ] as const) {
    it(`${label} against a GCS lake and BigQuery that never answer, ${signal}`, async () => {
      const silent = await startSilentServer();
      try {
        const args = {
          plan: ['plan', '--date', WEEK, '--source-url', source.baseUrl],
          status: ['status'],
          verify: ['verify'],
        }[label];
        const run = startCli(
          [...args, '--lake', `gs://${BUCKET}/x`, '--warehouse', `bigquery://${PROJECT}/hung`],
          {
            MTA_INGEST_NOW: NOW,
            MTA_INGEST_GCS_EMULATOR: silent.url,
            MTA_INGEST_BIGQUERY_EMULATOR: silent.url,
            METADATA_SERVER_DETECTION: 'none',
          },
        );
        await silent.requested;
        const stopped = await run.stop(signal);
        expectStopped(stopped, code, `${label} (hung GCS/BigQuery), ${signal}`);
        expect(stopped.stderr).toMatch(new RegExp(`mta-ingest: interrupted by ${signal}`));
      } finally {
        await silent.close();
      }
    });
  }

  for (const args of [
    ['blocks', 'apply', '--block', 'local'],
    ['deploy', 'prefect', '--block', 'local'],
  ]) {
    it(`${args.slice(0, 2).join(' ')} against a Prefect server that never answers, SIGTERM`, async () => {
      const silent = await startSilentServer();
      try {
        const run = startCli(args, { PREFECT_API_URL: `${silent.url}/api` });
        await silent.requested;
        const stopped = await run.stop('SIGTERM');
        expectStopped(stopped, 143, `${args.slice(0, 2).join(' ')} (hung Prefect), SIGTERM`);
      } finally {
        await silent.close();
      }
    });
  }

  it('report waiting for a DuckDB warehouse another process holds, SIGTERM', async () => {
    const dir = await freshDir();
    const holder = await holdFile(join(dir, 'wh.duckdb'));
    try {
      const run = startCli(
        ['report', '--date', WEEK, '--warehouse', join(dir, 'wh.duckdb'), '--log-level', 'info'],
        { MTA_INGEST_NOW: NOW },
      );
      await run.until(at('warehouse.lock.wait'));
      const stopped = await run.stop('SIGTERM');
      expectStopped(stopped, 143, 'report (DuckDB lock wait), SIGTERM');
    } finally {
      await holder.release();
    }
  });

  it('run inside a Prefect flow run whose server never answers, SIGTERM', async () => {
    const silent = await startSilentServer();
    try {
      const run = startCli(runArgs(await freshDir()), {
        MTA_INGEST_NOW: NOW,
        PREFECT_API_URL: `${silent.url}/api`,
        PREFECT__FLOW_RUN_ID: '00000000-0000-0000-0000-000000000001',
      });
      await silent.requested;
      const stopped = await run.stop('SIGTERM');
      expectStopped(stopped, 143, 'run in a flow run (hung Prefect), SIGTERM');
    } finally {
      await silent.close();
    }
  });

  it('as PID 1 (a container without an init), SIGTERM still stops a run', async () => {
    const dir = await freshDir();
    source.fault(FILE, { kind: 'stall', afterBytes: 64 * 1024, ms: 600_000 });
    const run = startCli(runArgs(dir), { MTA_INGEST_NOW: NOW }, [
      'unshare',
      '--pid',
      '--fork',
      '--mount-proc',
    ]);
    await run.until(at('fetch.start', WEEK));
    // The CLI is the child of `unshare`, PID 1 in its namespace: the signal goes to it.
    const children = await readFile(`/proc/${run.child.pid}/task/${run.child.pid}/children`, 'utf8');
    const pid = Number(children.trim().split(/\s+/)[0]);
    expect((await readFile(`/proc/${pid}/status`, 'utf8')).match(/^NSpid:\s+\d+\s+(\d+)/m)?.[1]).toBe('1');
    const stopped = await run.stop('SIGTERM', pid);
    expectStopped(stopped, 143, 'fetch as PID 1, SIGTERM');
    expect(jsonSummary(stopped.stdout).weeks).toMatchObject([
      { outcome: 'interrupted', failedStage: 'fetch' },
    ]);
    source.fault(FILE, undefined);
  });
});

describe('the hard exit: a second signal, or the grace bound passing', () => {
  it("a second signal while stopping exits at once with the first signal's code", async () => {
    const dir = await freshDir();
    source.fault(FILE, { kind: 'stall', afterBytes: 64 * 1024, ms: 600_000 });
    const run = startRun(dir);
    await run.until(at('fetch.start', WEEK));
    process.kill(run.child.pid!, 'SIGINT');
    const stopped = await run.stop('SIGTERM');
    source.fault(FILE, undefined);
    expect(stopped.code).toBe(130);
    expect(stopped.ms).toBeLessThan(BOUND_MS);
    expect(stopped.stderr).toMatch(/SIGTERM again while stopping: exiting now/);
  });

  it("the grace bound passing exits with the signal's code (process-stop.ts, in-process)", async () => {
    const lines: string[] = [];
    let exited: (code: number) => void = () => undefined;
    const exit = new Promise<number>((resolve) => (exited = resolve));
    const stop = installProcessStop({ say: (line) => lines.push(line), graceMs: 50, exit: exited });
    try {
      process.emit('SIGTERM', 'SIGTERM');
      expect(stop.signal.aborted).toBe(true);
      expect(String((stop.signal.reason as Error).message)).toBe('interrupted by SIGTERM');
      expect(await exit).toBe(143);
      expect(lines.at(-1)).toMatch(/still stopping 0.05 s after SIGTERM: exiting now/);
    } finally {
      stop.dispose();
    }
  });
});

/** A process that holds the DuckDB file (as another run would) until released. */
async function holdFile(file: string): Promise<{ release: () => Promise<void> }> {
  const script = `import { DuckDBInstance } from '@duckdb/node-api';
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    await db.run(\`ATTACH '${file}' AS held\`);
    console.log('held');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    release: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
