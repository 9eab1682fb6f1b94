/**
 * The interval view and `report`: per-station sums on the real week equal a hand-written query
 * over the raw source (pairing readings by a self-join rather than LAG); a constructed reset
 * and a constructed jump are NULL and flagged; intervals run across week boundaries.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runCli } from '../support/harnesses/cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { realWeekFile } from '../support/fixtures/real-week.ts';
import { MIN_CAP } from '../../src/warehouse/intervals-view.ts';

let server: SourceServer;
let dir: string;
let realWeek: string;

const HEADER = `C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS${' '.repeat(63)}`;
const line = (
  ca: string,
  unit: string,
  station: string,
  date: string,
  time: string,
  entries: number,
  exits: number,
) =>
  `${ca},${unit},02-00-00,${station},NQR456W,BMT,${date},${time},REGULAR,${String(entries).padStart(10, '0')},${String(exits).padStart(10, '0')}`;

beforeAll(async () => {
  realWeek = await realWeekFile();
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-intervals-'));
  server = await startSourceServer({ files: [{ name: 'turnstile_230603.txt', path: realWeek }] });
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function cli(args: string[], warehouse: string, now = '2023-06-05T16:00:00Z') {
  return runCli(
    [
      ...args,
      '--source-url',
      server.baseUrl,
      '--lake',
      join(dir, `${warehouse}-lake`),
      '--warehouse',
      join(dir, `${warehouse}.duckdb`),
    ],
    {
      env: { MTA_INGEST_NOW: now, MTA_INGEST_WORK_DIR: dir },
    },
  );
}

describe('turnstile_intervals on the real week', () => {
  it('sums per station equal a hand-written query over the raw readings, and report shows the top 10', async () => {
    const run = await cli(['run', '--date', '2023-06-03'], 'real');
    expect(run.code, run.stderr).toBe(0);
    const fromView = await query(
      `SELECT station, line_name, sum(entries)::BIGINT AS entries, sum(exits)::BIGINT AS exits
       FROM turnstile_intervals GROUP BY station, line_name ORDER BY station, line_name`,
      join(dir, 'real.duckdb'),
    );
    const byHand = await query(`
      WITH raw AS (
        SELECT row_number() OVER () AS line, trim("C/A") AS ca, trim(UNIT) AS u, trim(SCP) AS s,
               trim(STATION) AS station, trim(LINENAME) AS line_name,
               strptime(trim("DATE") || ' ' || trim("TIME"), '%m/%d/%Y %H:%M:%S') AS t,
               CAST(trim(ENTRIES) AS BIGINT) AS e, CAST(trim(EXITS) AS BIGINT) AS x
        FROM read_csv('${realWeek}', header = true, all_varchar = true)
      ),
      numbered AS (SELECT *, row_number() OVER (PARTITION BY ca, u, s ORDER BY t, line) AS k FROM raw),
      pairs AS (
        SELECT cur.station, cur.line_name, cur.e - prev.e AS de, cur.x - prev.x AS dx,
               greatest(${MIN_CAP}, epoch(cur.t) - epoch(prev.t)) AS cap
        FROM numbered cur JOIN numbered prev
          ON cur.ca = prev.ca AND cur.u = prev.u AND cur.s = prev.s AND cur.k = prev.k + 1
      )
      SELECT station, line_name,
             sum(CASE WHEN de >= 0 AND de <= cap THEN de END)::BIGINT AS entries,
             sum(CASE WHEN dx >= 0 AND dx <= cap THEN dx END)::BIGINT AS exits
      FROM pairs GROUP BY station, line_name ORDER BY station, line_name`);
    expect(fromView.length).toBeGreaterThan(400);
    expect(fromView).toEqual(byHand);

    const report = await cli(['report', '--date', '2023-06-03', '--json'], 'real');
    expect(report.code, report.stderr).toBe(0);
    const top = (JSON.parse(report.stdout) as { stations: { station: string; entries: number }[] }).stations;
    const expectedTop = [...byHand].sort((a, b) => Number(b.entries) - Number(a.entries)).slice(0, 10);
    expect(top.map((s) => [s.station, s.entries])).toEqual(
      expectedTop.map((s) => [s.station, Number(s.entries)]),
    );
    const text = await cli(['report', '--date', '2023-06-03'], 'real');
    expect(text.stdout).toMatch(/Busiest stations, week of drop date 2023-06-03/);
    expect(text.stdout.trimEnd().split('\n')).toHaveLength(12);
  });
});

describe('turnstile_intervals on constructed weeks', () => {
  it('runs across week boundaries, and nulls and flags a reset and a jump', async () => {
    const weekA = [
      HEADER,
      line('A002', 'R051', '59 ST', '05/20/2023', '00:00:00', 1000, 500),
      line('A002', 'R051', '59 ST', '05/20/2023', '04:00:00', 1100, 550),
      line('A002', 'R051', '59 ST', '05/20/2023', '08:00:00', 1200, 600),
    ];
    const weekB = [
      HEADER,
      line('A002', 'R051', '59 ST', '05/27/2023', '00:00:00', 1300, 650), // +100 since last week
      line('A002', 'R051', '59 ST', '05/27/2023', '04:00:00', 50, 700), // entries reset
      line('A002', 'R051', '59 ST', '05/27/2023', '08:00:00', 150, 750),
      line('A002', 'R051', '59 ST', '05/27/2023', '12:00:00', 900_150, 800), // entries jump
      line('A002', 'R051', '59 ST', '05/27/2023', '16:00:00', 900_250, 850),
      line('R101', 'R001', 'WHITEHALL S-FRY', '05/27/2023', '00:00:00', 0, 0),
      line('R101', 'R001', 'WHITEHALL S-FRY', '05/27/2023', '04:00:00', 10, 20),
    ];
    server.serve({ name: 'turnstile_230527.txt', content: `${weekA.join('\n')}\n` });
    server.serve({ name: 'turnstile_230603.txt', content: `${weekB.join('\n')}\n` });
    const run = await cli(['run', '--from', '2023-05-27', '--to', '2023-06-03'], 'constructed');
    expect(run.code, run.stderr).toBe(0);

    const intervals = await query(
      `SELECT drop_date::VARCHAR AS week, strftime(reading_at, '%m-%d %H:%M') AS at, entries, exits, entries_flag, exits_flag
       FROM turnstile_intervals WHERE unit = 'R051' ORDER BY reading_at`,
      join(dir, 'constructed.duckdb'),
    );
    expect(intervals).toEqual([
      {
        week: '2023-05-27',
        at: '05-20 04:00',
        entries: 100n,
        exits: 50n,
        entries_flag: null,
        exits_flag: null,
      },
      {
        week: '2023-05-27',
        at: '05-20 08:00',
        entries: 100n,
        exits: 50n,
        entries_flag: null,
        exits_flag: null,
      },
      {
        week: '2023-06-03',
        at: '05-27 00:00',
        entries: 100n,
        exits: 50n,
        entries_flag: null,
        exits_flag: null,
      },
      {
        week: '2023-06-03',
        at: '05-27 04:00',
        entries: null,
        exits: 50n,
        entries_flag: 'backwards',
        exits_flag: null,
      },
      {
        week: '2023-06-03',
        at: '05-27 08:00',
        entries: 100n,
        exits: 50n,
        entries_flag: null,
        exits_flag: null,
      },
      {
        week: '2023-06-03',
        at: '05-27 12:00',
        entries: null,
        exits: 50n,
        entries_flag: 'jump',
        exits_flag: null,
      },
      {
        week: '2023-06-03',
        at: '05-27 16:00',
        entries: 100n,
        exits: 50n,
        entries_flag: null,
        exits_flag: null,
      },
    ]);

    const report = await cli(['report', '--date', '2023-06-03', '--json'], 'constructed');
    expect(JSON.parse(report.stdout)).toEqual({
      version: 1,
      dropDate: '2023-06-03',
      stations: [
        { station: '59 ST', lineName: 'NQR456W', entries: 300, exits: 250, turnstiles: 1 },
        { station: 'WHITEHALL S-FRY', lineName: 'NQR456W', entries: 10, exits: 20, turnstiles: 1 },
      ],
    });
  });

  it('report refuses a date that is not a drop date, and a bad --limit', async () => {
    expect((await cli(['report', '--date', '2023-06-04'], 'constructed')).code).toBe(2);
    expect((await cli(['report', '--date', '2023-06-03', '--limit', '0'], 'constructed')).code).toBe(2);
    expect((await cli(['report'], 'constructed')).code).toBe(2);
  });

  it('report of a week with nothing to show exits 3, advising the run that loads it, typed as the user can', async () => {
    const report = (...args: string[]) =>
      runCli(['report', '--date', '2023-05-20', '--warehouse', join(dir, 'constructed.duckdb'), ...args], {
        // Not under npm, no mta-ingest on PATH: after `npm ci` the user types npx mta-ingest.
        env: { MTA_INGEST_NOW: '2023-06-05T16:00:00Z', npm_command: '', PATH: dir },
      });
    const text = await report();
    expect(text.code, text.stderr).toBe(3);
    expect(text.stdout).toBe(
      'No intervals for 2023-05-20: the warehouse holds none for this week.\n' +
        '→ load the week first: npx mta-ingest run --date 2023-05-20 (npx mta-ingest status lists the weeks the warehouse holds)\n',
    );
    const json = await report('--json');
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({
      dropDate: '2023-05-20',
      stations: [],
      advice: expect.stringContaining('npx mta-ingest run --date 2023-05-20') as string,
    });
  });
});
