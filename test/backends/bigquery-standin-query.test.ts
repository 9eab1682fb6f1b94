// The BigQuery stand-in runs queries (bigquery-standin-sql.ts, sqlglot + DuckDB), driven by the real
// @google-cloud/bigquery client: rows that Parquet loads put there, named parameters, query jobs
// and paging, DML, views, bytes processed, BigQuery's errors, and the turnstile_intervals view in
// BigQuery's dialect against the same view in DuckDB's, over a real week.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BigQuery,
  BigQueryDate,
  BigQueryDatetime,
  BigQueryTimestamp,
  type Job,
  type JobMetadata,
} from '@google-cloud/bigquery';
import { Storage } from '@google-cloud/storage';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { intervalsViewQuery } from '../../src/warehouse/intervals-view.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { realWeekFile, WEEK } from '../support/fixtures/real-week.ts';
import { rejection, tokenClient } from '../support/harnesses/cloud-peers.ts';
import { startBigQueryStandin, type BigQueryStandin } from '../support/peers/bigquery-standin.ts';
import { startFakeGcs, type FakeGcs } from '../support/peers/fake-gcs.ts';

const TOKEN = 'test-token';
const BUCKET = 'lake';
const SCHEMA = {
  fields: [
    { name: 'drop_date', type: 'DATE' },
    { name: 'station', type: 'STRING' },
    { name: 'unit', type: 'STRING' },
    { name: 'entries', type: 'INT64' },
    { name: 'reading_at', type: 'DATETIME' },
    { name: 'seen_at', type: 'TIMESTAMP' },
    { name: 'ratio', type: 'FLOAT64' },
    { name: 'open', type: 'BOOL' },
  ],
};
/** Three rows in two DAY partitions (2023-06-03 and 2023-06-10), written to Parquet by DuckDB. */
const SMALL_ROWS = `SELECT * FROM (VALUES
  (DATE '2023-06-03', '59 ST', 'R051', 100::BIGINT, TIMESTAMP '2023-06-02 12:00:00', TIMESTAMPTZ '2023-06-02 16:00:00+00', 0.5::DOUBLE, true),
  (DATE '2023-06-03', 'TIMES SQ-42 ST', 'R032', 250::BIGINT, TIMESTAMP '2023-06-02 16:00:00.25', NULL::TIMESTAMPTZ, 1.25::DOUBLE, false),
  (DATE '2023-06-10', '59 ST', NULL, 300::BIGINT, TIMESTAMP '2023-06-09 12:00:00', TIMESTAMPTZ '2023-06-09 16:00:00.5+00', 2.0::DOUBLE, true)
) AS t(drop_date, station, unit, entries, reading_at, seen_at, ratio, open)`;

let gcs: FakeGcs;
let storage: Storage;
let dir: string;
let standin: BigQueryStandin;
let bigquery: BigQuery;

const client = (url: string): BigQuery => tokenClient(url, 'proj', TOKEN);

/** Writes `select`'s rows to a Parquet file with DuckDB and uploads it as gs://lake/<name>. */
async function uploadParquet(name: string, select: string): Promise<string> {
  const path = join(dir, name);
  await query(`COPY (${select}) TO '${path}' (FORMAT parquet)`);
  await storage.bucket(BUCKET).upload(path, { destination: name });
  return `gs://${BUCKET}/${name}`;
}

/** A load job through the client, polled to DONE; rejects if the load failed. */
async function load(uri: string, tableId: string, writeDisposition = 'WRITE_APPEND'): Promise<void> {
  const [job] = await bigquery.createJob({
    configuration: {
      load: {
        sourceUris: [uri],
        sourceFormat: 'PARQUET',
        destinationTable: { projectId: 'proj', datasetId: 'd', tableId },
        writeDisposition,
      },
    },
  });
  job.pollIntervalMs = 10;
  await job.promise();
}

let smallUri: string;
let dayUri: string;

