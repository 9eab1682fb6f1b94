/**
 * The promise "never lose a week", against what the real web does and a user's own hands:
 * a body cut on a line boundary, a re-published file much shorter than the one loaded, another
 * week's file under this week's name, validators of a bad body, rows deleted or changed in the
 * warehouse behind the tool's back, lake objects lost or damaged. Every case runs the real CLI
 * against the real week 2023-06-03 served over HTTP on 127.0.0.1, with the gate on
 * (MTA_INGEST_ACCEPT unset), and asserts what the warehouse and the lake hold afterwards.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runCli, type CliResult } from '../support/harnesses/cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import {
  REAL_WEEK_ROWS,
  factsOf,
  realWeekFile,
  type WeekFacts,
  WEEK,
  FILE,
  NOW,
} from '../support/fixtures/real-week.ts';

/** The real week's first half, cut on a line boundary: 126,618 rows, 420 of 768 booths. */
const HALF_ROWS = 126_618;

let server: SourceServer;
let realWeek: string;
let half: Buffer;
let facts: WeekFacts;
let dir: string;

interface RunJson {
  exitCode: number;
  weeks: { dropDate: string; outcome: string; rows?: number; detail?: string; advice?: string }[];
}

function cli(command: string, ...args: string[]): Promise<CliResult> {
  // Each command takes only the settings that apply to it: the source, for those that fetch.
  const source = ['run', 'plan', 'verify'].includes(command) ? ['--source-url', server.baseUrl] : [];
  return runCli(
    [command, ...source, '--lake', join(dir, 'lake'), '--warehouse', join(dir, 'wh.duckdb'), ...args],
    { env: { MTA_INGEST_NOW: NOW, MTA_INGEST_WORK_DIR: dir, MTA_INGEST_ACCEPT: '' } },
  );
}

async function run(...args: string[]): Promise<{ code: number; json: RunJson; stderr: string }> {
  const result = await cli('run', '--date', WEEK, '--json', ...args);
  return { code: result.code, json: JSON.parse(result.stdout) as RunJson, stderr: result.stderr };
}

const warehouse = (sql: string) => query(sql, join(dir, 'wh.duckdb'));

