/**
 * Sharding a backfill across tasks (src/dates/shard.ts): the shares of a fan-out are disjoint and
 * together cover every selected date, the environment of Cloud Run and Kubernetes is read (or
 * refused) as documented, and `run` and `plan` given a share touch only its dates.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDropDates, type IsoDate } from '../../src/dates/drop-dates.ts';
import {
  MAX_TASK_COUNT,
  TASK_ENV,
  shareOf,
  taskShareFromEnv,
  type TaskShare,
} from '../../src/dates/shard.ts';
import { UsageError } from '../../src/errors.ts';
import { resolveConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { runCommand } from '../../src/commands/run.ts';
import { planCommand } from '../../src/commands/plan.ts';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runCli } from '../support/harnesses/cli.ts';

/** A fixed clock well after every year used here. */
const NOW = new Date('2024-03-06T17:00:00Z');

/** Every share of a `count`-task fan-out over `dates`. */
function sharesOf(dates: readonly IsoDate[], count: number): IsoDate[][] {
  return Array.from({ length: count }, (_, index) => shareOf(dates, { index, count }));
}

/** Asserts the fan-out contract: disjoint, complete, balanced to one date, each share ascending. */
function expectPartition(dates: readonly IsoDate[], shares: readonly IsoDate[][]): void {
  const all = shares.flat();
  expect(new Set(all).size, 'a date is in two shares').toBe(all.length);
  expect([...all].sort()).toEqual([...new Set(dates)].sort());
  const sizes = shares.map((share) => share.length);
  expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  for (const share of shares) expect(share).toEqual([...share].sort());
}

describe('shareOf', () => {
  const year2022 = resolveDropDates({ year: '2022' }, NOW);

  it('splits the 53 drop dates of 2022 into disjoint, complete, balanced shares for 1 to 7 tasks', () => {
    expect(year2022).toHaveLength(53);
    for (let count = 1; count <= 7; count++) {
      const shares = sharesOf(year2022, count);
      expectPartition(year2022, shares);
      // Round-robin: task i takes the i-th, (i+count)-th, ... date.
      expect(shares[0]?.[0]).toBe('2022-01-01');
      if (count > 1) expect(shares[1]?.[0]).toBe('2022-01-08');
    }
    expect(sharesOf(year2022, 1)[0]).toEqual(year2022);
    expect(sharesOf(year2022, 7).map((share) => share.length)).toEqual([8, 8, 8, 8, 7, 7, 7]);
  });

  it('is the same whatever order the dates come in, and ignores duplicates', () => {
    const scrambled = [...year2022].reverse().concat(year2022.slice(0, 5));
    for (let index = 0; index < 4; index++) {
      expect(shareOf(scrambled, { index, count: 4 })).toEqual(shareOf(year2022, { index, count: 4 }));
    }
  });

  it('gives empty shares when there are more tasks than dates', () => {
    const june = resolveDropDates({ year: '2023', month: '6' }, NOW);
    const shares = sharesOf(june, 6);
    expectPartition(june, shares);
    expect(shares.map((share) => share.length)).toEqual([1, 1, 1, 1, 0, 0]);
  });

  it('partitions any year and any range for any task count (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2010, max: 2023 }), fc.integer({ min: 1, max: 60 }), (year, count) => {
        const dates = resolveDropDates({ year: String(year) }, NOW);
        expectPartition(dates, sharesOf(dates, count));
      }),
    );
    const day = fc.integer({ min: Date.UTC(2010, 4, 5), max: Date.UTC(2024, 1, 28) });
    fc.assert(
      fc.property(day, day, fc.integer({ min: 1, max: 12 }), (a, b, count) => {
        const [from, to] = [a, b].sort((x, y) => x - y).map((t) => new Date(t).toISOString().slice(0, 10));
        // A range of less than a week may hold no drop date: resolveDropDates refuses it.
        fc.pre(b - a >= 7 * 86_400_000 || a - b >= 7 * 86_400_000);
        const dates = resolveDropDates({ from, to }, NOW);
        expectPartition(dates, sharesOf(dates, count));
      }),
    );
  });

  it('keeps every earlier date in its share when a new drop date is added at the end', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2011, max: 2023 }), fc.integer({ min: 1, max: 9 }), (year, count) => {
        const dates = resolveDropDates({ year: String(year) }, NOW);
        const earlier = dates.slice(0, -1);
        for (let index = 0; index < count; index++) {
          const before = shareOf(earlier, { index, count });
          expect(shareOf(dates, { index, count }).slice(0, before.length)).toEqual(before);
        }
      }),
    );
  });
});