/** statistics.totalBytesProcessed of a query job, polled to DONE. */
async function bytes(sql: string, params?: Record<string, unknown>): Promise<string | undefined> {
  const [job] = await bigquery.createQueryJob({ query: sql, ...(params && { params }) });
  return (await finish(job)).statistics?.totalBytesProcessed ?? undefined;
}

/** Polls a job to DONE every 10 ms (the client's default is 500 ms); rejects if it failed. */
async function finish(job: Job): Promise<JobMetadata> {
  job.pollIntervalMs = 10;
  const [metadata] = (await job.promise()) as [JobMetadata];
  return metadata;
}

beforeAll(async () => {
  process.env.METADATA_SERVER_DETECTION = 'none';
  delete process.env.BIGQUERY_EMULATOR_HOST;
  gcs = await startFakeGcs({ buckets: [BUCKET] });
  storage = new Storage({ apiEndpoint: gcs.url, projectId: 'proj', useAuthWithCustomEndpoint: false });
  dir = await mkdtemp(join(tmpdir(), 'bq-standin-query-'));
  smallUri = await uploadParquet('small.parquet', SMALL_ROWS);
  dayUri = await uploadParquet(
    'day.parquet',
    `SELECT * FROM (${SMALL_ROWS}) WHERE drop_date = DATE '2023-06-03'`,
  );
});

afterAll(async () => {
  await gcs?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  standin = await startBigQueryStandin({ expectedToken: TOKEN, gcsUrl: gcs.url });
  bigquery = client(standin.url);
  await bigquery.dataset('d').create({ location: 'US' });
  await bigquery
    .dataset('d')
    .table('t')
    .create({ schema: SCHEMA, timePartitioning: { type: 'DAY', field: 'drop_date' } });
  await load(smallUri, 't');
});

afterEach(async () => {
  await standin.close();
});

