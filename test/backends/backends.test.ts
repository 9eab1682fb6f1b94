/**
 * One suite, every backend: the pipeline runs the real week through each pairing of lake and
 * warehouse (local folder or GCS; DuckDB or BigQuery), against real peers on 127.0.0.1: the
 * source HTTP server, fake-gcs-server for GCS, and, since no BigQuery emulator installs here,
 * a stand-in of BigQuery's REST API driven by the real @google-cloud/bigquery client.
 * (BigQuery cannot load from a local folder, so that pairing is refused, and tested as such.)
 */
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Storage } from '@google-cloud/storage';
import type { SourceServer } from '../support/peers/source-server.ts';
import { startCloudPeers, type CloudPeers } from '../support/harnesses/cloud-peers.ts';
import type { FakeGcs } from '../support/peers/fake-gcs.ts';
import { startBigQueryStandin, type BigQueryStandin } from '../support/peers/bigquery-standin.ts';
import { startFaultProxy, type ProxyFault } from '../support/peers/fault-proxy.ts';
import { runCli } from '../support/harnesses/cli.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import { query } from '../support/harnesses/duckdb-query.ts';
import { REAL_WEEK_ROWS, realWeekFile, WEEK, NOW } from '../support/fixtures/real-week.ts';
import { resolveConfig } from '../../src/config.ts';
import { runCommand, type RunSummary } from '../../src/commands/run.ts';
import { statusCommand } from '../../src/commands/status.ts';
import { verifyCommand } from '../../src/commands/verify.ts';
import { reportCommand } from '../../src/commands/report.ts';
import { topStationsQuery } from '../../src/warehouse/station-totals.ts';
import type { StationTotal } from '../../src/warehouse/warehouse.ts';
import { DuckDBInstance } from '@duckdb/node-api';
import { openLake, type BackendOverrides } from '../../src/backends.ts';
import { parseManifest } from '../../src/manifest/manifest.ts';
import { weekKeys } from '../../src/lake/lake-layout.ts';
import { silentLogger } from '../../src/log.ts';
import { UsageError } from '../../src/errors.ts';
import { TABLE_NAME, bigquerySchema } from '../../src/schema/turnstile-schema.ts';
import { INTERVALS_VIEW, intervalsViewQuery } from '../../src/warehouse/intervals-view.ts';

const BUCKET = 'mta-lake';
const PROJECT = 'test-project';

let source: SourceServer;
let gcs: FakeGcs;
let bigquery: BigQueryStandin;
let overrides: BackendOverrides;
let dir: string;
let serial = 0;

let peers: CloudPeers;

beforeAll(async () => {
  peers = await startCloudPeers({ project: PROJECT, buckets: [BUCKET], location: 'US' });
  ({ source, gcs, standin: bigquery, overrides } = peers);
});
afterAll(() => peers.close());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-backends-'));
  serial += 1;
  return () => rm(dir, { recursive: true, force: true });
});

interface Backend {
  name: string;
  lake: () => string;
  warehouse: () => string;
  /** Rows the warehouse holds for the week, read back through the backend's own peer. */
  rowsInWarehouse: () => Promise<number>;
  /** Prepares the peer for one more load (the BigQuery stand-in plays one job per script). */
  expectLoad: () => void;
  /** Deletes the week's rows matching `where` behind the tool's back, through the peer. */
  deleteRows: (where: string) => Promise<void>;
}

const gcsLake = () => `gs://${BUCKET}/run-${serial}`;
const duckdbFile = () => join(dir, 'wh.duckdb');
const dataset = () => `mta_${serial}`;

