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
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { realWeekFile, REAL_WEEK_ROWS } from '../support/fixtures/real-week.ts';
import { duckdbTotals } from '../support/harnesses/crash-harness.ts';
import { at, jsonSummary, startCli, type SignalRun } from '../support/harnesses/signal-run.ts';
import {
  FILE,
  NOW,
  WEEK,
  bigWeekFile,
  expectNothingHalfWritten,
  expectStopped,
  holdFile,
  signalRunArgs,
  measured,
} from '../support/harnesses/signal-fixtures.ts';

let source: SourceServer;
let realWeek: string;
let base: string;
let serial = 0;
let bigWeek: string;

function freshDir(): Promise<string> {
  const dir = join(base, `t${++serial}`);
  return mkdir(join(dir, 'work'), { recursive: true }).then(() => dir);
}

function startRun(dir: string, ...selection: string[]): SignalRun {
  return startCli(signalRunArgs(source.baseUrl, dir, ...selection), { MTA_INGEST_NOW: NOW });
}

/** A plain rerun on the real week loads it exactly. */
async function expectRerunLoads(dir: string, ...extra: string[]): Promise<void> {
  source.serve({ name: FILE, path: realWeek });
  source.fault(FILE, undefined);
  const rerun = await startCli([...signalRunArgs(source.baseUrl, dir), ...extra], {
    MTA_INGEST_NOW: NOW,
  }).exited();
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
    // A signal is no network fault: the advice is how to resume.
    expect(summary.weeks[0]!.advice).toMatch(
      /^stopped by a signal; nothing was half-written: to resume, run the same command again .*--date 2023-06-03$/,
    );
    expect(summary.weeks[1]!.advice).toMatch(
      /^not begun: .*to resume, run the same command again .*--date 2023-06-10$/,
    );
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
    const run = startCli([...signalRunArgs(source.baseUrl, dir), '--force'], { MTA_INGEST_NOW: NOW });
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
