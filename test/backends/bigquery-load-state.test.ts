/**
 * BigQuery as it really behaves, end to end through the worker: the load state lives in the
 * dataset (`_mta_ingest_loads`), so weeks stay loaded after BigQuery drops their jobs' metadata;
 * read-only commands find a regional dataset's location; `report` runs on BigQuery's SQL and
 * answers as DuckDB does. What every backend does alike (verify, report) is in backends.test.ts.
 * The stand-in holds real rows (read from the Parquet in fake-gcs-server), enforces job expiry,
 * job locations and Parquet modes, and runs queries through sqlglot in DuckDB
 * (test/support/peers/bigquery-standin*.ts).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BigQuery } from '@google-cloud/bigquery';
import type { SourceServer } from '../support/peers/source-server.ts';
import type { BigQueryStandin } from '../support/peers/bigquery-standin.ts';
import { startCloudPeers, type CloudPeers } from '../support/harnesses/cloud-peers.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { factsOf, realWeekFile, REAL_WEEK_ROWS, WEEK, NOW } from '../support/fixtures/real-week.ts';
import { resolveConfig } from '../../src/config.ts';
import { runCommand, type RunSummary } from '../../src/commands/run.ts';
import { statusCommand } from '../../src/commands/status.ts';
import { planCommand } from '../../src/commands/plan.ts';
import { verifyCommand } from '../../src/commands/verify.ts';
import { reportCommand } from '../../src/commands/report.ts';
import { formatReport } from '../../src/cli-output.ts';
import type { BackendOverrides } from '../../src/backends.ts';
import { silentLogger } from '../../src/log.ts';
import { TABLE_NAME, COLUMNS } from '../../src/schema/turnstile-schema.ts';
import { INTERVALS_VIEW } from '../../src/warehouse/intervals-view.ts';
import { LOADS_TABLE } from '../../src/warehouse/bigquery/bigquery-load-state.ts';

const PROJECT = 'test-project';
const BUCKET = 'mta-lake';
const TOKYO_BUCKET = 'mta-lake-tokyo';
const DAY = 86_400_000;

let source: SourceServer;
let standin: BigQueryStandin;
let client: BigQuery;
let overrides: BackendOverrides;
let dir: string;
let serial = 0;

let peers: CloudPeers;

beforeAll(async () => {
  // Every bucket in Tokyo (fake-gcs-server gives all its buckets one location): a dataset in
  // the US multi-region loads from a bucket anywhere, one in asia-northeast1 only from there.
  peers = await startCloudPeers({
    project: PROJECT,
    buckets: [BUCKET, TOKYO_BUCKET],
    location: 'ASIA-NORTHEAST1',
  });
  ({ source, standin, bigquery: client, overrides } = peers);
});
afterAll(() => peers.close());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-bq-state-'));
  serial += 1;
  return () => rm(dir, { recursive: true, force: true });
});

const dataset = () => `mta_state_${serial}`;
const lakeUri = (bucket = BUCKET) => `gs://${bucket}/state-${serial}`;
const warehouseUri = (suffix = '') => `bigquery://${PROJECT}/${dataset()}${suffix}`;

function config(lake: string, warehouse: string) {
  return resolveConfig(
    { sourceUrl: source.baseUrl, lake, warehouse, workDir: dir, fetchBackoffMs: '10' },
    {},
  );
}

function run(lake = lakeUri(), warehouse = warehouseUri(), force = false): Promise<RunSummary> {
  return runCommand({
    selection: { date: WEEK },
    force,
    config: config(lake, warehouse),
    now: new Date(NOW),
    log: silentLogger,
    overrides,
  });
}

/** Rows of a query run through the real client against the stand-in's SQL. */
async function select(sql: string, location?: string): Promise<Record<string, unknown>[]> {
  const [rows] = await client.query({ query: sql, ...(location && { location }) });
  return rows as Record<string, unknown>[];
}

const loadJobs = () =>
  [...standin.jobs.values()].filter(
    (job) => job.configuration.load?.destinationTable?.datasetId === dataset(),
  );