describe('taskShareFromEnv', () => {
  const share = (env: Record<string, string>): TaskShare | undefined => taskShareFromEnv(env);

  it('is undefined when nothing asks for sharding (empty values count as unset)', () => {
    expect(share({})).toBeUndefined();
    expect(share({ PATH: '/usr/bin', [TASK_ENV.index]: '', [TASK_ENV.count]: ' ' })).toBeUndefined();
  });

  it("reads Cloud Run's task index and count", () => {
    expect(share({ CLOUD_RUN_TASK_INDEX: '0', CLOUD_RUN_TASK_COUNT: '1' })).toEqual({ index: 0, count: 1 });
    expect(share({ CLOUD_RUN_TASK_INDEX: '6', CLOUD_RUN_TASK_COUNT: '7' })).toEqual({ index: 6, count: 7 });
    // A count that agrees with Cloud Run's is harmless.
    expect(
      share({ CLOUD_RUN_TASK_INDEX: '2', CLOUD_RUN_TASK_COUNT: '4', MTA_INGEST_TASK_COUNT: '4' }),
    ).toEqual({
      index: 2,
      count: 4,
    });
  });

  it("reads a Kubernetes Indexed Job's completion index with MTA_INGEST_TASK_COUNT", () => {
    expect(share({ JOB_COMPLETION_INDEX: '3', MTA_INGEST_TASK_COUNT: '5' })).toEqual({ index: 3, count: 5 });
  });

  it('takes an explicit share over the runtime of a one-task execution (rerunning one task)', () => {
    expect(share({ MTA_INGEST_TASK_INDEX: '3', MTA_INGEST_TASK_COUNT: '8' })).toEqual({ index: 3, count: 8 });
    expect(
      share({
        MTA_INGEST_TASK_INDEX: '3',
        MTA_INGEST_TASK_COUNT: '8',
        CLOUD_RUN_TASK_INDEX: '0',
        CLOUD_RUN_TASK_COUNT: '1',
      }),
    ).toEqual({ index: 3, count: 8 });
    expect(
      share({ MTA_INGEST_TASK_INDEX: '5', MTA_INGEST_TASK_COUNT: '8', JOB_COMPLETION_INDEX: '0' }),
    ).toEqual({
      index: 5,
      count: 8,
    });
  });

  const refused: [string, Record<string, string>, RegExp][] = [
    [
      'index = count',
      { CLOUD_RUN_TASK_INDEX: '4', CLOUD_RUN_TASK_COUNT: '4' },
      /CLOUD_RUN_TASK_INDEX=4 is not below/,
    ],
    [
      'index > count',
      { JOB_COMPLETION_INDEX: '9', MTA_INGEST_TASK_COUNT: '3' },
      /JOB_COMPLETION_INDEX=9 is not below/,
    ],
    [
      'a negative index',
      { CLOUD_RUN_TASK_INDEX: '-1', CLOUD_RUN_TASK_COUNT: '4' },
      /"-1" is not a whole number/,
    ],
    [
      'a fraction',
      { MTA_INGEST_TASK_INDEX: '1.5', MTA_INGEST_TASK_COUNT: '4' },
      /"1\.5" is not a whole number/,
    ],
    ['hex', { MTA_INGEST_TASK_INDEX: '0x1', MTA_INGEST_TASK_COUNT: '4' }, /"0x1" is not a whole number/],
    ['a word', { CLOUD_RUN_TASK_INDEX: 'two', CLOUD_RUN_TASK_COUNT: '4' }, /"two" is not a whole number/],
    ['padding', { CLOUD_RUN_TASK_INDEX: ' 1', CLOUD_RUN_TASK_COUNT: '4' }, /" 1" is not a whole number/],
    ['a zero count', { MTA_INGEST_TASK_INDEX: '0', MTA_INGEST_TASK_COUNT: '0' }, /not a task count/],
    [
      'too many tasks',
      { MTA_INGEST_TASK_INDEX: '0', MTA_INGEST_TASK_COUNT: String(MAX_TASK_COUNT + 1) },
      /not a task count/,
    ],
    [
      'a Kubernetes index without a count',
      { JOB_COMPLETION_INDEX: '2' },
      /JOB_COMPLETION_INDEX=2 needs MTA_INGEST_TASK_COUNT.*completions/,
    ],
    ['an explicit index without a count', { MTA_INGEST_TASK_INDEX: '2' }, /needs MTA_INGEST_TASK_COUNT/],
    ['a Cloud Run index without a count', { CLOUD_RUN_TASK_INDEX: '2' }, /needs CLOUD_RUN_TASK_COUNT/],
    ['a Cloud Run count without an index', { CLOUD_RUN_TASK_COUNT: '2' }, /needs CLOUD_RUN_TASK_INDEX/],
    ['a count without any index', { MTA_INGEST_TASK_COUNT: '4' }, /no task index is/],
    [
      'a count contradicting Cloud Run',
      { CLOUD_RUN_TASK_INDEX: '1', CLOUD_RUN_TASK_COUNT: '4', MTA_INGEST_TASK_COUNT: '5' },
      /contradicts CLOUD_RUN_TASK_COUNT=4/,
    ],
    [
      'two runtimes at once',
      {
        CLOUD_RUN_TASK_INDEX: '1',
        CLOUD_RUN_TASK_COUNT: '4',
        JOB_COMPLETION_INDEX: '1',
        MTA_INGEST_TASK_COUNT: '4',
      },
      /both set/,
    ],
    [
      'an explicit index in a Cloud Run fan-out',
      {
        MTA_INGEST_TASK_INDEX: '1',
        MTA_INGEST_TASK_COUNT: '4',
        CLOUD_RUN_TASK_INDEX: '2',
        CLOUD_RUN_TASK_COUNT: '4',
      },
      /every task would take the same share/,
    ],
    [
      'an explicit index in a Kubernetes fan-out',
      { MTA_INGEST_TASK_INDEX: '1', MTA_INGEST_TASK_COUNT: '4', JOB_COMPLETION_INDEX: '3' },
      /every task would take the same share/,
    ],
  ];
  for (const [name, env, message] of refused) {
    it(`refuses ${name} with a one-line usage error`, () => {
      expect(() => share(env)).toThrow(UsageError);
      expect(() => share(env)).toThrow(message);
      try {
        share(env);
      } catch (error) {
        expect((error as UsageError).exitCode).toBe(2);
        expect((error as Error).message).not.toContain('\n');
      }
    });
  }
});

