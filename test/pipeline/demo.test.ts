/**
 * `mta-ingest demo`, as a newcomer runs it: the real CLI as a child process, offline (the demo
 * serves its own sample from 127.0.0.1), into a temp folder. The numbers it prints are checked
 * against the shipped sample, read here independently, and against the demo warehouse queried
 * with a DuckDB of the test's own.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../support/harnesses/cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { realWeekFile } from '../support/fixtures/real-week.ts';
import { startDemoSource } from '../../src/demo/demo-source.ts';

const SAMPLE_GZ = fileURLToPath(new URL('../../src/reference/demo/turnstile_230603.txt.gz', import.meta.url));
const DEMO_SRC = fileURLToPath(new URL('../../src/demo/', import.meta.url));
const HEADER = 'C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS';
const count = new Intl.NumberFormat('en-US');

interface DemoJson {
  version: number;
  weeks: { dropDate: string; outcome: string; rows?: number; rejects?: number }[];
  report: {
    dropDate: string;
    stations: { station: string | null; lineName: string | null; entries: number; exits: number }[];
  };
  lake: string;
  warehouse: string;
}

/** The shipped sample's lines (without the final newline's empty tail), read with zlib alone. */
async function sampleLines(): Promise<string[]> {
  const text = gunzipSync(await readFile(SAMPLE_GZ)).toString('latin1');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

let dir: string;
let sampleRows: number;
let first: CliResult;

const demo = (...args: string[]): Promise<CliResult> =>
  runCli(['demo', '--dir', dir, ...args], {
    // A source, lake, warehouse and clock in the environment must not steer the demo: the source
    // is an unroutable address and the clock is before the sample's drop date.
    env: {
      MTA_INGEST_SOURCE_URL: 'http://192.0.2.1/nowhere',
      MTA_INGEST_LAKE: join(dir, 'not-here-lake'),
      MTA_INGEST_WAREHOUSE: join(dir, 'not-here.duckdb'),
      MTA_INGEST_NOW: '2020-01-01T00:00:00Z',
    },
  });
const warehouse = (sql: string) => query(sql, join(dir, 'warehouse.duckdb'));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-demo-'));
  const lines = await sampleLines();
  sampleRows = lines.slice(1).filter((line) => line.trim() !== '').length;
  first = await demo();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the shipped sample', () => {
  it('is the real week 2023-06-03 cut to 05/27 and 05/28, byte for byte, header first', async () => {
    const sample = await sampleLines();
    const real = (await readFile(await realWeekFile(), 'latin1')).slice(0, -1).split('\n');
    expect(sample[0]!.trimEnd()).toBe(HEADER);
    expect(sample[0]).toBe(real[0]);
    // Every line of the sample is a line of the real week, in the real week's order...
    const realLines = new Set(real);
    expect(sample.filter((line) => !realLines.has(line))).toEqual([]);
    // ...and exactly those of the two days (all stations), padding included.
    const expected = [
      real[0],
      ...real.slice(1).filter((line) => /^(?:[^,]*,){6}05\/2[78]\/2023,/.test(line)),
    ];
    expect(sample).toEqual(expected);
    expect(sample.every((line) => line.length === 130)).toBe(true);
    expect(sampleRows).toBe(72_110);
  });

  it('is small enough to ship (under 1 MB)', async () => {
    expect((await readFile(SAMPLE_GZ)).length).toBeLessThan(1_000_000);
  });

  it('is read by the product from the package, never from ../shared or test/', async () => {
    for (const name of await readdir(DEMO_SRC)) {
      const source = await readFile(join(DEMO_SRC, name), 'utf8');
      expect(source, name).not.toMatch(/shared\/data|from '\.\.\/\.\.\/test|\/test\/support/);
    }
  });
});

