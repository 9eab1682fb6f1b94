/**
 * Freshness through the real CLI: `status` over a lake and a DuckDB warehouse holding two weeks
 * with a gap between them and a suspect week after them, as of a later Sunday (MTA_INGEST_NOW),
 * in text and `--json`, and `status --fail-if-behind N`, a monitor's exit code.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runCli, runWorker } from '../support/harnesses/cli.ts';
import { fileOf, smallWeek, sundayAfter } from '../support/fixtures/small-weeks.ts';

const W1 = '2023-05-06'; // loaded
const W2 = '2023-05-13'; // never published: the gap
const W3 = '2023-05-20'; // loaded: the latest loaded week
const W4 = '2023-05-27'; // held back as suspect
const W5 = '2023-06-03'; // the latest expected on the Sunday after it

let server: SourceServer;
let dir: string;

// As npx runs it (npm_command=exec), so that the hints' command is `npx mta-ingest` whatever the
// machine has on its PATH (cli/invocation.ts).
const AS_NPX = { npm_command: 'exec' };
const status = (now: string, ...args: string[]) =>
  runCli(['status', '--lake', join(dir, 'lake'), '--warehouse', join(dir, 'wh.duckdb'), ...args], {
    env: { MTA_INGEST_NOW: now, ...AS_NPX },
  });

beforeAll(async () => {
  server = await startSourceServer();
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-freshness-'));
  for (const date of [W1, W3]) server.serve({ name: fileOf(date), content: await smallWeek(date) });
  // W4's first half, cut on a line boundary: the plausibility gate holds it back.
  const whole = await smallWeek(W4);
  const cut = whole.subarray(0, whole.length / 2);
  server.serve({ name: fileOf(W4), content: Buffer.from(cut.subarray(0, cut.lastIndexOf(0x0a) + 1)) });
  const target = { sourceUrl: server.baseUrl, dir, now: sundayAfter(W3) };
  for (const date of [W1, W3]) {
    const loaded = await runWorker(target, '--date', date);
    expect(loaded.code, loaded.stderr).toBe(0);
  }
  const suspect = await runCli(
    [
      'run',
      '--source-url',
      server.baseUrl,
      '--lake',
      join(dir, 'lake'),
      '--warehouse',
      join(dir, 'wh.duckdb'),
      '--date',
      W4,
    ],
    { env: { MTA_INGEST_NOW: sundayAfter(W4), MTA_INGEST_WORK_DIR: dir, MTA_INGEST_ACCEPT: '' } },
  );
  expect(suspect.code, suspect.stdout).toBe(4);
}, 60_000);
afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('status: freshness', () => {
  it('names the latest loaded and expected weeks, the lag, the gap and the suspect week, as text', async () => {
    const result = await status(sundayAfter(W5));
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    // The week table first (two loaded weeks, the suspect one not loaded), then freshness.
    expect(lines.filter((line) => /^\d{4}-/.test(line)).map((line) => line.slice(0, 10))).toEqual([
      W1,
      W3,
      W4,
    ]);
    expect(lines.slice(-3)).toEqual([
      `latest loaded    ${W3}; the latest expected is ${W5}: 2 weeks behind (${W4}, ${W5} not loaded) → npx mta-ingest run (catches up the last weeks; the MTA posts each week on Saturday)`,
      `gaps             1 week not loaded since the first loaded week, ${W1}: ${W2} → npx mta-ingest run --from ${W2} --to ${W2} --missing`,
      expect.stringMatching(
        new RegExp(
          `^suspect          ${W4}: covers 0 of the 768 booths .* → npx mta-ingest versions --date ${W4}, then npx mta-ingest run --date ${W4} --accept ${W4} if it is right$`,
        ),
      ),
    ]);
  });

  it('says the same in --json: an object with the freshness and the weeks', async () => {
    const result = await status(sundayAfter(W5), '--json');
    expect(result.code, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout) as {
      freshness: Record<string, unknown>;
      weeks: { dropDate: string; warehouse: string }[];
    };
    expect(json.freshness).toEqual({
      latestExpected: W5,
      latestLoaded: W3,
      firstLoaded: W1,
      weeksBehind: 2,
      behind: [W4, W5],
      gaps: [{ first: W2, last: W2, weeks: 1 }],
      suspect: [{ dropDate: W4, reasons: [expect.stringMatching(/^covers 0 of the 768 booths/)] }],
    });
    expect(json.weeks.map((week) => [week.dropDate, week.warehouse])).toEqual([
      [W1, 'loaded'],
      [W3, 'loaded'],
      [W4, 'not loaded'],
    ]);
  });

  it('is up to date on the Sunday after the latest loaded week, gap and suspect week still named', async () => {
    const result = await status(sundayAfter(W3), '--json', '--fail-if-behind', '1');
    expect(result.code, result.stderr).toBe(0);
    const { freshness } = JSON.parse(result.stdout) as { freshness: Record<string, unknown> };
    expect(freshness).toMatchObject({
      latestExpected: W3,
      weeksBehind: 0,
      behind: [],
      gaps: [{ first: W2 }],
    });
    expect((await status(sundayAfter(W3))).stdout).toContain(
      `latest loaded    ${W3}, the latest expected: up to date`,
    );
  });
});

describe('status --fail-if-behind N: a monitor', () => {
  it('exits 6 when the warehouse is N or more weeks behind, 0 when fewer, printing the same report', async () => {
    const now = sundayAfter(W5); // 2 weeks behind
    const failing = await status(now, '--fail-if-behind', '2');
    expect(failing.code, failing.stderr).toBe(6);
    expect(failing.stdout).toContain('2 weeks behind');
    const json = await status(now, '--json', '--fail-if-behind', '1');
    expect(json.code).toBe(6);
    expect((JSON.parse(json.stdout) as { freshness: { weeksBehind: number } }).freshness.weeksBehind).toBe(2);
    const passing = await status(now, '--fail-if-behind', '3');
    expect(passing.code, passing.stderr).toBe(0);
  });

  it('exits 6 on a warehouse holding no week, and says so', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'mta-ingest-freshness-empty-'));
    try {
      const result = await runCli(
        [
          'status',
          '--lake',
          join(empty, 'lake'),
          '--warehouse',
          join(empty, 'wh.duckdb'),
          '--fail-if-behind',
          '4',
        ],
        { env: { MTA_INGEST_NOW: sundayAfter(W5), ...AS_NPX } },
      );
      expect(result.code, result.stderr).toBe(6);
      expect(result.stdout).toContain(
        `latest loaded    none; the latest expected is ${W5} → npx mta-ingest run`,
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it.each(['0', '-1', 'two', '1.5', ''])(
    'refuses --fail-if-behind %j with exit 2, reading nothing',
    async (value) => {
      const result = await status(sundayAfter(W5), '--fail-if-behind', value);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(
        /^mta-ingest: --fail-if-behind .* is not a number of weeks of at least 1/,
      );
    },
  );
});