describe('queries over loaded rows', () => {
  it('bigquery.query() with DATE, STRING and INT64 parameters returns the rows as the client documents them', async () => {
    const [rows] = await bigquery.query({
      query:
        'SELECT *, CAST("2.75" AS NUMERIC) AS fare FROM `proj.d.t` WHERE drop_date = @day AND station = @station AND entries >= @min ORDER BY entries',
      params: { day: bigquery.date('2023-06-03'), station: '59 ST', min: 50 },
    });
    expect(rows).toHaveLength(1);
    const row = rows[0] as Record<string, unknown>;
    expect(row.drop_date).toBeInstanceOf(BigQueryDate);
    expect(row.drop_date).toEqual({ value: '2023-06-03' });
    expect(row.reading_at).toBeInstanceOf(BigQueryDatetime);
    expect(row.reading_at).toEqual({ value: '2023-06-02T12:00:00' });
    expect(row.seen_at).toBeInstanceOf(BigQueryTimestamp);
    expect((row.seen_at as BigQueryTimestamp).value).toBe('2023-06-02T16:00:00.000Z');
    expect(row).toMatchObject({ station: '59 ST', unit: 'R051', entries: 100, ratio: 0.5, open: true });
    // NUMERIC as the client's Big (big.js) decimal.
    expect(row.fare?.constructor.name).toBe('Big');
    expect(String(row.fare)).toBe('2.75');
  });

  it('answers jobs.query in BigQuery REST form: schema types, string cells, null, float-second timestamps', async () => {
    const response = await fetch(`${standin.url}/bigquery/v2/projects/proj/queries`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        query:
          'SELECT entries, ratio, open, CAST(ratio AS NUMERIC) AS fare, reading_at, seen_at, unit FROM t WHERE drop_date = "2023-06-03" ORDER BY entries',
        useLegacySql: false,
        defaultDataset: { projectId: 'proj', datasetId: 'd' },
      }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      kind: 'bigquery#queryResponse',
      jobReference: { projectId: 'proj', location: 'US' },
      jobComplete: true,
      cacheHit: false,
      totalRows: '2',
      schema: {
        fields: [
          { name: 'entries', type: 'INTEGER' },
          { name: 'ratio', type: 'FLOAT' },
          { name: 'open', type: 'BOOLEAN' },
          { name: 'fare', type: 'NUMERIC' },
          { name: 'reading_at', type: 'DATETIME' },
          { name: 'seen_at', type: 'TIMESTAMP' },
          { name: 'unit', type: 'STRING' },
        ],
      },
      rows: [
        {
          f: [
            { v: '100' },
            { v: '0.5' },
            { v: 'true' },
            { v: '0.5' },
            { v: '2023-06-02T12:00:00' },
            { v: '1.6857216E9' },
            { v: 'R051' },
          ],
        },
        {
          f: [
            { v: '250' },
            { v: '1.25' },
            { v: 'false' },
            { v: '1.25' },
            { v: '2023-06-02T16:00:00.250000' },
            { v: null },
            { v: 'R032' },
          ],
        },
      ],
    });
    expect(standin.jobs.get(String((body.jobReference as { jobId: string }).jobId))?.states).toEqual([
      'DONE',
    ]);
  });

  it('a query job (createQueryJob) answers jobComplete false until DONE, then pages with maxResults', async () => {
    const [job] = await bigquery.createQueryJob({
      query: 'SELECT entries FROM d.t ORDER BY entries',
      location: 'US',
    });
    const queries = () => standin.requests.filter((r) => r.path.includes('/queries/'));
    // Inserted PENDING; getQueryResults polls like jobs.get: PENDING, RUNNING (jobComplete: false), DONE.
    for (let poll = 0; poll < 2; poll++) {
      const [, , notYet] = (await job.getQueryResults({ autoPaginate: false, maxResults: 2 })) as unknown as [
        unknown,
        unknown,
        { jobComplete: boolean; rows?: unknown },
      ];
      expect(notYet).toMatchObject({ jobComplete: false });
      expect(notYet.rows).toBeUndefined();
    }
    const [first, next, firstResponse] = (await job.getQueryResults({
      autoPaginate: false,
      maxResults: 2,
    })) as unknown as [
      { entries: number }[],
      { pageToken: string },
      { totalRows: string; totalBytesProcessed: string },
    ];
    expect(first).toEqual([{ entries: 100 }, { entries: 250 }]);
    expect(firstResponse.totalRows).toBe('3');
    const [second, after] = (await job.getQueryResults({ ...next, autoPaginate: false })) as unknown as [
      { entries: number }[],
      unknown,
    ];
    expect(second).toEqual([{ entries: 300 }]);
    expect(after).toBeNull();
    expect(queries().map((r) => r.query.maxResults)).toEqual(['2', '2', '2', '2']);
    // Without maxResults, one page holds every row. (The client's paginator reads maxResults as
    // a cap on the rows it returns in all, so auto-pagination with it stops after the first page.)
    const [all] = await job.getQueryResults();
    expect(all).toEqual([{ entries: 100 }, { entries: 250 }, { entries: 300 }]);
    const metadata = await finish(job);
    expect(metadata.statistics?.query).toMatchObject({ statementType: 'SELECT', totalBytesProcessed: '24' });
    expect(metadata.statistics?.totalBytesProcessed).toBe('24');
  });

  it('DML INSERT ... VALUES (0 bytes, numDmlAffectedRows) and then SELECT sees the row', async () => {
    const [job] = await bigquery.createQueryJob({
      query:
        'INSERT INTO `proj.d.t` (drop_date, station, entries) VALUES (@day, @station, 7), (@day, "B", 8)',
      params: { day: bigquery.date('2023-06-17'), station: 'A' },
    });
    const metadata = await finish(job);
    expect(metadata.statistics?.query).toMatchObject({
      statementType: 'INSERT',
      numDmlAffectedRows: '2',
      totalBytesProcessed: '0',
    });
    const [rows] = await bigquery.query({
      query: 'SELECT station, entries FROM d.t WHERE drop_date = @day ORDER BY station',
      params: { day: bigquery.date('2023-06-17') },
    });
    expect(rows).toEqual([
      { station: 'A', entries: 7 },
      { station: 'B', entries: 8 },
    ]);
  });

  it('a STRING parameter holding SQL round-trips as data (no injection)', async () => {
    const evil = "'; DROP TABLE t; --";
    const [rows] = await bigquery.query({
      query: 'SELECT @evil AS text, COUNT(*) AS n FROM d.t WHERE station != @evil',
      params: { evil },
    });
    expect(rows).toEqual([{ text: evil, n: 3 }]);
    const [count] = await bigquery.query('SELECT COUNT(*) AS n FROM proj.d.t');
    expect(count).toEqual([{ n: 3 }]);
  });
});