describe('the load state lives in the dataset', () => {
  it('records the week with the figures its partition holds, and keeps it loaded after its job expired', async () => {
    const first = await run();
    expect(first.weeks[0], JSON.stringify(first.weeks[0])).toMatchObject({
      outcome: 'loaded',
      rows: REAL_WEEK_ROWS,
    });
    const facts = await factsOf(await realWeekFile());
    const records = await select(
      `SELECT drop_date, row_count, CAST(entries_sum AS STRING) AS entries_sum, CAST(exits_sum AS STRING) AS exits_sum, job_id
       FROM \`${PROJECT}.${dataset()}.${LOADS_TABLE}\``,
    );
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ row_count: REAL_WEEK_ROWS, job_id: loadJobs()[0]!.jobId });
    expect(String(records[0]!.entries_sum).replace(/\.0*$/, '')).toBe(String(facts.entries));
    expect(String(records[0]!.exits_sum).replace(/\.0*$/, '')).toBe(String(facts.exits));

    // Seven months on: BigQuery no longer answers for the load job.
    standin.advanceClock(210 * DAY);
    const job = loadJobs()[0]!;
    const gone = await client
      .job(job.jobId, { location: 'US' })
      .getMetadata()
      .catch((error: { code?: number }) => error);
    expect((gone as { code?: number }).code).toBe(404);

    const status = await statusCommand({ config: config(lakeUri(), warehouseUri()), overrides });
    expect(status).toMatchObject([{ dropDate: WEEK, warehouse: 'loaded' }]);
    const again = await run();
    expect(again.weeks[0]).toMatchObject({ outcome: 'already-loaded' });
    expect(loadJobs()).toHaveLength(1);
    const verified = await verifyCommand({
      config: config(lakeUri(), warehouseUri()),
      repair: false,
      now: new Date(NOW),
      log: silentLogger,
      overrides,
    });
    expect(verified.weeks).toEqual([{ dropDate: WEEK, state: 'ok', problems: [] }]);
    standin.advanceClock(-210 * DAY);
  });

  it('a source that changes back after its job expired loads again under the next job id', async () => {
    const real = await realWeekFile();
    const lines = (await readFile(real, 'latin1')).split('\n');
    const fields = lines[1]!.split(',');
    fields[9] = String(Number(fields[9]) + 1).padStart(fields[9]!.length, '0');
    lines[1] = fields.join(',');
    const changed = join(dir, 'changed.txt');
    await writeFile(changed, lines.join('\n'), 'latin1');
    try {
      expect((await run()).weeks[0]).toMatchObject({ outcome: 'loaded' });
      source.serve({ name: 'turnstile_230603.txt', path: changed });
      expect((await run()).weeks[0]).toMatchObject({ outcome: 'loaded' });
      standin.advanceClock(200 * DAY);
      source.serve({ name: 'turnstile_230603.txt', path: real });
      const back = await run();
      expect(back.weeks[0], JSON.stringify(back.weeks[0])).toMatchObject({ outcome: 'loaded' });
    } finally {
      source.serve({ name: 'turnstile_230603.txt', path: real });
      standin.advanceClock(-200 * DAY);
    }
    const ids = loadJobs().map((job) => job.jobId);
    // A's first id is taken by a job BigQuery no longer keeps (409, then 404): A loads as _retry2.
    expect(ids).toHaveLength(3);
    expect(ids[2]).toBe(`${ids[0]}_retry2`);
    const [held] = await select(
      `SELECT COUNT(*) AS n, SUM(entries) AS entries FROM \`${PROJECT}.${dataset()}.${TABLE_NAME}\` WHERE drop_date = DATE '${WEEK}'`,
    );
    const facts = await factsOf(real);
    expect(held).toMatchObject({ n: REAL_WEEK_ROWS, entries: Number(facts.entries) });
  });

  it('relaxes the REQUIRED fields of a table an earlier version made, then loads into it', async () => {
    await client.createDataset(dataset(), { location: 'US' });
    await client.dataset(dataset()).createTable(TABLE_NAME, {
      schema: { fields: COLUMNS.map((c) => ({ name: c.name, type: c.type, mode: c.mode })) },
      timePartitioning: { type: 'DAY', field: 'drop_date' },
    });
    expect((await run()).weeks[0]).toMatchObject({ outcome: 'loaded' });
    const [metadata] = (await client.dataset(dataset()).table(TABLE_NAME).getMetadata()) as [
      { schema: { fields: { mode?: string }[] } },
      unknown,
    ];
    expect(new Set(metadata.schema.fields.map((f) => f.mode ?? 'NULLABLE'))).toEqual(new Set(['NULLABLE']));
  });
});