/** Changes the warehouse as a person with a SQL shell would, behind the tool's back. */
async function tamper(sql: string): Promise<void> {
  const instance = await DuckDBInstance.create(join(dir, 'wh.duckdb'));
  const connection = await instance.connect();
  try {
    await connection.run(sql);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

async function weekInWarehouse(): Promise<{ n: number; entries: bigint; exits: bigint }> {
  const [row] = await warehouse(
    `SELECT count(*) AS n, coalesce(sum(entries), 0)::VARCHAR AS e, coalesce(sum(exits), 0)::VARCHAR AS x
     FROM turnstile_readings WHERE drop_date = DATE '${WEEK}'`,
  );
  return { n: Number(row!.n), entries: BigInt(row!.e as string), exits: BigInt(row!.x as string) };
}

const manifestPath = () => join(dir, 'lake', 'turnstile', '_manifests', `drop_date=${WEEK}.json`);
const readManifest = async () =>
  JSON.parse(await readFile(manifestPath(), 'utf8')) as {
    rows: number;
    source: { sha256: string };
    objects: { raw: { sha256: string }; parquet: { sha256: string; key: string } };
    gate: { verdict: string; reasons: string[]; reference: string; figures: Record<string, unknown> };
    history: { sha256: string; outcome: string; rows: number; reasons?: string[] }[];
  };

beforeAll(async () => {
  realWeek = await realWeekFile();
  facts = await factsOf(realWeek);
  const whole = await readFile(realWeek);
  const cut = whole.subarray(0, whole.length / 2);
  half = Buffer.from(cut.subarray(0, cut.lastIndexOf(0x0a) + 1));
  server = await startSourceServer({ files: [{ name: FILE, path: realWeek }] });
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-never-lose-'));
  server.serve({ name: FILE, path: realWeek });
  return () => rm(dir, { recursive: true, force: true });
});

describe('the plausibility gate', () => {
  it('holds back a first half cut on a line boundary: suspect, exit 4, kept in the lake, nothing loaded', async () => {
    server.serve({ name: FILE, content: half });
    const first = await run();
    expect(first.code, first.stderr).toBe(4);
    expect(first.json.weeks[0]).toMatchObject({ outcome: 'suspect', rows: HALF_ROWS });
    expect(first.json.weeks[0]!.detail).toMatch(/covers 420 of the 768 booths/);
    expect(first.json.weeks[0]!.advice).toMatch(/--accept 2023-06-03/);
    // Not committed: no manifest, nothing in the warehouse; the version is kept whole beside.
    expect(existsSync(manifestPath())).toBe(false);
    expect(existsSync(join(dir, 'wh.duckdb')) ? (await weekInWarehouse()).n : 0).toBe(0);
    const versions = await cli('versions', '--date', WEEK, '--json');
    expect(JSON.parse(versions.stdout)).toMatchObject({
      version: 1,
      versions: [{ status: 'suspect', rows: HALF_ROWS }],
    });
    const status = await cli('status', '--json');
    expect(JSON.parse(status.stdout)).toMatchObject({
      weeks: [{ dropDate: WEEK, warehouse: 'not loaded' }],
      freshness: { latestLoaded: null, suspect: [{ dropDate: WEEK }] },
    });

    // The same cut body again, with the same ETag: never "already loaded".
    const again = await run();
    expect(again.json.weeks[0]).toMatchObject({ outcome: 'suspect' });
    expect(server.requestsFor(FILE).at(-1)!.headers['if-none-match']).toBeUndefined();

    // The whole file, once the source serves it, lands at the next plain run.
    server.serve({ name: FILE, path: realWeek });
    const healed = await run();
    expect(healed.code, healed.stderr).toBe(0);
    expect(healed.json.weeks[0]).toMatchObject({ outcome: 'loaded', rows: REAL_WEEK_ROWS });
    expect(await weekInWarehouse()).toEqual({ n: facts.rows, entries: facts.entries, exits: facts.exits });
    const manifest = await readManifest();
    expect(manifest.gate).toMatchObject({ verdict: 'passed', reference: 'station table' });
    expect(manifest.gate.figures).toMatchObject({
      boothsKnown: 724,
      boothsInTable: 768,
      rows: REAL_WEEK_ROWS,
    });
  });

  it('keeps the loaded week when the source shrinks, and loads the shrunk one only on --accept', async () => {
    expect((await run()).code).toBe(0);
    const good = await readManifest();

    server.serve({ name: FILE, content: half });
    const shrunk = await run();
    expect(shrunk.code, shrunk.stderr).toBe(4);
    expect(shrunk.json.weeks[0]!.detail).toMatch(
      /126618 rows against 253237 in the current version \(0\.50x; 0\.85x to 1\.15x expected\)/,
    );
    // The warehouse and the week's keys still hold the good version; the manifest records the
    // suspect one in its history.
    expect(await weekInWarehouse()).toEqual({ n: facts.rows, entries: facts.entries, exits: facts.exits });
    const after = await readManifest();
    expect(after.source.sha256).toBe(good.source.sha256);
    expect(after.objects).toEqual(good.objects);
    expect(after.history.map((h) => [h.outcome, h.rows])).toEqual([
      ['current', REAL_WEEK_ROWS],
      ['suspect', HALF_ROWS],
    ]);
    const status = (JSON.parse((await cli('status', '--json')).stdout) as { weeks: { suspect?: string[] }[] })
      .weeks;
    expect(status[0]!.suspect?.join(' ')).toMatch(/0\.50x/);

    // An explicit acceptance naming the date loads it; the good version stays in the lake.
    const accepted = await run('--accept', WEEK);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(accepted.json.weeks[0]).toMatchObject({ outcome: 'loaded', rows: HALF_ROWS });
    expect(accepted.json.weeks[0]!.detail).toMatch(/^accepted past the gate/);
    expect((await weekInWarehouse()).n).toBe(HALF_ROWS);
    const { versions } = JSON.parse((await cli('versions', '--date', WEEK, '--json')).stdout) as {
      versions: { sha256: string; status: string }[];
    };
    expect(versions.map((v) => v.status).sort()).toEqual(['current', 'superseded']);

    // And the good one can be restored to current, exactly.
    const restored = await cli('restore', '--date', WEEK, '--sha256', good.source.sha256.slice(0, 12));
    expect(restored.code, restored.stderr).toBe(0);
    expect(await weekInWarehouse()).toEqual({ n: facts.rows, entries: facts.entries, exits: facts.exits });
    expect((await readManifest()).source.sha256).toBe(good.source.sha256);
  });

  it("holds back another week's file served under this week's name", async () => {
    server.serve({ name: 'turnstile_230527.txt', path: realWeek });
    const result = await cli('run', '--date', '2023-05-27', '--json');
    expect(result.code, result.stderr).toBe(4);
    const week = (JSON.parse(result.stdout) as RunJson).weeks[0]!;
    expect(week).toMatchObject({ outcome: 'suspect' });
    expect(week.detail).toMatch(/100% of readings fall outside the week/);
    expect(week.detail).toMatch(/0% of turnstiles read on the week's last day/);
    server.remove('turnstile_230527.txt');
  });

  it('never trusts the validators of a version the gate did not pass: a cut week stored before the gate heals', async () => {
    // As a run before the gate left it: half the week loaded under the whole file's ETag (a
    // body cut in transit), in a version 1 manifest with no gate verdict.
    server.serve({ name: FILE, content: half });
    expect((await run('--accept', WEEK)).code).toBe(0);
    server.serve({ name: FILE, path: realWeek });
    const wholeEtag = (await fetch(`${server.baseUrl}/${FILE}`, { method: 'HEAD' })).headers.get('etag');
    expect(wholeEtag).toBeTruthy();
    const old = JSON.parse(await readFile(manifestPath(), 'utf8')) as {
      gate?: unknown;
      history?: unknown;
      source: Record<string, unknown>;
    };
    delete old.gate;
    delete old.history;
    await writeFile(
      manifestPath(),
      JSON.stringify({ ...old, manifestVersion: 1, source: { ...old.source, etag: wholeEtag } }, null, 2),
    );
    // A lake from before versions kept nothing under _versions/.
    await rm(join(dir, 'lake', 'turnstile', '_versions'), { recursive: true });

    const rerun = await run();
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.json.weeks[0]).toMatchObject({ outcome: 'loaded', rows: REAL_WEEK_ROWS });
    expect(server.requestsFor(FILE).at(-1)!.headers['if-none-match']).toBeUndefined();
    expect(await weekInWarehouse()).toEqual({ n: facts.rows, entries: facts.entries, exits: facts.exits });
    expect((await readManifest()).gate.verdict).toBe('passed');
    // The version it replaced was kept first, whole, and can be listed (and restored).
    const { versions } = JSON.parse((await cli('versions', '--date', WEEK, '--json')).stdout) as {
      versions: { status: string; rows: number }[];
    };
    expect(versions.map((v) => [v.status, v.rows]).sort()).toEqual([
      ['current', REAL_WEEK_ROWS],
      ['superseded', HALF_ROWS],
    ]);
  });

  it('--force accepts a suspect week too', async () => {
    server.serve({ name: FILE, content: half });
    const forced = await run('--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.json.weeks[0]).toMatchObject({ outcome: 'loaded', rows: HALF_ROWS });
    expect((await readManifest()).gate.verdict).toBe('accepted');
  });
});

describe('verify, then trust', () => {
  it('reloads from the lake when rows were deleted behind its back; verify reports the drift first', async () => {
    expect((await run()).code).toBe(0);
    await tamper(`DELETE FROM turnstile_readings WHERE source_line % 10 = 0`);
    const verify = await cli('verify', '--json');
    expect(verify.code, verify.stderr).toBe(5);
    expect(JSON.parse(verify.stdout)).toMatchObject({
      weeks: [{ dropDate: WEEK, state: 'drift' }],
      exitCode: 5,
    });
    expect((await cli('plan', '--date', WEEK, '--json')).stdout).toMatch(/"action": "load from lake"/);

    const rerun = await run();
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.json.weeks[0]).toMatchObject({ outcome: 'loaded', rows: REAL_WEEK_ROWS });
    expect(rerun.json.weeks[0]!.detail).toMatch(/reloaded from the lake/);
    expect(await weekInWarehouse()).toEqual({ n: facts.rows, entries: facts.entries, exits: facts.exits });
    expect((await cli('verify')).code).toBe(0);
  });

  it('is not fooled by another version of the week with the same row count (a restored backup)', async () => {
    expect((await run()).code).toBe(0);
    await tamper(`UPDATE turnstile_readings SET entries = entries + 1 WHERE source_line % 1000 = 0`);
    expect((await weekInWarehouse()).n).toBe(REAL_WEEK_ROWS);
    const status = (JSON.parse((await cli('status', '--json')).stdout) as { weeks: { warehouse: string }[] })
      .weeks;
    expect(status[0]!.warehouse).toBe('drift');
    const rerun = await run();
    expect(rerun.json.weeks[0]).toMatchObject({ outcome: 'loaded' });
    expect(await weekInWarehouse()).toEqual({ n: facts.rows, entries: facts.entries, exits: facts.exits });
  });

  it('verify --repair heals drift and exits 0', async () => {
    expect((await run()).code).toBe(0);
    await tamper(`DELETE FROM turnstile_readings`);
    const repaired = await cli('verify', '--repair', '--json');
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(JSON.parse(repaired.stdout)).toMatchObject({ repair: { weeks: [{ outcome: 'loaded' }] } });
    expect(await weekInWarehouse()).toEqual({ n: facts.rows, entries: facts.entries, exits: facts.exits });
  });

  it('re-fetches a week whose Parquet the lake lost, also into a new warehouse', async () => {
    expect((await run()).code).toBe(0);
    const manifest = await readManifest();
    await rm(join(dir, 'lake', ...manifest.objects.parquet.key.split('/')));
    await rm(join(dir, 'wh.duckdb'));
    const plan = (
      JSON.parse((await cli('plan', '--date', WEEK, '--json')).stdout) as { weeks: { problems: string[] }[] }
    ).weeks;
    expect(plan[0]!.problems.join(' ')).toMatch(/parquet object .* is missing/);
    const rerun = await run();
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.json.weeks[0]).toMatchObject({ outcome: 'loaded', rows: REAL_WEEK_ROWS });
    expect(await weekInWarehouse()).toEqual({ n: facts.rows, entries: facts.entries, exits: facts.exits });
    expect((await cli('verify')).code).toBe(0);
  });

  it("rebuilds from the source when the lake's Parquet no longer matches its manifest (same size)", async () => {
    expect((await run()).code).toBe(0);
    const manifest = await readManifest();
    const parquet = join(dir, 'lake', ...manifest.objects.parquet.key.split('/'));
    const bytes = await readFile(parquet);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0xff;
    await writeFile(parquet, bytes);
    const verify = JSON.parse((await cli('verify', '--json')).stdout) as { weeks: { problems: string[] }[] };
    expect(verify.weeks[0]!.problems.join(' ')).toMatch(/does not match its sha256/);
    await tamper(`DELETE FROM turnstile_readings`);
    const rerun = await run();
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(await weekInWarehouse()).toEqual({ n: facts.rows, entries: facts.entries, exits: facts.exits });
    expect((await cli('verify')).code).toBe(0);
  });

  it('fails the load, loading nothing, when the warehouse counts other rows than the manifest promises', async () => {
    expect((await run()).code).toBe(0);
    const manifest = JSON.parse(await readFile(manifestPath(), 'utf8')) as { rows: number };
    await writeFile(manifestPath(), JSON.stringify({ ...manifest, rows: REAL_WEEK_ROWS - 1 }, null, 2));
    await tamper(`DELETE FROM turnstile_readings`);
    const rerun = await run();
    expect(rerun.code).toBe(1);
    expect(rerun.json.weeks[0]!.detail).toMatch(
      /loaded 253237 rows for 2023-06-03 but the manifest has 253236/,
    );
    expect((await weekInWarehouse()).n).toBe(0);
  });
});
