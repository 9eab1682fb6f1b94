/**
 * SIGTERM and SIGINT stop every command other than a local run's stages (signals.test.ts)
 * within 3 s: a BigQuery load job's polling, demo, plan, status, verify, report, blocks apply,
 * deploy prefect, a run inside a Prefect flow run whose server hangs, a run as PID 1; and the
 * hard exit, on a second signal or when the grace bound passes. The real CLI runs as a child
 * process and the signal goes when a server has taken its request or the CLI logged its wait.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { realWeekFile, REAL_WEEK_ROWS } from '../support/fixtures/real-week.ts';
import { startFakeGcs, type FakeGcs } from '../support/peers/fake-gcs.ts';
import { startBigQueryStandin, type BigQueryStandin } from '../support/peers/bigquery-standin.ts';
import { installProcessStop } from '../../src/process-stop.ts';
import {
  at,
  jsonSummary,
  startCli,
  startSilentServer,
  type SignalRun,
} from '../support/harnesses/signal-run.ts';
import {
  BOUND_MS,
  FILE,
  NOW,
  WEEK,
  expectStopped,
  holdFile,
  signalRunArgs,
  measured,
} from '../support/harnesses/signal-fixtures.ts';

const BUCKET = 'signal-lake';
const PROJECT = 'test-project';

let source: SourceServer;
let realWeek: string;
let base: string;
let serial = 0;

function freshDir(): Promise<string> {
  const dir = join(base, `t${++serial}`);
  return mkdir(join(dir, 'work'), { recursive: true }).then(() => dir);
}

function startRun(dir: string, ...selection: string[]): SignalRun {
  return startCli(signalRunArgs(source.baseUrl, dir, ...selection), { MTA_INGEST_NOW: NOW });
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'mta-ingest-signal-commands-'));
  realWeek = await realWeekFile();
  source = await startSourceServer({ files: [{ name: FILE, path: realWeek }] });
}, 120_000);

afterAll(async () => {
  await source.close();
  await rm(base, { recursive: true, force: true });
  console.log(`stop times (signal → exit):\n  ${measured.join('\n  ')}`);
});

describe('BigQuery: a load job still RUNNING is no longer waited for', () => {
  let gcs: FakeGcs;
  let standin: BigQueryStandin;
  beforeAll(async () => {
    gcs = await startFakeGcs({ buckets: [BUCKET], location: 'US' });
    standin = await startBigQueryStandin({
      expectedToken: 'emulator',
      gcsUrl: gcs.url,
      // Load jobs run on; the query jobs that read and record the load state finish.
      defaultScript: (configuration) => ({ states: configuration.load ? ['RUNNING'] : ['DONE'] }),
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
      // The load job's poll (the load state is read by query jobs before it).
      if (request.method === 'GET' && request.path.includes('/jobs/mta_ingest_load_')) polled();
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
      const run = startCli(signalRunArgs(source.baseUrl, await freshDir()), {
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
    const run = startCli(signalRunArgs(source.baseUrl, dir), { MTA_INGEST_NOW: NOW }, [
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
    // The second signal only once the first is taken: two signals sent back to back may be
    // handled in either order (seen once in CI: SIGTERM first, exit 143).
    await run.until(
      (e) => e.event === 'stderr.line' && /^mta-ingest: SIGINT: stopping/.test(String(e.message)),
    );
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