describe('a dataset outside the US and EU multi-regions', () => {
  it('read-only commands find its location with datasets.get and pass it to every job call', async () => {
    const lake = lakeUri(TOKYO_BUCKET);
    const loaded = await run(lake, warehouseUri('?location=asia-northeast1'));
    expect(loaded.weeks[0], JSON.stringify(loaded.weeks[0])).toMatchObject({ outcome: 'loaded' });
    const before = standin.requests.length;
    // No location in the URI: the default (US) would not find the week's jobs there.
    const plain = config(lake, warehouseUri());
    expect(await statusCommand({ config: plain, overrides })).toMatchObject([
      { dropDate: WEEK, warehouse: 'loaded' },
    ]);
    const planned = await planCommand({
      selection: { date: WEEK },
      force: false,
      config: plain,
      now: new Date(NOW),
      overrides,
    });
    expect(planned[0]).toMatchObject({
      dropDate: WEEK,
      action: 'check source, skip if unchanged',
      problems: [],
    });
    const jobCalls = standin.requests.slice(before).filter((r) => /\/(jobs|queries)(\/|$)/.test(r.path));
    expect(jobCalls.length).toBeGreaterThan(0);
    for (const call of jobCalls) {
      const location =
        call.method === 'POST'
          ? ((call.body as { jobReference?: { location?: string }; location?: string }).jobReference
              ?.location ?? (call.body as { location?: string }).location)
          : call.query.location;
      expect(location, `${call.method} ${call.path}`).toBe('asia-northeast1');
    }
  });
});

describe('report on BigQuery', () => {
  it('answers what DuckDB answers for the same week, through a query job, with the bytes it processed', async () => {
    expect((await run()).weeks[0]).toMatchObject({ outcome: 'loaded' });
    const duckdbFile = join(dir, 'wh.duckdb');
    expect((await run(join(dir, 'lake'), duckdbFile)).weeks[0]).toMatchObject({ outcome: 'loaded' });
    const report = (warehouse: string, lake: string) =>
      reportCommand({
        date: WEEK,
        limit: '15',
        config: config(lake, warehouse),
        now: new Date(NOW),
        overrides,
      });
    const onBigQuery = await report(warehouseUri(), lakeUri());
    const onDuckDb = await report(duckdbFile, join(dir, 'lake'));
    expect(onDuckDb.stations).toHaveLength(15);
    expect(onBigQuery.stations).toEqual(onDuckDb.stations);
    expect(onDuckDb.bytesProcessed).toBeUndefined();
    expect(onBigQuery.bytesProcessed).toBeGreaterThan(0);
    const text = formatReport(onBigQuery).split('\n');
    expect(text.slice(0, -1)).toEqual(formatReport(onDuckDb).split('\n'));
    expect(text.at(-1)).toMatch(/^\(query processed [\d,]+ bytes\)$/);

    // The view itself, on the stand-in's BigQuery SQL and in the DuckDB file, row for row in sum.
    const summary = `COUNT(*) AS n, SUM(entries) AS entries, SUM(exits) AS exits,
      COUNTIF(entries_flag = 'jump') AS jumps, COUNTIF(entries_flag = 'backwards') AS backwards`;
    const [bq] = await select(`SELECT ${summary} FROM \`${PROJECT}.${dataset()}.${INTERVALS_VIEW}\``);
    const [duck] = await query(
      `SELECT ${summary.replaceAll(/COUNTIF\(([^)]*)\)/g, 'count(*) FILTER (WHERE $1)')} FROM ${INTERVALS_VIEW}`,
      duckdbFile,
    );
    expect(Object.fromEntries(Object.entries(bq!).map(([k, v]) => [k, Number(v)]))).toEqual(
      Object.fromEntries(Object.entries(duck!).map(([k, v]) => [k, Number(v)])),
    );
    expect(Number(bq!.n)).toBeGreaterThan(200_000);
  });
});
