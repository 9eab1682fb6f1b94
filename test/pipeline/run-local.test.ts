/**
 * The worker end to end on the embedded default (local lake + DuckDB), as a scheduler runs it:
 * the real CLI as a child process, against a real HTTP server on 127.0.0.1 serving the real
 * MTA files.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runCli, runWorker } from '../support/harnesses/cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import {
  HUDSON_YARDS,
  LEGACY_SAMPLE,
  REAL_WEEK_ROWS,
  factsOf,
  realWeekFile,
  type WeekFacts,
  WEEK,
  FILE,
  NOW,
} from '../support/fixtures/real-week.ts';
import { COLUMNS, duckdbType } from '../../src/schema/turnstile-schema.ts';

let server: SourceServer;
let realWeek: string;
let facts: WeekFacts;
let dir: string;

async function files(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  return (await readdir(root, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
    .sort();
}

function run(...args: string[]) {
  return runWorker({ sourceUrl: server.baseUrl, dir, now: NOW }, ...args);
}

const warehouse = (sql: string) => query(sql, join(dir, 'wh.duckdb'));
const parquetPath = (date = WEEK, name = 'turnstile_230603') =>
  join(dir, 'lake', 'turnstile', 'parquet', `drop_date=${date}`, `${name}.parquet`);
const rejectsPath = (date = WEEK, name = 'turnstile_230603') =>
  join(dir, 'lake', 'turnstile', 'rejects', `drop_date=${date}`, `${name}.parquet`);

beforeAll(async () => {
  realWeek = await realWeekFile();
  facts = await factsOf(realWeek);
  server = await startSourceServer({ files: [{ name: FILE, path: realWeek }] });
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-run-'));
  server.serve({ name: FILE, path: realWeek });
  server.requests.length = 0;
  return () => rm(dir, { recursive: true, force: true });
});

describe('the real week 2023-06-03', () => {
  it('lands every row with the source counter sums, typed, with no rejects', async () => {
    const result = await run('--date', WEEK);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^2023-06-03\s+loaded\s+253,237 rows\s+0 rejects\s+33\.2 MB\s+[\d.]+ s/m);

    const [totals] = await warehouse(`SELECT count(*) AS n, sum(entries) AS entries, sum(exits) AS exits,
      min(reading_at)::VARCHAR AS first, max(reading_at)::VARCHAR AS last, count(DISTINCT drop_date) AS dates
      FROM turnstile_readings`);
    expect(totals).toEqual({
      n: BigInt(REAL_WEEK_ROWS),
      entries: facts.entries,
      exits: facts.exits,
      first: '2023-05-27 00:00:00',
      last: expect.stringMatching(/^2023-06-02 /) as string,
      dates: 1n,
    });
    expect(facts.rows).toBe(REAL_WEEK_ROWS);
    expect(existsSync(rejectsPath())).toBe(false);

    const manifest = JSON.parse(
      await readFile(join(dir, 'lake', 'turnstile', '_manifests', `drop_date=${WEEK}.json`), 'utf8'),
    ) as { rows: number; rejects: number; source: { bytes: number; sha256: string } };
    expect(manifest).toMatchObject({ rows: REAL_WEEK_ROWS, rejects: 0, source: { bytes: 33_174_178 } });
    // The current version under the week's keys, and its own kept copy under _versions/.
    const version = `turnstile/_versions/drop_date=2023-06-03/${manifest.source.sha256.slice(0, 16)}`;
    expect(await files(join(dir, 'lake'))).toEqual([
      'turnstile/_manifests/drop_date=2023-06-03.json',
      `${version}/turnstile_230603.parquet`,
      `${version}/turnstile_230603.txt.gz`,
      `${version}/version.json`,
      'turnstile/parquet/drop_date=2023-06-03/turnstile_230603.parquet',
      'turnstile/raw/drop_date=2023-06-03/turnstile_230603.txt.gz',
    ]);
  });

  it('writes Parquet that reads back with the declared types, ZSTD, in row groups of about 100k rows', async () => {
    expect((await run('--date', WEEK)).code).toBe(0);
    const described = await query(`DESCRIBE SELECT * FROM read_parquet('${parquetPath()}')`);
    expect(described.map((c) => [c.column_name, c.column_type])).toEqual(
      COLUMNS.map((c) => [c.name, duckdbType(c.type)]),
    );
    const groups = await query(`SELECT DISTINCT row_group_id, row_group_num_rows, compression
      FROM parquet_metadata('${parquetPath()}')`);
    expect(groups.every((g) => g.compression === 'ZSTD')).toBe(true);
    // DuckDB closes a row group at the first 2,048-row vector past the target, so "about".
    expect(groups.every((g) => Number(g.row_group_num_rows) <= 110_000)).toBe(true);
    expect(groups.filter((g) => Number(g.row_group_num_rows) >= 90_000).length).toBeGreaterThanOrEqual(2);
    expect(groups.reduce((sum, g) => sum + Number(g.row_group_num_rows), 0)).toBe(REAL_WEEK_ROWS);
  });

  it('keeps each row traceable to its source line', async () => {
    expect((await run('--date', WEEK)).code).toBe(0);
    const lines = (await readFile(realWeek, 'latin1')).split('\n');
    const sample =
      await query(`SELECT source_line, control_area, unit, scp, station, strftime(reading_at, '%m/%d/%Y,%H:%M:%S') AS at, entries, exits
      FROM read_parquet('${parquetPath()}') USING SAMPLE 200 ROWS (reservoir, 7)`);
    expect(sample).toHaveLength(200);
    for (const row of sample) {
      const fields = lines[Number(row.source_line) - 1]!.trimEnd().split(',');
      expect([row.control_area, row.unit, row.scp, row.station, row.at, row.entries, row.exits]).toEqual([
        fields[0],
        fields[1],
        fields[2],
        fields[3],
        `${fields[6]},${fields[7]}`,
        BigInt(fields[9]!),
        BigInt(fields[10]!),
      ]);
    }
  });

  it('does nothing on a second run, and --force reloads without doubling', async () => {
    expect((await run('--date', WEEK)).code).toBe(0);
    const manifestPath = join(dir, 'lake', 'turnstile', '_manifests', `drop_date=${WEEK}.json`);
    const before = await readFile(manifestPath, 'utf8');

    const again = await run('--date', WEEK);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^2023-06-03\s+already-loaded\s+253,237 rows/m);
    // The rerun asked the server with the stored ETag and got a 304: nothing was downloaded.
    expect(server.requestsFor(FILE).map((r) => r.status)).toEqual([200, 304]);
    expect(await readFile(manifestPath, 'utf8')).toBe(before);

    const forced = await run('--date', WEEK, '--force');
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/^2023-06-03\s+loaded\s+253,237 rows.*reloaded \(--force\)/m);
    const [count] = await warehouse('SELECT count(*) AS n FROM turnstile_readings');
    expect(count!.n).toBe(BigInt(REAL_WEEK_ROWS));
    const loads = await warehouse('SELECT drop_date::VARCHAR AS d, rows FROM _mta_ingest_loads');
    expect(loads).toEqual([{ d: WEEK, rows: BigInt(REAL_WEEK_ROWS) }]);
  });

  it('fails a --force reload whose lake write fails, rather than taking its own earlier manifest', async () => {
    expect((await run('--date', WEEK)).code).toBe(0);
    // A folder where the Parquet object goes: the lake's write (a rename into place) fails.
    await rm(parquetPath());
    await mkdir(join(parquetPath(), 'blocker'), { recursive: true });
    const forced = await run('--date', WEEK, '--force', '--log-level', 'info');
    expect(forced.code, forced.stdout).toBe(1);
    expect(forced.stdout).toMatch(/^2023-06-03\s+failed\s/m);
    expect(forced.stderr).not.toContain('store.adopted');
  });

  it('is "already loaded" without validators too, by comparing the sha256 of the body', async () => {
    expect((await run('--date', WEEK)).code).toBe(0);
    // Strip the stored ETag and Last-Modified so the rerun cannot ask conditionally.
    const manifestPath = join(dir, 'lake', 'turnstile', '_manifests', `drop_date=${WEEK}.json`);
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { source: Record<string, unknown> };
    delete manifest.source.etag;
    delete manifest.source.lastModified;
    await writeFile(manifestPath, JSON.stringify(manifest));
    const again = await run('--date', WEEK);
    expect(again.stdout).toMatch(/already-loaded .*source unchanged/);
    expect(server.requestsFor(FILE).map((r) => r.status)).toEqual([200, 200]);
  });

  it('loads from the lake when the warehouse lost the week, without converting again', async () => {
    expect((await run('--date', WEEK)).code).toBe(0);
    await rm(join(dir, 'wh.duckdb'));
    const again = await run('--date', WEEK, '--log-level', 'info');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/loaded .*loaded from the lake/);
    expect(again.stderr).not.toContain('"convert.start"');
    const [count] = await warehouse('SELECT count(*) AS n FROM turnstile_readings');
    expect(count!.n).toBe(BigInt(REAL_WEEK_ROWS));
  });
});

describe('rows that cannot be typed', () => {
  it('loads every other row and reports exactly the mangled lines, with their numbers', async () => {
    const lines = (await readFile(realWeek, 'latin1')).split('\n');
    const mangle = (n: number, field: number, value: string) => {
      const fields = lines[n - 1]!.split(',');
      fields[field] = value;
      lines[n - 1] = fields.join(',');
    };
    mangle(10, 9, '00000X2040'); // ENTRIES not a number
    mangle(5_000, 10, '-000000985'); // EXITS negative
    mangle(120_000, 6, '13/45/2023'); // DATE impossible
    mangle(200_001, 7, '25:00:00'); // TIME impossible
    mangle(60_000, 1, ''); // UNIT empty: types, but a required value is missing
    const emptyUnit = lines[60_000 - 1]!;
    lines[250_000 - 1] = 'A002,R051,02-00-00,59 ST'; // too few fields
    const copy = join(dir, 'mangled.txt');
    await writeFile(copy, lines.join('\n'), 'latin1');
    server.serve({ name: FILE, path: copy });

    const result = await run('--date', WEEK);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/loaded\s+253,231 rows\s+6 rejects/);
    const rejects = await query(
      `SELECT source_line, reason, line FROM read_parquet('${rejectsPath()}') ORDER BY source_line`,
    );
    expect(rejects.map((r) => r.source_line)).toEqual([10n, 5_000n, 60_000n, 120_000n, 200_001n, 250_000n]);
    expect(rejects.map((r) => r.reason)).toEqual([
      expect.stringMatching(/ENTRIES .*"00000X2040"/),
      expect.stringMatching(/EXITS .*"-000000985"/),
      'missing required value: unit',
      expect.stringMatching(/DATE .*"13\/45\/2023"/),
      expect.stringMatching(/TIME .*"25:00:00"/),
      'expected 11 fields, found 4',
    ]);
    // Every reject keeps its line's text, whichever check refused it.
    expect(rejects[2]!.line).toBe(emptyUnit);
    expect(rejects[5]!.line).toBe('A002,R051,02-00-00,59 ST');
    const [count] = await warehouse(
      'SELECT count(*) AS n FROM turnstile_readings WHERE source_line IN (10, 5000, 60000, 120000, 200001, 250000)',
    );
    expect(count!.n).toBe(0n);
  });
});

describe('files that end oddly', () => {
  it('loads all 842 rows of a file whose last line has neither padding nor a newline', async () => {
    server.serve({ name: 'turnstile_150919.txt', path: HUDSON_YARDS });
    const result = await run('--date', '2015-09-19');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^2015-09-19\s+loaded\s+842 rows\s+0 rejects/m);
    const [last] = await query(
      `SELECT max(source_line) AS last, count(*) AS n FROM read_parquet('${parquetPath('2015-09-19', 'turnstile_150919')}')`,
    );
    expect(last).toEqual({ last: 843n, n: 842n });
  });

  // A broken download that still ended "cleanly": cut inside a line, either among the first
  // fields or inside the last counter (where what is left still parses as a number).
  for (const [where, cutInLine] of [
    ['among the fields', 25],
    ['inside EXITS', 84],
  ] as const) {
    it(`reports a body cut ${where} as one reject on the last line, never a silent partial week`, async () => {
      const text = await readFile(realWeek, 'latin1');
      const lineStart = 131 * 100_000; // lines are padded to 130 characters + LF
      const cut = join(dir, 'cut.txt');
      await writeFile(cut, text.slice(0, lineStart + cutInLine), 'latin1');
      server.serve({ name: FILE, path: cut });
      const result = await run('--date', WEEK);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/loaded\s+99,999 rows\s+1 rejects/);
      const rejects = await query(`SELECT source_line, reason FROM read_parquet('${rejectsPath()}')`);
      expect(rejects).toEqual([
        { source_line: 100_001n, reason: expect.stringMatching(/fields|cut/) as string },
      ]);
    });
  }
});

describe('what is not a week', () => {
  it('404 is "not published": exit 3 and nothing in the lake', async () => {
    const result = await run('--date', '2023-06-10', '--to', '2023-06-10');
    expect(result.code).toBe(2); // --date and --to do not mix
    const notPublished = await runCli(
      [
        'run',
        '--date',
        '2023-06-10',
        '--source-url',
        server.baseUrl,
        '--lake',
        join(dir, 'lake'),
        '--warehouse',
        join(dir, 'wh.duckdb'),
      ],
      {
        env: { MTA_INGEST_NOW: '2023-06-12T12:00:00Z', MTA_INGEST_WORK_DIR: dir },
      },
    );
    expect(notPublished.code).toBe(3);
    expect(notPublished.stdout).toMatch(/^2023-06-10\s+not-published/m);
    expect(await files(join(dir, 'lake'))).toEqual([]);
  });

  it('a date in the future is refused with exit 2, one line, and no request', async () => {
    const result = await run('--date', '2023-06-10');
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^mta-ingest: .*2023-06-10.*future/);
    expect(server.requests).toHaveLength(0);
    expect(existsSync(join(dir, 'lake'))).toBe(false);
  });

  it('bad arguments are refused with exit 2 and one line', async () => {
    for (const args of [
      ['--month', '13', '--year', '2023'],
      ['--bogus'],
      ['--date', '2023-06-04'],
      ['--fetch-attempts', '0'],
    ]) {
      const result = await run(...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(result.stderr).not.toMatch(/\bat .*\.ts:\d+/);
    }
    expect(server.requests).toHaveLength(0);
  });

  it('an HTML page served with 200, or an empty body, fails the week with nothing in the lake', async () => {
    for (const fault of [{ kind: 'html' }, { kind: 'empty' }] as const) {
      server.fault(FILE, fault);
      const result = await run('--date', WEEK);
      expect(result.code, fault.kind).toBe(1);
      expect(result.stdout).toMatch(fault.kind === 'html' ? /failed .*HTML/ : /failed .*empty/);
      expect(await files(join(dir, 'lake'))).toEqual([]);
      server.fault(FILE, undefined);
    }
  });

  it('a legacy-layout file loads: the MTA sample as drop date 2012-06-16 is 48 readings', async () => {
    server.serve({ name: 'turnstile_120616.txt', path: LEGACY_SAMPLE });
    const result = await run('--date', '2012-06-16');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^2012-06-16\s+loaded\s+48 rows\s+0 rejects/m);
    const [landed] = await query(`SELECT count(*) AS n, count(DISTINCT source_line) AS lines,
      min(reading_at)::VARCHAR AS first, max(reading_at)::VARCHAR AS last, count(station) AS named
      FROM read_parquet('${parquetPath('2012-06-16', 'turnstile_120616')}')`);
    expect(landed).toEqual({
      n: 48n,
      lines: 6n,
      first: '2010-03-21 00:00:00',
      last: '2010-03-28 20:00:00',
      named: 48n,
    });
    const [count] = await warehouse('SELECT count(*) AS n FROM turnstile_readings');
    expect(count!.n).toBe(48n);
  });
});

describe('a flaky source', () => {
  it('retries 5xx, a reset connection and a stall, and lands the week whole', async () => {
    server.fault(FILE, { kind: 'status', status: 503, times: 1 });
    let result = await run('--date', WEEK);
    expect(result.code, result.stderr).toBe(0);
    expect(server.requestsFor(FILE).map((r) => r.status)).toEqual([503, 200]);

    await rm(join(dir, 'lake'), { recursive: true });
    await rm(join(dir, 'wh.duckdb'));
    server.fault(FILE, { kind: 'reset', afterBytes: 5_000_000, times: 1 });
    result = await run('--date', WEEK);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/loaded\s+253,237 rows/);

    await rm(join(dir, 'lake'), { recursive: true });
    await rm(join(dir, 'wh.duckdb'));
    server.fault(FILE, { kind: 'stall', afterBytes: 1_000_000, ms: 3_000, times: 1 });
    result = await run('--date', WEEK, '--fetch-timeout-ms', '500');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/loaded\s+253,237 rows/);
    const [count] = await warehouse('SELECT count(*) AS n FROM turnstile_readings');
    expect(count!.n).toBe(BigInt(REAL_WEEK_ROWS));
  });

  it('gives up after the last attempt with a clear failure and nothing in the lake', async () => {
    server.fault(FILE, { kind: 'status', status: 500 });
    const result = await run('--date', WEEK, '--fetch-attempts', '3');
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/failed .*gave up after 3 attempts: HTTP 500/);
    expect(server.requestsFor(FILE)).toHaveLength(3);
    expect(await files(join(dir, 'lake'))).toEqual([]);
    server.fault(FILE, undefined);
  });
});

describe('plan and status', () => {
  it('plan fetches nothing and tells what a run would do', async () => {
    const plan = await runCli(
      [
        'plan',
        '--year',
        '2023',
        '--month',
        '5',
        '--source-url',
        server.baseUrl,
        '--lake',
        join(dir, 'lake'),
        '--warehouse',
        join(dir, 'wh.duckdb'),
      ],
      {
        env: { MTA_INGEST_NOW: NOW },
      },
    );
    expect(plan.code, plan.stderr).toBe(0);
    for (const date of ['2023-05-06', '2023-05-13', '2023-05-20', '2023-05-27']) {
      expect(plan.stdout).toContain(`${date}  not stored: fetch, convert, store, load`);
    }
    expect(plan.stdout).toContain(`${server.baseUrl}/turnstile_230506.txt`);
    expect(plan.stdout).toContain('turnstile/parquet/drop_date=2023-05-06/turnstile_230506.parquet');
    expect(server.requests).toHaveLength(0);
    expect(existsSync(join(dir, 'wh.duckdb'))).toBe(false);
  });

  it('status lists loaded weeks from the manifests, as text and JSON', async () => {
    expect((await run('--date', WEEK)).code).toBe(0);
    const common = ['--lake', join(dir, 'lake'), '--warehouse', join(dir, 'wh.duckdb')];
    const text = await runCli(['status', ...common]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /^2023-06-03\s+253,237\s+0\s+33\.2 MB\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+[\d.]+%\s+loaded/m,
    );
    const json = await runCli(['status', '--json', ...common]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      weeks: [{ dropDate: WEEK, rows: REAL_WEEK_ROWS, rejects: 0, warehouse: 'loaded' }],
    });
    const plan = await runCli(['plan', '--date', WEEK, '--json', ...common], {
      env: { MTA_INGEST_NOW: NOW },
    });
    expect(JSON.parse(plan.stdout)).toMatchObject({
      version: 1,
      weeks: [{ dropDate: WEEK, state: 'loaded', rows: REAL_WEEK_ROWS }],
    });
  });
});
