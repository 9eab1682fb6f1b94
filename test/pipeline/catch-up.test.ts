/**
 * Catch-up end to end: the real CLI, as a scheduler runs it every Sunday (MTA_INGEST_NOW), against
 * a source server that posts some weeks late and serves (or not) the MTA's index page. Each run's
 * requests to the server say exactly which weeks it fetched.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runCli, runWorker, type CliResult } from '../support/harnesses/cli.ts';
import { fileOf, smallWeek, sundayAfter } from '../support/fixtures/small-weeks.ts';

const W0 = '2023-04-29';
const W1 = '2023-05-06';
const W2 = '2023-05-13';
const W3 = '2023-05-20';
const W4 = '2023-05-27';
const W5 = '2023-06-03';

let server: SourceServer;
let dir: string;

/** Serve these weeks (and only these). */
async function publish(...dates: string[]): Promise<void> {
  for (const date of dates) server.serve({ name: fileOf(date), content: await smallWeek(date) });
}

/** A run on the Sunday after `sunday`; returns what it printed and the weeks it asked for. */
async function runOn(
  sunday: string,
  ...args: string[]
): Promise<CliResult & { fetched: string[]; index: number }> {
  server.requests.length = 0;
  const result = await runWorker({ sourceUrl: server.baseUrl, dir, now: sundayAfter(sunday) }, ...args);
  const files = server.requests
    .map((r) => /turnstile_(\d\d)(\d\d)(\d\d)\.txt$/.exec(r.path))
    .filter((m) => m !== null);
  return {
    ...result,
    fetched: files.map((m) => `20${m[1]}-${m[2]}-${m[3]}`),
    index: server.requests.filter((r) => r.path === server.indexPath).length,
  };
}

/** The weeks whose lines say `outcome`. */
function weeksWith(stdout: string, outcome: string): string[] {
  return [...stdout.matchAll(new RegExp(`^(\\d{4}-\\d{2}-\\d{2})\\s+${outcome}\\s`, 'gm'))].map((m) => m[1]!);
}

beforeAll(async () => {
  server = await startSourceServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-catch-up-'));
  for (const date of [W0, W1, W2, W3, W4, W5]) server.remove(fileOf(date));
  server.index('served');
  return () => rm(dir, { recursive: true, force: true });
});