/** Runs a statement on the warehouse file with a DuckDB of the test's own, read-write. */
async function duckdbExec(sql: string): Promise<void> {
  const instance = await DuckDBInstance.create(duckdbFile());
  const connection = await instance.connect();
  try {
    await connection.run(sql);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

async function duckdbRows(): Promise<number> {
  const [row] = await query(
    `SELECT count(*) AS n FROM ${TABLE_NAME} WHERE drop_date = DATE '${WEEK}'`,
    duckdbFile(),
  );
  return Number(row!.n);
}

/** The stand-in's rows for the week: what the loads into its partition left there. */
function bigqueryRows(): Promise<number> {
  const chunks = bigquery.partitions.get(`${PROJECT}.${dataset()}.${TABLE_NAME}`)?.get('20230603') ?? [];
  return Promise.resolve(chunks.reduce((sum, chunk) => sum + chunk.rows, 0));
}

/** The stand-in's load jobs into this test's dataset (query jobs read and record the load state). */
const loadJobs = () =>
  [...bigquery.jobs.values()].filter(
    (job) => job.configuration.load?.destinationTable?.datasetId === dataset(),
  );

/** Load job inserts sent to the stand-in (answered 200 or 409). */
const loadInserts = () =>
  bigquery.requests.filter(
    (r) =>
      r.method === 'POST' &&
      r.path.endsWith('/jobs') &&
      (r.body as { configuration?: { load?: unknown } }).configuration?.load !== undefined,
  );

const BACKENDS: Backend[] = [
  {
    name: 'local lake + DuckDB',
    lake: () => join(dir, 'lake'),
    warehouse: duckdbFile,
    rowsInWarehouse: duckdbRows,
    expectLoad: () => {},
    deleteRows: (where) => duckdbExec(`DELETE FROM ${TABLE_NAME} WHERE ${where}`),
  },
  {
    name: 'GCS lake + DuckDB',
    lake: gcsLake,
    warehouse: duckdbFile,
    rowsInWarehouse: duckdbRows,
    expectLoad: () => {},
    deleteRows: (where) => duckdbExec(`DELETE FROM ${TABLE_NAME} WHERE ${where}`),
  },
  {
    name: 'GCS lake + BigQuery',
    lake: gcsLake,
    warehouse: () => `bigquery://${PROJECT}/${dataset()}`,
    rowsInWarehouse: bigqueryRows,
    expectLoad: () => bigquery.script({ states: ['PENDING', 'RUNNING', 'DONE'] }),
    deleteRows: async (where) => {
      await overrides.bigquery!.query(`DELETE FROM \`${PROJECT}.${dataset()}.${TABLE_NAME}\` WHERE ${where}`);
    },
  },
];

function config(backend: Pick<Backend, 'lake' | 'warehouse'>) {
  return resolveConfig(
    {
      sourceUrl: source.baseUrl,
      lake: backend.lake(),
      warehouse: backend.warehouse(),
      workDir: dir,
      fetchBackoffMs: '10',
    },
    {},
  );
}

function run(backend: Pick<Backend, 'lake' | 'warehouse'>, force = false): Promise<RunSummary> {
  return runCommand({
    selection: { date: WEEK },
    force,
    config: config(backend),
    now: new Date(NOW),
    log: silentLogger,
    overrides,
  });
}

for (const backend of BACKENDS) {
  describe(backend.name, () => {
    it('lands the real week: raw, Parquet and manifest whose checksums and contents match, then the warehouse', async () => {
      backend.expectLoad();
      const summary = await run(backend);
      expect(summary.weeks[0]).toMatchObject({ outcome: 'loaded', rows: REAL_WEEK_ROWS, rejects: 0 });
      expect(summary.exitCode).toBe(0);
      expect(await backend.rowsInWarehouse()).toBe(REAL_WEEK_ROWS);

      const lake = await openLake(backend.lake(), overrides);
      const keys = weekKeys(WEEK);
      const manifest = parseManifest((await lake.getText(keys.manifest))!, keys.manifest);
      expect(manifest).toMatchObject({ rows: REAL_WEEK_ROWS, rejects: 0, load: { rows: REAL_WEEK_ROWS } });
      const version = `turnstile/_versions/drop_date=${WEEK}/${manifest.source.sha256.slice(0, 16)}/turnstile_230603`;
      expect(await lake.list('turnstile/')).toEqual([
        keys.manifest,
        `${version}.parquet`,
        `${version}.txt.gz`,
        `turnstile/_versions/drop_date=${WEEK}/${manifest.source.sha256.slice(0, 16)}/version.json`,
        keys.parquet,
        keys.raw,
      ]);

      // Every object, read back from the lake, is what the manifest says it is.
      for (const object of [manifest.objects.raw, manifest.objects.parquet]) {
        const local = join(dir, `check-${object.key.split('/').at(-1)}`);
        await lake.getFile(object.key, local);
        const bytes = await readFile(local);
        expect(bytes.length, object.key).toBe(object.bytes);
        expect(createHash('sha256').update(bytes).digest('hex'), object.key).toBe(object.sha256);
        if (backend.lake().startsWith('gs://')) {
          const [metadata] = await overrides
            .storage!.bucket(BUCKET)
            .file(`run-${serial}/${object.key}`)
            .getMetadata();
          expect(metadata.crc32c, object.key).toBe(object.crc32c);
          expect(String(metadata.generation)).toBe(object.generation);
        }
      }
      const raw = join(dir, 'check-turnstile_230603.txt.gz');
      expect(
        createHash('sha256')
          .update(gunzipSync(await readFile(raw)))
          .digest('hex'),
      ).toBe(manifest.source.sha256);
      const [parquet] = await query(
        `SELECT count(*) AS n FROM read_parquet('${join(dir, 'check-turnstile_230603.parquet')}')`,
      );
      expect(Number(parquet!.n)).toBe(REAL_WEEK_ROWS);
    });

    it('does nothing on a rerun: no upload, no load', async () => {
      backend.expectLoad();
      expect((await run(backend)).exitCode).toBe(0);
      const lake = await openLake(backend.lake(), overrides);
      const before = await lake.getText(weekKeys(WEEK).manifest);
      const jobsBefore = loadJobs().length;
      const generations = backend.lake().startsWith('gs://') ? await generationsOf() : [];

      const again = await run(backend);
      expect(again.weeks[0]).toMatchObject({ outcome: 'already-loaded', rows: REAL_WEEK_ROWS });
      expect(await lake.getText(weekKeys(WEEK).manifest)).toBe(before);
      expect(loadJobs()).toHaveLength(jobsBefore);
      if (backend.lake().startsWith('gs://')) expect(await generationsOf()).toEqual(generations);
      expect(await backend.rowsInWarehouse()).toBe(REAL_WEEK_ROWS);

      const [status] = await statusCommand({ config: config(backend), overrides });
      expect(status).toMatchObject({ dropDate: WEEK, rows: REAL_WEEK_ROWS, warehouse: 'loaded' });
    });

    it('--force loads again and the warehouse still holds the week once', async () => {
      backend.expectLoad();
      expect((await run(backend)).exitCode).toBe(0);
      backend.expectLoad();
      const inserts = (): number => loadInserts().length;
      const insertsBefore = inserts();
      const forced = await run(backend, true);
      expect(forced.weeks[0]).toMatchObject({ outcome: 'loaded', rows: REAL_WEEK_ROWS });
      expect(await backend.rowsInWarehouse()).toBe(REAL_WEEK_ROWS);
      // --force really loads again: a new load job on BigQuery (not the earlier one found by id).
      if (backend.warehouse().startsWith('bigquery:')) expect(inserts()).toBeGreaterThan(insertsBefore);
    });

    it('verify reads the rows: rows deleted behind the tool are drift, and --repair reloads them', async () => {
      backend.expectLoad();
      expect((await run(backend)).exitCode).toBe(0);
      await backend.deleteRows(`drop_date = DATE '${WEEK}' AND source_line < 1000`);
      const options = { config: config(backend), now: new Date(NOW), log: silentLogger, overrides };
      const audited = await verifyCommand({ ...options, repair: false });
      expect(audited.exitCode).toBe(5);
      expect(audited.weeks[0]!.problems).toEqual([
        `the warehouse holds ${REAL_WEEK_ROWS - 998} rows, the manifest ${REAL_WEEK_ROWS}`,
      ]);
      backend.expectLoad();
      const repaired = await verifyCommand({ ...options, repair: true });
      expect(repaired.exitCode, JSON.stringify(repaired.repair?.weeks)).toBe(0);
      expect(await backend.rowsInWarehouse()).toBe(REAL_WEEK_ROWS);
      expect((await verifyCommand({ ...options, repair: false })).exitCode).toBe(0);
    });

    it("report answers from the interval view what DuckDB's own query over the week's Parquet does", async () => {
      backend.expectLoad();
      expect((await run(backend)).exitCode).toBe(0);
      const report = await reportCommand({
        date: WEEK,
        limit: '10',
        config: config(backend),
        now: new Date(NOW),
        overrides,
      });
      expect(report.stations).toHaveLength(10);
      expect(report.stations).toEqual(await referenceStations(backend));
      if (backend.warehouse().startsWith('bigquery:')) expect(report.bytesProcessed).toBeGreaterThan(0);
      else expect(report.bytesProcessed).toBeUndefined();
    });
  });
}

/**
 * The top 10 stations of the real week, computed by a DuckDB of the test's own over the week's
 * Parquet read back from `backend`'s lake: the DuckDB dialect's view and report query.
 */
async function referenceStations(backend: Backend): Promise<StationTotal[]> {
  const lake = await openLake(backend.lake(), overrides);
  const parquet = join(dir, 'reference.parquet');
  await lake.getFile(weekKeys(WEEK).parquet, parquet);
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await connection.run(`CREATE TABLE ${TABLE_NAME} AS SELECT * FROM read_parquet('${parquet}')`);
    await connection.run(`CREATE VIEW ${INTERVALS_VIEW} AS ${intervalsViewQuery('duckdb')}`);
    const reader = await connection.runAndReadAll(topStationsQuery('duckdb', INTERVALS_VIEW, 10), [WEEK]);
    return reader.getRows().map(([station, lineName, entries, exits, turnstiles]) => ({
      station: station === null ? null : String(station),
      lineName: lineName === null ? null : String(lineName),
      entries: Number(entries),
      exits: Number(exits),
      turnstiles: Number(turnstiles),
    }));
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

describe('a shrunk source on every backend', () => {
  for (const backend of BACKENDS) {
    it(`${backend.name}: held back as suspect, the loaded week stays, the lake keeps both versions`, async () => {
      backend.expectLoad();
      expect((await run(backend)).exitCode).toBe(0);
      const whole = await readFile(await realWeekFile());
      const cut = whole.subarray(0, whole.length / 2);
      source.serve({
        name: 'turnstile_230603.txt',
        content: Buffer.from(cut.subarray(0, cut.lastIndexOf(0x0a) + 1)),
      });
      try {
        const jobs = loadJobs().length;
        const shrunk = await run(backend);
        expect(shrunk.exitCode).toBe(4);
        expect(shrunk.weeks[0]).toMatchObject({ outcome: 'suspect', rows: 126_618 });
        expect(loadJobs().length, 'no load job for a suspect week').toBe(jobs);
        expect(await backend.rowsInWarehouse()).toBe(REAL_WEEK_ROWS);
        const lake = await openLake(backend.lake(), overrides);
        const manifest = parseManifest((await lake.getText(weekKeys(WEEK).manifest))!, 'manifest');
        expect(manifest.rows).toBe(REAL_WEEK_ROWS);
        expect(manifest.history?.map((h) => h.outcome)).toEqual(['current', 'suspect']);
        const records = (await lake.list('turnstile/_versions/')).filter((key) =>
          key.endsWith('/version.json'),
        );
        expect(records).toHaveLength(2);
      } finally {
        source.serve({ name: 'turnstile_230603.txt', path: await realWeekFile() });
      }
    });
  }
});

async function generationsOf(): Promise<string[]> {
  const [files] = await overrides.storage!.bucket(BUCKET).getFiles({ prefix: `run-${serial}/` });
  return files.map((file) => `${file.name}@${String(file.metadata.generation)}`).sort();
}

describe('BigQuery load jobs', () => {
  const backend = BACKENDS[2]!;

  it('sends the load request BigQuery expects, into the week partition', async () => {
    backend.expectLoad();
    const summary = await run(backend);
    expect(summary.exitCode).toBe(0);
    const lake = await openLake(backend.lake(), overrides);
    const manifest = parseManifest((await lake.getText(weekKeys(WEEK).manifest))!, 'manifest');
    const body = loadInserts().at(-1)!.body as {
      jobReference: { jobId: string };
      configuration: { load: Record<string, unknown> };
    };
    expect(body.jobReference.jobId).toBe(`mta_ingest_load_${dataset()}_20230603_${manifest.source.sha256}`);
    expect(body.configuration.load).toEqual({
      sourceUris: [
        `gs://${BUCKET}/run-${serial}/turnstile/parquet/drop_date=2023-06-03/turnstile_230603.parquet`,
      ],
      sourceFormat: 'PARQUET',
      destinationTable: { projectId: PROJECT, datasetId: dataset(), tableId: `${TABLE_NAME}$20230603` },
      writeDisposition: 'WRITE_TRUNCATE',
      createDisposition: 'CREATE_NEVER',
      schema: bigquerySchema(),
      timePartitioning: { type: 'DAY', field: 'drop_date' },
      clustering: { fields: ['station', 'unit', 'scp'] },
    });
    const table = bigquery.tables.get(`${PROJECT}.${dataset()}.${TABLE_NAME}`) as Record<string, unknown>;
    expect(table).toMatchObject({
      schema: bigquerySchema(),
      timePartitioning: { type: 'DAY', field: 'drop_date' },
      clustering: { fields: ['station', 'unit', 'scp'] },
    });
    expect(manifest.load?.jobId).toBe(body.jobReference.jobId);

    // The interval view, in BigQuery SQL; the stand-in runs it, and its answers equal the DuckDB
    // view's over the same week (bigquery-load-state.test.ts, bigquery-standin-query.test.ts).
    const view = bigquery.tables.get(`${PROJECT}.${dataset()}.${INTERVALS_VIEW}`) as {
      view?: { query: string; useLegacySql: boolean };
    };
    const readings = `\`${PROJECT}.${dataset()}.${TABLE_NAME}\``;
    expect(view.view).toEqual({ query: intervalsViewQuery('bigquery', readings), useLegacySql: false });
  });

  it('a job that already exists (409) is waited for, not loaded twice', async () => {
    // A first run stored the week and ran its load job, then died before recording it: neither
    // the manifest nor _mta_ingest_loads has the load.
    backend.expectLoad();
    expect((await run(backend)).exitCode).toBe(0);
    const lake = await openLake(backend.lake(), overrides);
    const manifestKey = weekKeys(WEEK).manifest;
    const manifest = JSON.parse((await lake.getText(manifestKey))!) as Record<string, unknown>;
    delete manifest.load;
    await lake.putText(manifestKey, JSON.stringify(manifest), 'application/json');
    await overrides.bigquery!.query(`DELETE FROM \`${PROJECT}.${dataset()}._mta_ingest_loads\` WHERE TRUE`);
    const jobsBefore = loadJobs().length;
    const insertsBefore = loadInserts().length;

    const again = await run(backend);
    expect(again.weeks[0], JSON.stringify(again.weeks[0])).toMatchObject({
      outcome: 'loaded',
      rows: REAL_WEEK_ROWS,
    });
    expect(loadJobs()).toHaveLength(jobsBefore); // no second load job
    expect(loadInserts()).toHaveLength(insertsBefore + 1); // one insert, answered 409, then waited for
    expect(await bigqueryRows()).toBe(REAL_WEEK_ROWS);
  });

  it("a failing job fails the week with BigQuery's message", async () => {
    bigquery.script({
      states: ['RUNNING', 'DONE'],
      error: {
        reason: 'invalid',
        message: 'Error while reading data, error message: Parquet column has an incompatible type',
      },
    });
    const summary = await run(backend);
    expect(summary.exitCode).toBe(1);
    expect(summary.weeks[0]!.outcome).toBe('failed');
    expect(summary.weeks[0]!.detail).toContain('Parquet column has an incompatible type');
    const lake = await openLake(backend.lake(), overrides);
    const manifest = parseManifest((await lake.getText(weekKeys(WEEK).manifest))!, 'manifest');
    expect(manifest.load).toBeUndefined();
  });

  it('an output row count that differs from the manifest fails the week', async () => {
    bigquery.script({ states: ['DONE'], outputRows: REAL_WEEK_ROWS - 1 });
    const summary = await run(backend);
    expect(summary.exitCode).toBe(1);
    expect(summary.weeks[0]!.detail).toMatch(/loaded 253236 rows .* but the manifest has 253237/);
  });

  it('refuses a dataset in another location than the bucket, before any upload', async () => {
    await overrides.bigquery!.dataset(dataset()).create({ location: 'EUROPE-WEST1' });
    await expect(run(backend)).rejects.toThrow(UsageError);
    await expect(run(backend)).rejects.toThrow(/bucket .* is in US but the dataset .* is in europe-west1/);
    expect(await generationsOf()).toEqual([]);
  });

  it('refuses an existing table whose schema differs, naming the difference', async () => {
    const ds = overrides.bigquery!.dataset(dataset());
    await ds.create({ location: 'US' });
    const fields = bigquerySchema().fields.map((f) => (f.name === 'entries' ? { ...f, type: 'STRING' } : f));
    await ds
      .table(TABLE_NAME)
      .create({ schema: { fields }, timePartitioning: { type: 'DAY', field: 'drop_date' } });
    await expect(run(backend)).rejects.toThrow(
      /exists with another schema: entries is STRING, expected INT64/,
    );
  });

  it('cannot load from a local lake, and says so before fetching', async () => {
    const requests = source.requests.length;
    await expect(run({ lake: () => join(dir, 'lake'), warehouse: backend.warehouse })).rejects.toThrow(
      /use a gs:\/\/ lake/,
    );
    expect(source.requests.length).toBe(requests);
  });
});

describe('GCS uploads through a faulty network', () => {
  const isUpload = (r: { method: string; url: string }) => r.method === 'POST' && r.url.includes('/upload/');

  async function runThrough(fault: ProxyFault) {
    const proxy = await startFaultProxy(gcs.url);
    try {
      proxy.fault(fault);
      const storage = new Storage({
        apiEndpoint: proxy.url,
        projectId: PROJECT,
        useAuthWithCustomEndpoint: false,
        retryOptions: { maxRetries: 4, maxRetryDelay: 1, totalTimeout: 30 },
      });
      const backend = { lake: gcsLake, warehouse: duckdbFile };
      const summary = await runCommand({
        selection: { date: WEEK },
        force: false,
        config: config(backend),
        now: new Date(NOW),
        log: silentLogger,
        overrides: { ...overrides, storage },
      });
      return { summary, requests: proxy.requests };
    } finally {
      await proxy.close();
    }
  }

  /** Whatever happened, a manifest in the bucket names objects that are whole and correct. */
  async function expectNoCorruptObjectUnderAManifest(): Promise<boolean> {
    const lake = await openLake(gcsLake(), overrides);
    const text = await lake.getText(weekKeys(WEEK).manifest);
    if (text === undefined) return false;
    const manifest = parseManifest(text, 'manifest');
    for (const object of [manifest.objects.raw, manifest.objects.parquet]) {
      const local = join(dir, `verify-${object.key.split('/').at(-1)}`);
      await lake.getFile(object.key, local);
      expect(
        createHash('sha256')
          .update(await readFile(local))
          .digest('hex'),
        object.key,
      ).toBe(object.sha256);
    }
    return true;
  }

  it('retries uploads answered 503 and 429, and lands the week whole', async () => {
    const { summary, requests } = await runThrough({
      kind: 'status',
      status: 503,
      times: 2,
      match: isUpload,
    });
    expect(summary.weeks[0]).toMatchObject({ outcome: 'loaded', rows: REAL_WEEK_ROWS });
    expect(requests.filter((r) => r.fault === 'status')).toHaveLength(2);
    expect(await expectNoCorruptObjectUnderAManifest()).toBe(true);

    serial += 1; // a fresh prefix and warehouse for the second fault
    await rm(duckdbFile(), { force: true });
    const second = await runThrough({ kind: 'status', status: 429, times: 1, match: isUpload });
    expect(second.summary.weeks[0]).toMatchObject({ outcome: 'loaded', rows: REAL_WEEK_ROWS });
    expect(await expectNoCorruptObjectUnderAManifest()).toBe(true);
  });

  it('a connection broken mid-upload ends whole after a retry, or failed with no manifest', async () => {
    const { summary, requests } = await runThrough({
      kind: 'reset',
      times: 1,
      afterBytes: 500_000,
      match: isUpload,
    });
    expect(requests.some((r) => r.fault === 'reset')).toBe(true);
    const week = summary.weeks[0]!;
    const hasManifest = await expectNoCorruptObjectUnderAManifest();
    if (week.outcome === 'loaded') {
      expect(hasManifest).toBe(true);
      expect(await duckdbRows()).toBe(REAL_WEEK_ROWS);
    } else {
      expect(week.outcome).toBe('failed');
      expect(hasManifest).toBe(false);
    }
  });
});

describe('two BigQuery datasets in one project', () => {
  it('each loads the week with its own job', async () => {
    const first = BACKENDS[2]!;
    first.expectLoad();
    expect((await run(first)).exitCode).toBe(0);
    const allLoads = () => [...bigquery.jobs.values()].filter((job) => job.configuration.load);
    const firstJobs = allLoads().length;
    const other = { lake: gcsLake, warehouse: () => `bigquery://${PROJECT}/mta_other_${serial}` };
    await rm(duckdbFile(), { force: true });
    const summary = await run(other);
    expect(summary.weeks[0]).toMatchObject({ outcome: 'loaded' });
    expect(allLoads()).toHaveLength(firstJobs + 1);
  });
});

describe('a source that changes, then changes back', () => {
  it('loads the first version again: a job that a later load overwrote is not taken as done', async () => {
    const bq = BACKENDS[2]!;
    const real = await realWeekFile();
    // The second version: the same rows, one counter different (so another sha256).
    const lines = (await readFile(real, 'latin1')).split('\n');
    const fields = lines[1]!.split(',');
    fields[9] = String(Number(fields[9]) + 1).padStart(fields[9]!.length, '0');
    lines[1] = fields.join(',');
    const changed = join(dir, 'changed.txt');
    await writeFile(changed, lines.join('\n'), 'latin1');
    try {
      for (const path of [real, changed, real]) {
        source.serve({ name: 'turnstile_230603.txt', path });
        bq.expectLoad();
        const summary = await run(bq);
        expect(summary.weeks[0], JSON.stringify(summary.weeks[0])).toMatchObject({ outcome: 'loaded' });
      }
    } finally {
      source.serve({ name: 'turnstile_230603.txt', path: real });
    }
    const ids = loadJobs().map((job) => job.jobId);
    // A, B, then A again under the next attempt's id: three load jobs, the last one A's retry.
    expect(ids).toHaveLength(3);
    expect(ids[2]).toBe(`${ids[0]}_retry2`);
    const lake = await openLake(gcsLake(), overrides);
    const manifest = parseManifest((await lake.getText(weekKeys(WEEK).manifest))!, 'manifest');
    expect(manifest.load?.jobId).toBe(ids[2]);
  });
});

describe('the command line', () => {
  const cliEnv = () => ({
    MTA_INGEST_NOW: NOW,
    MTA_INGEST_WORK_DIR: dir,
    MTA_INGEST_SOURCE_URL: source.baseUrl,
    // The worker's switch to a GCS emulator (no credentials are sent then).
    MTA_INGEST_GCS_EMULATOR: gcs.url,
    METADATA_SERVER_DETECTION: 'none',
  });

  it('takes the GCS lake from a block file, or from environment variables', async () => {
    await mkdir(join(dir, 'blocks'));
    await writeFile(
      join(dir, 'blocks', 'gcs.json'),
      JSON.stringify({ lake: { uri: gcsLake() }, warehouse: { uri: duckdbFile() } }),
    );
    const fromBlock = await runCli(['run', '--date', WEEK, '--block', 'gcs'], { cwd: dir, env: cliEnv() });
    expect(fromBlock.code, fromBlock.stderr).toBe(0);
    expect(fromBlock.stdout).toMatch(/^2023-06-03\s+loaded\s+253,237 rows/m);
    // raw, Parquet and manifest, and the version's own copy under _versions/ (raw, Parquet, record).
    expect(await generationsOf()).toHaveLength(6);

    const fromEnv = await runCli(['status', '--json'], {
      cwd: dir,
      env: { ...cliEnv(), MTA_INGEST_LAKE: gcsLake(), MTA_INGEST_WAREHOUSE: duckdbFile() },
    });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({
      version: 1,
      weeks: [{ dropDate: WEEK, warehouse: 'loaded' }],
    });
  });

  it('reaches a BigQuery emulator named by MTA_INGEST_BIGQUERY_EMULATOR, with no credentials', async () => {
    // The stand-in checks the bearer token: the emulator switch sends a fixed placeholder.
    const emulator = await startBigQueryStandin({ expectedToken: 'emulator', gcsUrl: gcs.url });
    try {
      const result = await runCli(['run', '--date', WEEK], {
        cwd: dir,
        env: {
          ...cliEnv(),
          MTA_INGEST_LAKE: gcsLake(),
          MTA_INGEST_WAREHOUSE: `bigquery://${PROJECT}/mta_emulated_${serial}`,
          MTA_INGEST_BIGQUERY_EMULATOR: `${emulator.url}/`,
        },
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^2023-06-03\s+loaded\s+253,237 rows/m);
      const loads = [...emulator.jobs.values()].filter((job) => job.configuration.load);
      expect(loads).toHaveLength(1);
      expect(loads[0]!.configuration.load!.destinationTable).toMatchObject({
        projectId: PROJECT,
        datasetId: `mta_emulated_${serial}`,
        tableId: `${TABLE_NAME}$20230603`,
      });
      expect(emulator.requests.every((r) => r.authorization === 'Bearer emulator')).toBe(true);
    } finally {
      await emulator.close();
    }
  });

  it('refuses an emulator setting that is not an http(s) URL, before any request', async () => {
    const result = await runCli(['run', '--date', WEEK], {
      cwd: dir,
      env: { ...cliEnv(), MTA_INGEST_BIGQUERY_EMULATOR: 'localhost:9050' },
    });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      'mta-ingest: MTA_INGEST_BIGQUERY_EMULATOR localhost:9050 is not an http(s) URL',
    );
  });
});