describe('parameters and loads', () => {
  it('positional parameters, an ARRAY parameter and a typed NULL', async () => {
    const [rows] = await bigquery.query({
      query: 'SELECT station FROM d.t WHERE entries IN UNNEST(?) AND drop_date = ? ORDER BY station',
      params: [[100, 300], bigquery.date('2023-06-10')],
    });
    expect(rows).toEqual([{ station: '59 ST' }]);
    const [nulls] = await bigquery.query({
      query: 'SELECT @x IS NULL AS is_null, @x AS x',
      params: { x: null },
      types: { x: 'INT64' },
    });
    expect(nulls).toEqual([{ is_null: true, x: null }]);
  });

  it('WRITE_TRUNCATE into a partition replaces its rows, WRITE_APPEND adds, a table delete drops them', async () => {
    const count = async (): Promise<unknown> => {
      const [rows] = await bigquery.query('SELECT COUNT(*) AS n FROM d.t');
      return rows;
    };
    await load(dayUri, 't$20230603', 'WRITE_TRUNCATE');
    expect(await count()).toEqual([{ n: 3 }]);
    await load(dayUri, 't', 'WRITE_APPEND');
    expect(await count()).toEqual([{ n: 5 }]);
    // The summary map keeps its chunks: the partition was replaced by one, then appended to.
    expect(
      standin.partitions
        .get('proj.d.t')
        ?.get('20230603')
        ?.map((c) => c.rows),
    ).toEqual([2, 2]);
    await load(smallUri, 't', 'WRITE_TRUNCATE');
    expect(await count()).toEqual([{ n: 3 }]);
    await bigquery.dataset('d').table('t').delete();
    const gone = await rejection(bigquery.query('SELECT COUNT(*) AS n FROM d.t'));
    expect(gone.code).toBe(404);
  });
});

describe('tables', () => {
  it('REQUIRED is NOT NULL; a patch that relaxes it and adds a column keeps the rows', async () => {
    const table = bigquery.dataset('d').table('u');
    await table.create({ schema: { fields: [{ name: 'a', type: 'INT64', mode: 'REQUIRED' }] } });
    const nullIntoRequired = await rejection(bigquery.query('INSERT INTO d.u (a) VALUES (NULL)'));
    expect(nullIntoRequired.code).toBe(400);
    expect(nullIntoRequired.errors?.[0]).toMatchObject({ reason: 'invalidQuery' });
    await bigquery.query('INSERT INTO d.u (a) VALUES (1)');
    await table.setMetadata({
      schema: {
        fields: [
          { name: 'a', type: 'INT64', mode: 'NULLABLE' },
          { name: 'b', type: 'STRING' },
        ],
      },
    });
    await bigquery.query('INSERT INTO d.u (b) VALUES ("x")');
    const [rows] = await bigquery.query('SELECT a, b FROM d.u ORDER BY a NULLS LAST');
    expect(rows).toEqual([
      { a: 1, b: null },
      { a: null, b: 'x' },
    ]);
  });
});