describe('run and plan with a share', () => {
  /** 13 drop dates, 2023-04-01 to 2023-06-24; the source serves none of them (404). */
  const selection = { from: '2023-04-01', to: '2023-06-24' };
  const runNow = new Date('2023-07-03T16:00:00Z');
  const count = 3;
  let server: SourceServer;
  let dir: string;

  beforeAll(async () => {
    server = await startSourceServer();
    dir = await mkdtemp(join(tmpdir(), 'mta-ingest-shard-'));
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const config = () =>
    resolveConfig(
      {
        sourceUrl: server.baseUrl,
        lake: join(dir, 'lake'),
        warehouse: join(dir, 'wh.duckdb'),
        workDir: dir,
        fetchAttempts: '1',
      },
      {},
    );

  it('each task fetches only its own dates, and the tasks together fetch each date once', async () => {
    const all = resolveDropDates(selection, runNow);
    expect(all).toHaveLength(13);
    const fetched: string[] = [];
    for (let index = 0; index < count; index++) {
      server.requests.length = 0;
      const lines: string[] = [];
      const summary = await runCommand({
        selection,
        force: false,
        config: config(),
        now: runNow,
        log: createLogger('info', { write: (line: string) => void lines.push(line) }),
        share: { index, count },
      });
      const mine = shareOf(all, { index, count });
      expect(summary.weeks.map((week) => week.dropDate)).toEqual(mine);
      expect(summary.weeks.every((week) => week.outcome === 'not-published')).toBe(true);
      expect(summary.exitCode).toBe(3);
      const files = server.requests.map((request) => request.path.split('/').at(-1) ?? '');
      expect(files).toEqual(mine.map((date) => `turnstile_${date.slice(2).replaceAll('-', '')}.txt`));
      fetched.push(...files);

      const start = lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((e) => e.event === 'run.start');
      expect(start).toMatchObject({
        weeks: mine.length,
        first: mine[0],
        last: mine.at(-1),
        share: { index, count, selectedWeeks: 13 },
      });
    }
    expect(fetched).toHaveLength(13);
    expect(new Set(fetched).size).toBe(13);
  });

  it('a run without a share takes every date; a task with an empty share succeeds doing nothing', async () => {
    server.requests.length = 0;
    const everything = await runCommand({
      selection: { year: '2023', month: '6' },
      force: false,
      config: config(),
      now: runNow,
      log: createLogger('silent'),
    });
    expect(everything.weeks).toHaveLength(4);
    expect(server.requests).toHaveLength(4);

    server.requests.length = 0;
    const idle = await runCommand({
      selection: { year: '2023', month: '6' },
      force: false,
      config: config(),
      now: runNow,
      log: createLogger('silent'),
      share: { index: 5, count: 6 },
    });
    expect(idle.weeks).toEqual([]);
    expect(idle.exitCode).toBe(0);
    expect(server.requests).toHaveLength(0);
  });

  it('plan lists exactly the dates run would take with the same share', async () => {
    const all = resolveDropDates(selection, runNow);
    for (let index = 0; index < count; index++) {
      const weeks = await planCommand({
        selection,
        force: false,
        config: config(),
        now: runNow,
        share: { index, count },
      });
      expect(weeks.map((week) => week.dropDate)).toEqual(shareOf(all, { index, count }));
    }
    const unshared = await planCommand({ selection, force: false, config: config(), now: runNow });
    expect(unshared.map((week) => week.dropDate)).toEqual(all);
  });
});

describe('the command line takes its share from the environment', () => {
  const env = (extra: Record<string, string>) => ({ MTA_INGEST_NOW: NOW.toISOString(), ...extra });

  it('plan as Cloud Run task 1 of 3 and as Kubernetes index 2 of 3 lists exactly those shares', async () => {
    const all = resolveDropDates({ year: '2022' }, NOW);
    const cloudRun = await runCli(['plan', '--year', '2022', '--json'], {
      env: env({ CLOUD_RUN_TASK_INDEX: '1', CLOUD_RUN_TASK_COUNT: '3' }),
    });
    expect(cloudRun.code, cloudRun.stderr).toBe(0);
    const cloudRunDates = (JSON.parse(cloudRun.stdout) as { weeks: { dropDate: string }[] }).weeks.map(
      (w) => w.dropDate,
    );
    expect(cloudRunDates).toEqual(shareOf(all, { index: 1, count: 3 }));

    const kubernetes = await runCli(['plan', '--year', '2022', '--json'], {
      env: env({ JOB_COMPLETION_INDEX: '2', MTA_INGEST_TASK_COUNT: '3' }),
    });
    expect(kubernetes.code, kubernetes.stderr).toBe(0);
    const kubernetesDates = (JSON.parse(kubernetes.stdout) as { weeks: { dropDate: string }[] }).weeks.map(
      (w) => w.dropDate,
    );
    expect(kubernetesDates).toEqual(shareOf(all, { index: 2, count: 3 }));
    expect(new Set([...cloudRunDates, ...kubernetesDates]).size).toBe(
      cloudRunDates.length + kubernetesDates.length,
    );
  });

  it('run refuses an index without a count with exit 2 and one line, before any request', async () => {
    const result = await runCli(['run', '--date', '2022-06-04', '--source-url', 'http://127.0.0.1:9/'], {
      env: env({ JOB_COMPLETION_INDEX: '0' }),
    });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^mta-ingest: .*MTA_INGEST_TASK_COUNT/);
  });
});
