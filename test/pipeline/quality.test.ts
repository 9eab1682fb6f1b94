/**
 * The week's quality figures: on the real week its figures equal the same figures computed here
 * by a separate query over the raw source file (read as text, not through the worker's typed
 * reader); `--strict` refuses a week with rejects or duplicate readings.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runCli, runWorker } from '../support/harnesses/cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { REAL_WEEK_ROWS, realWeekFile, FILE } from '../support/fixtures/real-week.ts';
import type { WeekQuality } from '../../src/quality/week-quality.ts';

let server: SourceServer;
let realWeek: string;
let dir: string;

beforeAll(async () => {
  realWeek = await realWeekFile();
  server = await startSourceServer({ files: [{ name: FILE, path: realWeek }] });
});
afterAll(() => server.close());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-quality-'));
  server.serve({ name: FILE, path: realWeek });
  return () => rm(dir, { recursive: true, force: true });
});

const run = (...args: string[]) =>
  runWorker({ sourceUrl: server.baseUrl, dir, now: '2023-06-05T16:00:00Z' }, '--date', '2023-06-03', ...args);

async function manifestQuality(): Promise<WeekQuality> {
  const text = await readFile(
    join(dir, 'lake', 'turnstile', '_manifests', 'drop_date=2023-06-03.json'),
    'utf8',
  );
  return (JSON.parse(text) as { quality: WeekQuality }).quality;
}

describe('the quality figures', () => {
  it('equals the same figures computed from the raw source', async () => {
    const result = await run();
    expect(result.code, result.stderr).toBe(0);
    const quality = await manifestQuality();

    // Independent: DuckDB reads the raw file as text (all_varchar), numbers lines itself, and
    // every figure is written out again here.
    const [expected] = await query(`
      WITH raw AS (
        SELECT row_number() OVER () AS line, trim("C/A") AS ca, trim(UNIT) AS unit, trim(SCP) AS scp,
               strptime(trim("DATE") || ' ' || trim("TIME"), '%m/%d/%Y %H:%M:%S') AS read_at, trim("DESC") AS d,
               CAST(trim(ENTRIES) AS BIGINT) AS e, CAST(trim(EXITS) AS BIGINT) AS x
        FROM read_csv('${realWeek}', header = true, all_varchar = true)
      ),
      prev AS (
        SELECT e, x, lag(e) OVER (PARTITION BY ca, unit, scp ORDER BY read_at, line) AS pe,
                     lag(x) OVER (PARTITION BY ca, unit, scp ORDER BY read_at, line) AS px
        FROM raw
      )
      SELECT
        (SELECT count(*) FROM raw) AS n_rows,
        (SELECT count(*) FROM (SELECT DISTINCT ca, unit, scp FROM raw)) AS turnstiles,
        (SELECT sum(n - 1) FROM (SELECT count(*) AS n FROM raw GROUP BY ca, unit, scp, read_at)) AS duplicates,
        (SELECT count(*) FROM raw WHERE read_at < TIMESTAMP '2023-05-27 00:00:00' OR read_at >= TIMESTAMP '2023-06-03 00:00:00') AS outside,
        (SELECT count(*) FROM prev WHERE e < pe OR x < px) AS backwards,
        (SELECT count(*) FILTER (WHERE d = 'RECOVR AUD') / count(*) FROM raw) AS recovered`);
    expect(quality).toEqual({
      rows: REAL_WEEK_ROWS,
      rejects: 0,
      turnstiles: Number(expected!.turnstiles),
      duplicateReadings: Number(expected!.duplicates),
      outsideWeek: Number(expected!.outside),
      countersBackwards: Number(expected!.backwards),
      recoveredAuditShare: Math.round(Number(expected!.recovered) * 1e6) / 1e6,
      unmatchedStations: 0,
    });
    expect(Number(expected!.n_rows)).toBe(REAL_WEEK_ROWS);
    // The real week has every kind of trouble in small amounts: the report is not trivially 0.
    expect(quality.turnstiles).toBeGreaterThan(4_000);
    expect(quality.recoveredAuditShare).toBeCloseTo(1_363 / REAL_WEEK_ROWS, 6);

    const status = await runCli([
      'status',
      '--json',
      '--lake',
      join(dir, 'lake'),
      '--warehouse',
      join(dir, 'wh.duckdb'),
    ]);
    expect(JSON.parse(status.stdout)).toMatchObject({ weeks: [{ quality }] });
  });

  it('--strict refuses a week with rejects, or with duplicate readings, and stores nothing', async () => {
    const lines = (await readFile(realWeek, 'latin1')).split('\n');
    const mangled = [...lines];
    mangled[99] = mangled[99]!.replace(/,\d{10},/, ',00000X0000,');
    await writeFile(join(dir, 'rejects.txt'), mangled.join('\n'), 'latin1');
    server.serve({ name: FILE, path: join(dir, 'rejects.txt') });
    let result = await run('--strict');
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/failed .*--strict: 1 rejects; nothing was stored or loaded/);
    expect(existsSync(join(dir, 'lake'))).toBe(false);

    const doubled = [...lines.slice(0, 1000), lines[500]!, ...lines.slice(1000)];
    await writeFile(join(dir, 'doubled.txt'), doubled.join('\n'), 'latin1');
    server.serve({ name: FILE, path: join(dir, 'doubled.txt') });
    result = await run('--strict');
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/--strict: .*duplicate readings/);

    // Without --strict the same week loads, and its report counts the duplicate.
    result = await run();
    expect(result.code, result.stderr).toBe(0);
    const quality = await manifestQuality();
    expect(quality.duplicateReadings).toBeGreaterThanOrEqual(1);
  });
});