describe('views', () => {
  it('a view created through the client is queried like a table; an invalid one is refused with 400 invalid', async () => {
    await bigquery
      .dataset('d')
      .table('per_station')
      .create({
        view: {
          query: 'SELECT station, SUM(entries) AS entries FROM `proj.d.t` GROUP BY station',
          useLegacySql: false,
        },
      });
    const [rows] = await bigquery.query('SELECT * FROM d.per_station ORDER BY station');
    expect(rows).toEqual([
      { station: '59 ST', entries: 400 },
      { station: 'TIMES SQ-42 ST', entries: 250 },
    ]);
    // Bytes of a view are its base table's: station and entries of every row (see 'bytes processed').
    expect(await bytes('SELECT * FROM d.per_station')).toBe('54');
    const unknownColumn = await rejection(
      bigquery
        .dataset('d')
        .table('bad')
        .create({ view: { query: 'SELECT nope FROM `proj.d.t`', useLegacySql: false } }),
    );
    expect(unknownColumn.code).toBe(400);
    expect(unknownColumn.errors?.[0]).toMatchObject({ reason: 'invalid' });
    const unknownTable = await rejection(
      bigquery
        .dataset('d')
        .table('bad')
        .create({ view: { query: 'SELECT 1 FROM `proj.d.missing`', useLegacySql: false } }),
    );
    expect(unknownTable.code).toBe(400);
    expect(standin.tables.has('proj.d.bad')).toBe(false);
  });
});

describe('bytes processed', () => {
  // Hand computation, BigQuery's data sizes: station is STRING (2 + UTF-8 bytes), entries INT64 (8),
  // and drop_date DATE (8) whenever the WHERE references it (every referenced column counts).
  // 2023-06-03: '59 ST' (2+5) + 'TIMES SQ-42 ST' (2+14) + 2 entries (16) + 2 dates (16) = 55;
  // 2023-06-10: '59 ST' (7) + 8 + 8 = 23; both days: 30 + 24 (+ 24 with drop_date).
  it('counts the referenced columns of the pinned partitions only, else of the whole table', async () => {
    expect(
      await bytes('SELECT station, entries FROM d.t WHERE drop_date = @day', {
        day: bigquery.date('2023-06-03'),
      }),
    ).toBe('55');
    expect(await bytes('SELECT station, entries FROM d.t WHERE drop_date IN ("2023-06-10")')).toBe('23');
    expect(
      await bytes('SELECT station, entries FROM d.t WHERE drop_date BETWEEN "2023-06-01" AND "2023-06-30"'),
    ).toBe('78');
    expect(await bytes('SELECT station, entries FROM d.t')).toBe('54');
    // Not a constant pin of the partitioning column: the whole table, drop_date (3 × 8) included.
    expect(await bytes('SELECT station, entries FROM d.t WHERE drop_date > "2023-06-05"')).toBe('78');
    // NULL costs 0: unit is NULL in the third row.
    expect(await bytes('SELECT unit FROM d.t')).toBe(String(2 + 4 + 2 + 4));
  });
});

describe('errors as BigQuery gives them', () => {
  it('a syntax error is 400 invalidQuery "Syntax error: ..."; a missing table is 404 notFound', async () => {
    const syntax = await rejection(bigquery.query('SELEC 1'));
    expect(syntax.code).toBe(400);
    expect(syntax.errors?.[0]).toMatchObject({ reason: 'invalidQuery' });
    expect(syntax.message).toMatch(/^Syntax error: /);

    const missing = await rejection(bigquery.query('SELECT * FROM proj.d.missing'));
    expect(missing.code).toBe(404);
    expect(missing.errors?.[0]).toMatchObject({ reason: 'notFound' });
    expect(missing.message).toBe('Not found: Table proj:d.missing was not found in location US');

    const column = await rejection(bigquery.query('SELECT nope FROM proj.d.t'));
    expect(column.code).toBe(400);
    expect(column.errors?.[0]).toMatchObject({ reason: 'invalidQuery' });

    // A query job fails DONE with errorResult; getQueryResults then answers the error.
    const [job] = await bigquery.createQueryJob({ query: 'SELECT * FROM d.missing' });
    job.pollIntervalMs = 10;
    const failed = await rejection(job.promise());
    expect(failed.message).toBe('Not found: Table proj:d.missing was not found in location US');
    expect(standin.jobs.get(job.id!)?.error).toMatchObject({ reason: 'notFound' });
  });

  it('getQueryResults with another location than the job is 404; legacy SQL is 400', async () => {
    const [job] = await bigquery.createQueryJob({ query: 'SELECT 1 AS one', location: 'US' });
    const elsewhere = bigquery.job(job.id!, { location: 'EU' });
    const err = await rejection(elsewhere.getQueryResults());
    expect(err.code).toBe(404);
    const legacy = await rejection(bigquery.createQueryJob({ query: 'SELECT 1', useLegacySql: true }));
    expect(legacy.code).toBe(400);
  });
});