describe('catch-up over several Sundays', () => {
  it('takes the latest alone on an empty warehouse, and a week posted late at the next run', async () => {
    await publish(W0, W1);
    const first = await runOn(W1);
    expect(first.code, first.stderr).toBe(0);
    expect(first.fetched).toEqual([W1]); // not W0: history is a backfill's
    expect(first.index).toBe(1);
    expect(weeksWith(first.stdout, 'loaded')).toEqual([W1]);

    // W2 is late: the Sunday after it, the server has nothing new.
    const late = await runOn(W2);
    expect(late.code).toBe(3);
    expect(late.fetched).toEqual([W2]);
    expect(weeksWith(late.stdout, 'not-published')).toEqual([W2]);

    // A week on, W2 and W3 are both up: the run takes both, in order.
    await publish(W2, W3);
    const next = await runOn(W3);
    expect(next.code, next.stderr).toBe(0);
    expect(next.fetched).toEqual([W2, W3]);
    expect(weeksWith(next.stdout, 'loaded')).toEqual([W2, W3]);
    expect(next.stdout).toContain(`catch-up: 1 missing earlier week (${W2}) before the latest, ${W3}`);

    // Nothing missing: only the latest, checked unchanged.
    const again = await runOn(W3);
    expect(again.code).toBe(0);
    expect(again.fetched).toEqual([W3]);
    expect(weeksWith(again.stdout, 'already-loaded')).toEqual([W3]);
  }, 60_000);

  it('lands a late week after a later one has landed (a gap, not only a tail)', async () => {
    await publish(W1);
    expect((await runOn(W1)).code).toBe(0);
    await publish(W3); // W2 still not posted when W3 is
    const skipped = await runOn(W3);
    expect(skipped.fetched).toEqual([W3]); // W2 is not on the index page: not asked for
    expect(skipped.stdout).toContain(`${W2} not listed on the index page`);
    expect(skipped.code).toBe(0);
    await publish(W2);
    const filled = await runOn(W4);
    expect(filled.fetched).toEqual([W2, W4]);
    expect(weeksWith(filled.stdout, 'loaded')).toEqual([W2]);
    expect(weeksWith(filled.stdout, 'not-published')).toEqual([W4]);
  }, 60_000);

  it.each(['absent', 'broken', 'error'] as const)(
    'without a usable index page (%s), warns and asks for each week by the Saturday rule',
    async (mode) => {
      await publish(W1);
      expect((await runOn(W1)).code).toBe(0);
      await publish(W3, W4);
      server.index(mode);
      const result = await runOn(W4);
      expect(result.fetched).toEqual([W2, W3, W4]); // W2 probed: 404
      expect(weeksWith(result.stdout, 'not-published')).toEqual([W2]);
      expect(weeksWith(result.stdout, 'loaded')).toEqual([W3, W4]);
      expect(result.code).toBe(3);
      expect(result.stdout).toMatch(
        /the index page http:\/\/\S+\/turnstile\.html could not be used \(.+\): taking Saturdays as drop dates/,
      );
      expect(result.stderr).toMatch(/"severity":"WARNING".*"event":"source-index".*could not be used/);
    },
    60_000,
  );

  it('stops at --catch-up-weeks, says so in one line, and that line backfills the rest', async () => {
    await publish(W1, W2, W3, W4, W5);
    expect((await runOn(W1)).code).toBe(0);
    const bounded = await runOn(W5, '--catch-up-weeks', '2');
    expect(bounded.code, bounded.stderr).toBe(0);
    expect(bounded.fetched).toEqual([W4, W5]);
    const line = `catch-up: 2 missing weeks from ${W2} to ${W3} are older than the last 2 drop dates (--catch-up-weeks): load them with npx mta-ingest run --from ${W2} --to ${W3} --missing`;
    expect(bounded.stdout.split('\n')).toContain(line);
    expect(bounded.stderr).toContain('"event":"catch-up.cut-off"');
    // --json: the same line in the summary's notes.
    const json = await runOn(W5, '--catch-up-weeks', '2', '--json');
    expect((JSON.parse(json.stdout) as { notes: string[] }).notes).toContain(line);

    // The next run (here its plan, bounded by the environment variable) says it again.
    const byEnv = await runCli(
      [
        'plan',
        '--source-url',
        server.baseUrl,
        '--lake',
        join(dir, 'lake'),
        '--warehouse',
        join(dir, 'wh.duckdb'),
        '--json',
      ],
      { env: { MTA_INGEST_NOW: sundayAfter(W5), MTA_INGEST_CATCH_UP_WEEKS: '1' } },
    );
    expect(byEnv.code, byEnv.stderr).toBe(0);
    expect(byEnv.stderr).toContain(`catch-up: 2 missing weeks from ${W2} to ${W3}`);

    // The line's own command loads exactly the two weeks.
    const backfill = await runOn(W5, '--from', W2, '--to', W3, '--missing');
    expect(backfill.code).toBe(0);
    expect(backfill.fetched).toEqual([W2, W3]);
    expect((await runOn(W5)).stdout).not.toContain('catch-up:');
  }, 60_000);

  it("catches up in a job of one task (Cloud Run's weekly job), never in one task of a fan-out", async () => {
    await publish(W1, W2, W3);
    expect((await runOn(W1)).code).toBe(0);
    const target = [
      '--source-url',
      server.baseUrl,
      '--lake',
      join(dir, 'lake'),
      '--warehouse',
      join(dir, 'wh.duckdb'),
    ];
    const plan = (env: Record<string, string>) =>
      runCli(['plan', ...target, '--json'], { env: { MTA_INGEST_NOW: sundayAfter(W3), ...env } });
    const dates = (result: CliResult) =>
      (JSON.parse(result.stdout) as { weeks: { dropDate: string }[] }).weeks.map((w) => w.dropDate);
    expect(dates(await plan({ CLOUD_RUN_TASK_INDEX: '0', CLOUD_RUN_TASK_COUNT: '1' }))).toEqual([W2, W3]);
    // Task 1 of 2 takes its share of the latest week alone: none.
    expect(dates(await plan({ CLOUD_RUN_TASK_INDEX: '1', CLOUD_RUN_TASK_COUNT: '2' }))).toEqual([]);
    expect(dates(await plan({ CLOUD_RUN_TASK_INDEX: '0', CLOUD_RUN_TASK_COUNT: '2' }))).toEqual([W3]);
  }, 60_000);

  it('plans the same weeks a run takes', async () => {
    await publish(W1, W3, W4);
    expect((await runOn(W1)).code).toBe(0);
    const target = [
      '--source-url',
      server.baseUrl,
      '--lake',
      join(dir, 'lake'),
      '--warehouse',
      join(dir, 'wh.duckdb'),
    ];
    const plan = await runCli(['plan', ...target, '--json'], { env: { MTA_INGEST_NOW: sundayAfter(W4) } });
    expect(plan.code, plan.stderr).toBe(0);
    const planned = (JSON.parse(plan.stdout) as { weeks: { dropDate: string }[] }).weeks.map(
      (week) => week.dropDate,
    );
    expect(planned).toEqual([W3, W4]);
    const run = await runOn(W4);
    expect(run.fetched).toEqual(planned);
  }, 60_000);
});

describe('run --missing', () => {
  it('loads only the weeks of a range the warehouse does not hold, fetching no loaded one', async () => {
    await publish(W1, W2, W3, W4, W5);
    expect((await runOn(W5, '--date', W1)).code).toBe(0);
    expect((await runOn(W5, '--date', W3)).code).toBe(0);
    const result = await runOn(W5, '--from', W1, '--to', W5, '--missing');
    expect(result.code, result.stderr).toBe(0);
    expect(result.fetched).toEqual([W2, W4, W5]);
    expect(result.index).toBe(0);
    expect(weeksWith(result.stdout, 'loaded')).toEqual([W2, W4, W5]);
    expect(result.stdout).toContain(
      '--missing: 2 selected weeks are loaded already and not fetched; 3 to load',
    );

    const none = await runOn(W5, '--year', '2023', '--month', '5', '--missing');
    expect(none.code).toBe(0);
    expect(none.fetched).toEqual([]);

    const refused = await runOn(W5, '--missing', '--force');
    expect(refused.code).toBe(2);
    expect(refused.fetched).toEqual([]);
  }, 60_000);
});