describe('the demo source', () => {
  it('serves the gunzipped sample as text/plain on 127.0.0.1, and 404 for anything else', async () => {
    const source = await startDemoSource();
    try {
      expect(source.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const week = await fetch(`${source.baseUrl}/turnstile_230603.txt`);
      expect(week.status).toBe(200);
      expect(week.headers.get('content-type')).toBe('text/plain');
      expect(Buffer.from(await week.arrayBuffer())).toEqual(gunzipSync(await readFile(SAMPLE_GZ)));
      for (const path of ['/turnstile_230610.txt', '/', '/turnstile_230603.txt.gz']) {
        const other = await fetch(`${source.baseUrl}${path}`);
        expect(other.status, path).toBe(404);
        await other.arrayBuffer();
      }
    } finally {
      await source.close();
    }
  });
});

describe('mta-ingest demo', () => {
  it('loads the sample and prints the week line with its exact row count', () => {
    expect(first.code, first.stderr).toBe(0);
    const [weekLine] = first.stdout.split('\n');
    expect(weekLine).toMatch(
      new RegExp(`^2023-06-03\\s+loaded\\s+${count.format(sampleRows)} rows\\s+0 rejects\\s`),
    );
  });

  it('prints the top 10 stations in descending order of entries, matching the warehouse', async () => {
    const lines = first.stdout.split('\n');
    const title = lines.indexOf('Busiest stations, week of drop date 2023-06-03');
    expect(title).toBeGreaterThan(0);
    const rows = lines.slice(title + 2).filter((line) => /^\s+\d+\s{2}/.test(line));
    expect(rows.map((row) => Number(row.trim().split(/\s+/)[0]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // entries is the third number from the end of each row: entries, exits, turnstiles.
    const entries = rows.map((row) => Number(row.trim().split(/\s+/).at(-3)!.replaceAll(',', '')));
    expect(entries).toEqual([...entries].sort((a, b) => b - a));
    expect(entries.every((n) => n > 0)).toBe(true);

    const top = await warehouse(`SELECT station, line_name, sum(entries)::BIGINT AS entries
      FROM turnstile_intervals WHERE drop_date = DATE '2023-06-03'
      GROUP BY station, line_name ORDER BY sum(entries) DESC NULLS LAST LIMIT 10`);
    expect(top).toHaveLength(10);
    expect(entries[0]).toBe(Number(top[0]!.entries));
    expect(rows[0]).toContain(String(top[0]!.station));
    expect(rows[0]).toContain(String(top[0]!.line_name));
    expect(entries).toEqual(top.map((t) => Number(t.entries)));
  });

  it('says where the lake and warehouse are, and the status command it gives works', async () => {
    const last = first.stdout.trimEnd().split('\n').at(-1)!;
    const lake = join(dir, 'lake');
    const wh = join(dir, 'warehouse.duckdb');
    expect(last).toContain(`mta-ingest status --lake ${lake} --warehouse ${wh}`);
    // As the user types it: after `npm ci`, with no mta-ingest on their PATH, through npx.
    const typed = await runCli(['demo', '--dir', dir], { env: { npm_command: '', PATH: dir } });
    expect(typed.code, typed.stderr).toBe(0);
    expect(typed.stdout.trimEnd().split('\n').at(-1)).toMatch(
      new RegExp(`look with: npx mta-ingest status --lake ${lake} --warehouse ${wh}$`),
    );
    const [readings] = await warehouse('SELECT count(*) AS n FROM turnstile_readings');
    expect(readings!.n).toBe(BigInt(sampleRows));
    const status = await runCli(['status', '--json', '--lake', lake, '--warehouse', wh]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      weeks: [{ dropDate: '2023-06-03', rows: sampleRows, rejects: 0, warehouse: 'loaded' }],
    });
  });

  it('runs again (a forced reload) with the same rows in the warehouse, and --json parses', async () => {
    const again = await demo('--json');
    expect(again.code, again.stderr).toBe(0);
    const parsed = JSON.parse(again.stdout) as DemoJson;
    expect(Object.keys(parsed).sort()).toEqual(['lake', 'report', 'version', 'warehouse', 'weeks']);
    expect(parsed.version).toBe(1);
    expect(parsed.lake).toBe(join(dir, 'lake'));
    expect(parsed.warehouse).toBe(join(dir, 'warehouse.duckdb'));
    expect(parsed.weeks).toMatchObject([
      { dropDate: '2023-06-03', outcome: 'loaded', rows: sampleRows, rejects: 0 },
    ]);
    expect(parsed.report.dropDate).toBe('2023-06-03');
    expect(parsed.report.stations).toHaveLength(10);
    const entries = parsed.report.stations.map((s) => s.entries);
    expect(entries).toEqual([...entries].sort((a, b) => b - a));

    const [readings] = await warehouse(
      'SELECT count(*) AS n, count(DISTINCT drop_date) AS weeks FROM turnstile_readings',
    );
    expect(readings).toEqual({ n: BigInt(sampleRows), weeks: 1n });

    const text = await demo();
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^2023-06-03\\s+loaded\\s+${count.format(sampleRows)} rows`));
    const [after] = await warehouse('SELECT count(*) AS n FROM turnstile_readings');
    expect(after!.n).toBe(BigInt(sampleRows));
  });
});