describe('turnstile_intervals in BigQuery SQL', () => {
  it('over one real week, equals the DuckDB dialect view: rows, sums of entries and exits, flags', async () => {
    const csv = await realWeekFile();
    const path = join(dir, 'week.parquet');
    const names = [
      'ca',
      'unit',
      'scp',
      'station',
      'line_name',
      'division',
      'day',
      'time',
      'descr',
      'entries',
      'exits',
    ];
    const readings = `SELECT DATE '${WEEK}' AS drop_date, trim(ca) AS control_area, trim(unit) AS unit, trim(scp) AS scp,
      trim(station) AS station, trim(line_name) AS line_name, trim(division) AS division,
      strptime(trim(day) || ' ' || trim(time), '%m/%d/%Y %H:%M:%S') AS reading_at, trim(descr) AS description,
      CAST(trim(entries) AS BIGINT) AS entries, CAST(trim(exits) AS BIGINT) AS exits,
      CAST(row_number() OVER () + 1 AS BIGINT) AS source_line
      FROM read_csv('${csv}', header = true, all_varchar = true, names = [${names.map((n) => `'${n}'`).join(', ')}])`;
    const totals = (view: string, countIf: (c: string) => string) =>
      `SELECT COUNT(*) AS n, SUM(entries) AS entries, SUM(exits) AS exits,
        ${countIf("entries_flag = 'backwards'")} AS eb, ${countIf("entries_flag = 'jump'")} AS ej,
        ${countIf("exits_flag = 'backwards'")} AS xb, ${countIf("exits_flag = 'jump'")} AS xj FROM ${view}`;
    const [expected] = await query(
      `CREATE TABLE turnstile_readings AS ${readings};
       COPY turnstile_readings TO '${path}' (FORMAT parquet);
       CREATE VIEW turnstile_intervals AS ${intervalsViewQuery('duckdb')};
       ${totals('turnstile_intervals', (c) => `CAST(count(*) FILTER (WHERE ${c}) AS BIGINT)`)}`,
    );
    await storage.bucket(BUCKET).upload(path, { destination: 'week.parquet' });
    const string = (name: string) => ({ name, type: 'STRING' });
    await bigquery
      .dataset('d')
      .table('turnstile_readings')
      .create({
        schema: {
          fields: [
            { name: 'drop_date', type: 'DATE' },
            ...['control_area', 'unit', 'scp', 'station', 'line_name', 'division'].map(string),
            { name: 'reading_at', type: 'DATETIME' },
            string('description'),
            ...['entries', 'exits', 'source_line'].map((name) => ({ name, type: 'INT64' })),
          ],
        },
        timePartitioning: { type: 'DAY', field: 'drop_date' },
      });
    await load(
      `gs://${BUCKET}/week.parquet`,
      `turnstile_readings$${WEEK.replaceAll('-', '')}`,
      'WRITE_TRUNCATE',
    );
    await bigquery
      .dataset('d')
      .table('turnstile_intervals')
      .create({
        view: { query: intervalsViewQuery('bigquery', '`proj.d.turnstile_readings`'), useLegacySql: false },
      });
    const [actual] = await bigquery.query({
      query: totals('`proj.d.turnstile_intervals`', (c) => `COUNTIF(${c})`),
    });
    const plain = (row: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(row).map(([k, v]) => [k, String(v)]));
    expect(plain(actual[0] as Record<string, unknown>)).toEqual(plain(expected!));
    expect(Number(expected!.n)).toBeGreaterThan(200_000);
  }, 120_000);
});
