// Tests for the BigQuery REST stand-in, driven by the real @google-cloud/bigquery client: the
// warehouse backend's tests are only as good as the stand-in's fidelity to what the client sends
// and how it reads the answers, so each behaviour is checked through the client itself.
import {
  BigQuery,
  common,
  type Dataset,
  type Job,
  type JobMetadata,
  type Table,
} from '@google-cloud/bigquery';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rejection, tokenClient } from '../support/harnesses/cloud-peers.ts';
import { startBigQueryStandin, type BigQueryStandin } from '../support/peers/bigquery-standin.ts';
import { DEFAULT_JOB_RETENTION_MS } from '../support/peers/bigquery-standin-rules.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { tinyParquet, type TinyParquetColumn } from '../support/harnesses/tiny-parquet.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TOKEN = 'test-token';
const LOAD = {
  sourceUris: ['gs://b/p.parquet'],
  sourceFormat: 'PARQUET',
  destinationTable: { projectId: 'proj', datasetId: 'd', tableId: 't$20230603' },
  writeDisposition: 'WRITE_TRUNCATE',
};
const SCHEMA = {
  fields: [
    { name: 'station', type: 'STRING', mode: 'REQUIRED' },
    { name: 'unit', type: 'STRING', mode: 'REQUIRED' },
    { name: 'scp', type: 'STRING', mode: 'REQUIRED' },
    { name: 'drop_date', type: 'DATE', mode: 'REQUIRED' },
    { name: 'entries', type: 'INT64' },
  ],
};

const client = (url: string, token = TOKEN): BigQuery => tokenClient(url, 'proj', token);

/** Waits for a job like the backend would, polling every 10 ms instead of the client's 500 ms. */
async function finish(job: Job): Promise<JobMetadata> {
  job.pollIntervalMs = 10;
  const [metadata] = (await job.promise()) as [JobMetadata];
  return metadata;
}

let standin: BigQueryStandin;
let bigquery: BigQuery;

beforeAll(() => {
  // No probing for a GCE metadata server; and the emulator variable would replace the base URL.
  process.env.METADATA_SERVER_DETECTION = 'none';
  delete process.env.BIGQUERY_EMULATOR_HOST;
});

beforeEach(async () => {
  standin = await startBigQueryStandin({ expectedToken: TOKEN });
  bigquery = client(standin.url);
});

afterEach(async () => {
  await standin.close();
});

async function createDatasetAndTable(): Promise<void> {
  await bigquery.dataset('d').create({ location: 'US' });
  await bigquery.dataset('d').table('t').create({ schema: SCHEMA });
}

describe('client wiring', () => {
  it('sends to <apiEndpoint>/bigquery/v2/projects/<p>/... with the fixed bearer token', async () => {
    expect(await bigquery.dataset('d').exists()).toEqual([false]);
    expect(standin.requests).toEqual([
      {
        method: 'GET',
        path: '/bigquery/v2/projects/proj/datasets/d',
        query: { prettyPrint: 'false' },
        body: undefined,
        authorization: `Bearer ${TOKEN}`,
      },
    ]);
  });

  it('answers 401 to a wrong token, which the client surfaces as an ApiError with code 401', async () => {
    const err = await rejection(client(standin.url, 'wrong').dataset('d').getMetadata());
    expect(err).toBeInstanceOf(common.ApiError);
    expect(err.code).toBe(401);
    expect(err.message).toBe('Request had invalid authentication credentials.');
    expect(standin.requests).toHaveLength(1); // 401 is not retried
  });

  it('answers unknown paths and a missing jobId with JSON errors', async () => {
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const unknown = await fetch(`${standin.url}/bigquery/v2/projects/proj/models`, { headers });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('application/json');
    expect(await unknown.json()).toMatchObject({ error: { code: 404, errors: [{ reason: 'notFound' }] } });

    const noJobId = await fetch(`${standin.url}/bigquery/v2/projects/proj/jobs`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ configuration: { load: LOAD } }),
    });
    expect(noJobId.status).toBe(400);
    expect(await noJobId.json()).toMatchObject({ error: { code: 400, errors: [{ reason: 'invalid' }] } });
    expect(standin.jobs.size).toBe(0);
  });
});

describe('datasets', () => {
  it('404s until created: exists() is false and getMetadata rejects with code 404', async () => {
    const dataset = bigquery.dataset('d');
    expect(await dataset.exists()).toEqual([false]);
    const err = await rejection(dataset.getMetadata());
    expect(err).toBeInstanceOf(common.ApiError);
    expect(err.code).toBe(404);
    expect(err.message).toBe('Not found: Dataset proj:d');
    expect(err.errors).toEqual([
      { message: 'Not found: Dataset proj:d', domain: 'global', reason: 'notFound' },
    ]);
  });

  it('creates with a location (POST /datasets), then get/exists/getMetadata see it; a second create is 409', async () => {
    const [created, response] = (await bigquery.dataset('d').create({ location: 'US' })) as [
      Dataset,
      unknown,
    ];
    expect(response).toMatchObject({
      id: 'proj:d',
      datasetReference: { projectId: 'proj', datasetId: 'd' },
      location: 'US',
    });
    expect(created.metadata).toEqual(response);
    expect(standin.requests.at(-1)).toMatchObject({
      method: 'POST',
      path: '/bigquery/v2/projects/proj/datasets',
      body: { location: 'US', datasetReference: { datasetId: 'd' } },
    });
    expect(standin.datasets.get('proj.d')?.location).toBe('US');

    expect(await bigquery.dataset('d').exists()).toEqual([true]);
    const [metadata] = (await bigquery.dataset('d').getMetadata()) as [unknown, unknown];
    expect(metadata).toMatchObject({ id: 'proj:d', location: 'US' });
    const [, getResponse] = await bigquery.dataset('d').get();
    expect(getResponse).toMatchObject({ id: 'proj:d' });

    const err = await rejection(bigquery.dataset('d').create({ location: 'US' }));
    expect(err.code).toBe(409);
    expect(err.message).toBe('Already Exists: Dataset proj:d');
    expect(err.errors).toMatchObject([{ reason: 'duplicate' }]);
  });

  it('get({autoCreate: true}) creates a missing dataset in the Dataset location: GET 404, then POST', async () => {
    const [dataset] = (await bigquery.dataset('d', { location: 'EU' }).get({ autoCreate: true })) as [
      Dataset,
      unknown,
    ];
    expect(dataset.metadata).toMatchObject({ id: 'proj:d', location: 'EU' });
    expect(standin.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /bigquery/v2/projects/proj/datasets/d',
      'POST /bigquery/v2/projects/proj/datasets',
    ]);
    expect(standin.datasets.get('proj.d')?.location).toBe('EU');
    // Already there: a single GET.
    await bigquery.dataset('d', { location: 'EU' }).get({ autoCreate: true });
    expect(standin.requests).toHaveLength(3);
  });
});

describe('tables', () => {
  const options = {
    schema: SCHEMA,
    timePartitioning: { type: 'DAY', field: 'drop_date' },
    clustering: { fields: ['station', 'unit', 'scp'] },
  };

  it('stores a partitioned, clustered table as sent and echoes it with id, tableReference, creationTime, etag', async () => {
    await bigquery.dataset('d').create({ location: 'US' });
    const table = bigquery.dataset('d').table('t');
    expect(await table.exists()).toEqual([false]);

    const [, response] = (await table.create(options)) as [Table, unknown];
    const sent = standin.requests.at(-1);
    expect(sent).toMatchObject({ method: 'POST', path: '/bigquery/v2/projects/proj/datasets/d/tables' });
    expect(sent?.body).toEqual({
      ...options,
      tableReference: { projectId: 'proj', datasetId: 'd', tableId: 't' },
    });
    const stored: unknown = standin.tables.get('proj.d.t');
    expect(stored).toMatchObject(options);
    expect(stored).toMatchObject({
      id: 'proj:d.t',
      tableReference: { projectId: 'proj', datasetId: 'd', tableId: 't' },
      creationTime: expect.stringMatching(/^\d+$/) as unknown,
      etag: expect.any(String) as unknown,
    });
    expect(response).toEqual(stored);

    expect(await table.exists()).toEqual([true]);
    const [metadata] = (await table.getMetadata()) as [unknown, unknown];
    expect(metadata).toEqual(stored);
    const [, getResponse] = await bigquery.dataset('d').table('t').get();
    expect(getResponse).toEqual(stored);

    const duplicate = await rejection(table.create(options));
    expect(duplicate.code).toBe(409);
    expect(duplicate.message).toBe('Already Exists: Table proj:d.t');
  });

  it('404s a missing table (and its missing dataset) and PATCHes on setMetadata', async () => {
    const noDataset = await rejection(bigquery.dataset('d').table('t').getMetadata());
    expect(noDataset.code).toBe(404);
    expect(noDataset.message).toBe('Not found: Dataset proj:d');
    const noDatasetCreate = await rejection(bigquery.dataset('d').table('t').create(options));
    expect(noDatasetCreate.code).toBe(404);

    await bigquery.dataset('d').create({ location: 'US' });
    const noTable = await rejection(bigquery.dataset('d').table('t').getMetadata());
    expect(noTable.code).toBe(404);
    expect(noTable.message).toBe('Not found: Table proj:d.t');

    const table = bigquery.dataset('d').table('t');
    await table.create(options);
    const [patched] = (await table.setMetadata({ description: 'turnstile counts' })) as [unknown];
    expect(standin.requests.at(-1)).toMatchObject({
      method: 'PATCH',
      path: '/bigquery/v2/projects/proj/datasets/d/tables/t',
      body: { description: 'turnstile counts' },
    });
    expect(patched).toMatchObject({ ...options, description: 'turnstile counts' });
    expect(standin.tables.get('proj.d.t')).toMatchObject({ description: 'turnstile counts' });

    await table.delete();
    expect(standin.tables.has('proj.d.t')).toBe(false);
  });
});

describe('load jobs', () => {
  it('insert answers PENDING; promise() polls GET /jobs/<id>?location=US until DONE, with outputRows', async () => {
    await createDatasetAndTable();
    standin.script({ outputRows: (config) => 1000 * (config.load?.sourceUris?.length ?? 0) });
    const [job, insertResponse] = await bigquery.createJob({
      jobId: 'load_x',
      location: 'US',
      configuration: { load: LOAD },
    });
    expect(insertResponse.status).toEqual({ state: 'PENDING' });
    expect(job.id).toBe('load_x');
    expect(job.location).toBe('US');
    expect(standin.requests.at(-1)).toMatchObject({
      method: 'POST',
      path: '/bigquery/v2/projects/proj/jobs',
      body: {
        jobReference: { projectId: 'proj', jobId: 'load_x', location: 'US' },
        configuration: { load: LOAD },
      },
    });
    expect(standin.jobs.get('load_x')).toMatchObject({
      location: 'US',
      configuration: { load: LOAD },
      polls: 0,
    });

    const metadata = await finish(job);
    expect(metadata.status).toEqual({ state: 'DONE' });
    const { creationTime, endTime, ...statistics } = metadata.statistics ?? {};
    expect(statistics).toEqual({ load: { outputRows: '1000', inputFiles: '1' } });
    expect(creationTime).toMatch(/^\d{13}$/);
    expect(endTime).toMatch(/^\d{13}$/);
    expect(Number(metadata.statistics!.endTime)).toBeGreaterThanOrEqual(
      Number(metadata.statistics!.creationTime),
    );
    expect(metadata.jobReference).toEqual({ projectId: 'proj', jobId: 'load_x', location: 'US' });
    // One state per GET: PENDING, RUNNING, DONE.
    const polls = standin.requests.filter((r) => r.method === 'GET');
    expect(polls.map((r) => [r.path, r.query])).toEqual(
      Array.from({ length: 3 }, () => [
        '/bigquery/v2/projects/proj/jobs/load_x',
        { location: 'US', prettyPrint: 'false' },
      ]),
    );
    expect(standin.jobs.get('load_x')?.polls).toBe(3);
  });

  it("polls every 500 ms unless the Job's pollIntervalMs is set (states ['DONE'] needs no wait at all)", async () => {
    await createDatasetAndTable();
    const [slow] = await bigquery.createJob({ jobId: 'slow', location: 'US', configuration: { load: LOAD } });
    let started = Date.now();
    await slow.promise();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950); // 2 waits of 500 ms between 3 GETs

    standin.script({ states: ['DONE'], outputRows: 7 });
    const [quick, insertResponse] = await bigquery.createJob({
      jobId: 'quick',
      location: 'US',
      configuration: { load: LOAD },
    });
    expect(insertResponse.status).toEqual({ state: 'DONE' });
    started = Date.now();
    const [metadata] = (await quick.promise()) as [JobMetadata];
    expect(Date.now() - started).toBeLessThan(400);
    expect(metadata.statistics?.load?.outputRows).toBe('7');
    expect(standin.jobs.get('quick')?.polls).toBe(1);
  });

  it('a reused jobId is a 409 ApiError; job(id, {location}).getMetadata() then returns the existing job', async () => {
    await createDatasetAndTable();
    standin.script({ outputRows: 5 });
    await finish(
      (await bigquery.createJob({ jobId: 'load_x', location: 'US', configuration: { load: LOAD } }))[0],
    );

    const err = await rejection(
      bigquery.createJob({
        jobId: 'load_x',
        location: 'US',
        configuration: { load: { ...LOAD, sourceUris: [] } },
      }),
    );
    expect(err).toBeInstanceOf(common.ApiError);
    expect(err.code).toBe(409);
    expect(err.message).toBe('Already Exists: Job proj:US.load_x');
    expect(err.errors).toEqual([
      { message: 'Already Exists: Job proj:US.load_x', domain: 'global', reason: 'duplicate' },
    ]);
    expect(err.response?.statusCode).toBe(409);
    expect(standin.jobs.size).toBe(1);

    const [existing] = (await bigquery.job('load_x', { location: 'US' }).getMetadata()) as [
      JobMetadata,
      unknown,
    ];
    expect(existing).toMatchObject({
      jobReference: { projectId: 'proj', jobId: 'load_x', location: 'US' },
      configuration: { load: LOAD },
      status: { state: 'DONE' },
      statistics: { load: { outputRows: '5' } },
    });
    expect(await bigquery.job('load_x', { location: 'US' }).exists()).toEqual([true]);
    // Wrong location or unknown id: 404.
    const elsewhere = await rejection(bigquery.job('load_x', { location: 'EU' }).getMetadata());
    expect(elsewhere.code).toBe(404);
    expect(elsewhere.message).toBe('Not found: Job proj:EU.load_x');
    expect(await bigquery.job('nope', { location: 'US' }).exists()).toEqual([false]);
  });

  it('a scripted error makes promise() reject with the scripted message (ApiError without code)', async () => {
    await createDatasetAndTable();
    const error = { reason: 'invalid', message: 'Error while reading data, error message: bad parquet' };
    standin.script({ error });
    const [job] = await bigquery.createJob({
      jobId: 'load_bad',
      location: 'US',
      configuration: { load: LOAD },
    });
    const err = await rejection(finish(job));
    expect(err).toBeInstanceOf(common.ApiError);
    expect(err.message).toBe(error.message);
    expect(err.code).toBeUndefined();
    expect(err.errors).toEqual([error]);
    expect(err.response).toBeUndefined();

    const [metadata] = (await job.getMetadata()) as [JobMetadata, unknown];
    expect(metadata.status).toEqual({ state: 'DONE', errorResult: error, errors: [error] });
    expect(metadata.statistics?.load).toBeUndefined();
  });

  it('an error in a job that is DONE at insert makes createJob itself reject', async () => {
    await createDatasetAndTable();
    standin.script({ states: ['DONE'], error: { reason: 'invalid', message: 'Bad configuration' } });
    const err = await rejection(
      bigquery.createJob({ jobId: 'load_now', location: 'US', configuration: { load: LOAD } }),
    );
    expect(err).toBeInstanceOf(common.ApiError);
    expect(err.message).toBe('Bad configuration');
    expect(err.code).toBeUndefined();
    expect(standin.jobs.has('load_now')).toBe(true);
  });

  it('scripts are consumed one per job, in order', async () => {
    await createDatasetAndTable();
    standin.script({ states: ['DONE'], outputRows: 1 });
    standin.script({ states: ['RUNNING', 'DONE'], outputRows: 2 });
    const rows: (string | undefined)[] = [];
    for (const jobId of ['a', 'b', 'c']) {
      const [job] = await bigquery.createJob({ jobId, location: 'US', configuration: { load: LOAD } });
      rows.push((await finish(job)).statistics?.load?.outputRows ?? undefined);
    }
    expect(rows).toEqual(['1', '2', '0']);
    expect([...standin.jobs.values()].map((j) => j.polls)).toEqual([1, 2, 3]);
  });

  it('checks the destination: missing dataset fails, CREATE_NEVER needs the table, CREATE_IF_NEEDED creates it', async () => {
    const missingDataset = await rejection(
      bigquery
        .createJob({ jobId: 'no_ds', location: 'US', configuration: { load: LOAD } })
        .then(([job]) => finish(job)),
    );
    expect(missingDataset.message).toBe('Not found: Dataset proj:d');

    await bigquery.dataset('d').create({ location: 'US' });
    const never = await rejection(
      bigquery
        .createJob({
          jobId: 'never',
          location: 'US',
          configuration: { load: { ...LOAD, createDisposition: 'CREATE_NEVER' } },
        })
        .then(([job]) => finish(job)),
    );
    expect(never.message).toBe('Not found: Table proj:d.t');
    expect(standin.tables.has('proj.d.t')).toBe(false);

    const load = {
      ...LOAD,
      schema: SCHEMA,
      timePartitioning: { type: 'DAY', field: 'drop_date' },
      clustering: { fields: ['station', 'unit', 'scp'] },
    };
    const [job] = await bigquery.createJob({ jobId: 'create', location: 'US', configuration: { load } });
    await finish(job);
    expect(standin.tables.get('proj.d.t')).toMatchObject({
      tableReference: { projectId: 'proj', datasetId: 'd', tableId: 't' },
      schema: SCHEMA,
      timePartitioning: { type: 'DAY', field: 'drop_date' },
      clustering: { fields: ['station', 'unit', 'scp'] },
    });
  });
});

describe('what BigQuery enforces (bigquery-standin-rules.ts)', () => {
  const DAY = 24 * 3600 * 1000;

  it('job metadata expires after jobRetentionMs (six months): GET is 404, and the id stays taken (409)', async () => {
    const t0 = Date.UTC(2026, 0, 1);
    const clocked = await startBigQueryStandin({ expectedToken: TOKEN, now: () => t0 });
    try {
      const bq = client(clocked.url);
      await bq.dataset('d').create({ location: 'US' });
      await bq.dataset('d').table('t').create({ schema: SCHEMA });
      clocked.script({ states: ['DONE'] });
      const [, inserted] = await bq.createJob({
        jobId: 'old',
        location: 'US',
        configuration: { load: LOAD },
      });
      expect(inserted.statistics).toMatchObject({ creationTime: String(t0), endTime: String(t0) });

      clocked.advanceClock(DEFAULT_JOB_RETENTION_MS);
      const [kept] = (await bq.job('old', { location: 'US' }).getMetadata()) as [JobMetadata, unknown];
      expect(kept.status).toEqual({ state: 'DONE' });

      clocked.advanceClock(1);
      const expired = await rejection(bq.job('old', { location: 'US' }).getMetadata());
      expect(expired.code).toBe(404);
      expect(expired.message).toBe('Not found: Job proj:US.old');
      expect(await bq.job('old', { location: 'US' }).exists()).toEqual([false]);

      const reused = await rejection(
        bq.createJob({ jobId: 'old', location: 'US', configuration: { load: LOAD } }),
      );
      expect(reused.code).toBe(409);
      expect(reused.message).toBe('Already Exists: Job proj:US.old');

      // A new job takes the shifted clock; a shorter retention is an option.
      clocked.script({ states: ['DONE'] });
      const [, fresh] = await bq.createJob({ jobId: 'new', location: 'US', configuration: { load: LOAD } });
      expect(fresh.statistics?.creationTime).toBe(String(t0 + DEFAULT_JOB_RETENTION_MS + 1));
    } finally {
      await clocked.close();
    }
    const short = await startBigQueryStandin({ expectedToken: TOKEN, jobRetentionMs: 7 * DAY });
    try {
      const bq = client(short.url);
      await bq.dataset('d').create({ location: 'US' });
      short.script({ states: ['DONE'] });
      await bq.createJob({ jobId: 'j', location: 'US', configuration: { load: LOAD } });
      short.advanceClock(7 * DAY + 1);
      expect((await rejection(bq.job('j', { location: 'US' }).getMetadata())).code).toBe(404);
    } finally {
      await short.close();
    }
  });

  it('stores locations in canonical form: US/EU upper case, regions lower case, as datasets.get reports them', async () => {
    await bigquery.dataset('a').create({ location: 'us' });
    await bigquery.dataset('b').create({ location: 'Asia-Northeast1' });
    await bigquery.dataset('c').create({});
    const [a] = (await bigquery.dataset('a').getMetadata()) as [{ location: string }, unknown];
    const [b] = (await bigquery.dataset('b').getMetadata()) as [{ location: string }, unknown];
    const [c] = (await bigquery.dataset('c').getMetadata()) as [{ location: string }, unknown];
    expect([a.location, b.location, c.location]).toEqual(['US', 'asia-northeast1', 'US']);
    expect(standin.datasets.get('proj.b')?.location).toBe('asia-northeast1');
    await bigquery.dataset('d').create({ location: 'eu' });
    standin.script({ states: ['DONE'] });
    const [, inserted] = await bigquery.createJob({
      jobId: 'eu',
      location: 'eu',
      configuration: { load: LOAD },
    });
    expect(inserted.jobReference?.location).toBe('EU');
  });

  it('jobs.get needs the location of a job outside US/EU, and exactly its canonical form', async () => {
    await bigquery.dataset('d').create({ location: 'asia-northeast1' });
    await bigquery.dataset('d').table('t').create({ schema: SCHEMA });
    standin.script({ states: ['DONE'] });
    await bigquery.createJob({ jobId: 'tokyo', location: 'asia-northeast1', configuration: { load: LOAD } });

    const without = await rejection(bigquery.job('tokyo').getMetadata());
    expect(without.code).toBe(404);
    expect(without.message).toBe('Not found: Job proj:tokyo');
    expect(standin.requests.at(-1)?.query.location).toBeUndefined();

    const [found] = (await bigquery.job('tokyo', { location: 'asia-northeast1' }).getMetadata()) as [
      JobMetadata,
      unknown,
    ];
    expect(found.jobReference?.location).toBe('asia-northeast1');
    expect(found.status).toEqual({ state: 'DONE' });

    const upper = await rejection(bigquery.job('tokyo', { location: 'ASIA-NORTHEAST1' }).getMetadata());
    expect(upper.code).toBe(404);
    expect(upper.message).toBe('Not found: Job proj:ASIA-NORTHEAST1.tokyo');
    expect((await rejection(bigquery.job('tokyo', { location: 'US' }).getMetadata())).code).toBe(404);

    // A US (or EU) job is found without a location.
    await bigquery.dataset('us').create({ location: 'US' });
    standin.script({ states: ['DONE'] });
    await bigquery.createJob({
      jobId: 'usjob',
      location: 'US',
      configuration: { load: { ...LOAD, destinationTable: { ...LOAD.destinationTable, datasetId: 'us' } } },
    });
    const [us] = (await bigquery.job('usjob').getMetadata()) as [JobMetadata, unknown];
    expect(us.jobReference?.location).toBe('US');
  });

  it("a load job whose location is not its dataset's fails with notFound when DONE", async () => {
    await bigquery.dataset('d').create({ location: 'EU' });
    await bigquery.dataset('d').table('t').create({ schema: SCHEMA });
    // No location: the client sends none, so the job runs in the default US.
    const [job] = await bigquery.createJob({ jobId: 'wrong_place', configuration: { load: LOAD } });
    const err = await rejection(finish(job));
    expect(err.message).toBe('Not found: Dataset proj:d was not found in location US');
    expect(err.errors).toEqual([
      { reason: 'notFound', message: 'Not found: Dataset proj:d was not found in location US' },
    ]);
    // In the dataset's location it loads.
    const [right] = await bigquery.createJob({
      jobId: 'right_place',
      location: 'EU',
      configuration: { load: LOAD },
    });
    expect((await finish(right)).status).toEqual({ state: 'DONE' });
  });

  describe('Parquet loads (files served as by GCS)', () => {
    let objects: Map<string, Buffer>;
    let gcs: Server;
    let loader: BigQueryStandin;
    let bq: BigQuery;
    let dir: string;

    beforeEach(async () => {
      objects = new Map();
      gcs = createServer((req, res) => {
        const match = /^\/storage\/v1\/b\/([^/]+)\/o\/([^?]+)\?alt=media$/.exec(req.url ?? '');
        const body = match
          ? objects.get(`${decodeURIComponent(match[1]!)}/${decodeURIComponent(match[2]!)}`)
          : undefined;
        res.writeHead(body ? 200 : 404).end(body);
      });
      await new Promise<void>((resolve) => gcs.listen(0, '127.0.0.1', resolve));
      loader = await startBigQueryStandin({
        expectedToken: TOKEN,
        gcsUrl: `http://127.0.0.1:${(gcs.address() as AddressInfo).port}`,
      });
      bq = client(loader.url);
      await bq.dataset('d').create({ location: 'US' });
      dir = await mkdtemp(join(tmpdir(), 'bq-standin-test-'));
    });

    afterEach(async () => {
      await loader.close();
      await new Promise<void>((resolve) => gcs.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    });

    /** A Parquet file written by DuckDB (every column OPTIONAL) from a SELECT, stored at gs://b/<name>. */
    async function duckdbFile(name: string, select: string): Promise<string> {
      const path = join(dir, name);
      await query(`COPY (${select}) TO '${path}' (FORMAT parquet)`);
      objects.set(`b/${name}`, await readFile(path));
      return `gs://b/${name}`;
    }

    function handFile(name: string, columns: TinyParquetColumn[]): string {
      objects.set(`b/${name}`, tinyParquet(columns));
      return `gs://b/${name}`;
    }

    async function load(jobId: string, config: Record<string, unknown>): Promise<JobMetadata> {
      loader.script({ states: ['DONE'] });
      return bq
        .createJob({
          jobId,
          location: 'US',
          configuration: { load: { sourceFormat: 'PARQUET', writeDisposition: 'WRITE_APPEND', ...config } },
        })
        .then(([job]) => finish(job));
    }

    const dest = (tableId = 't') => ({ projectId: 'proj', datasetId: 'd', tableId });
    const NULLABLE = {
      fields: [
        { name: 'station', type: 'STRING', mode: 'NULLABLE' },
        { name: 'drop_date', type: 'DATE', mode: 'NULLABLE' },
        { name: 'entries', type: 'INTEGER', mode: 'NULLABLE' },
      ],
    };
    const REQUIRED = { fields: NULLABLE.fields.map((f) => ({ ...f, mode: 'REQUIRED' })) };
    const ROWS = `SELECT * FROM (VALUES ('A', DATE '2023-06-03', 1::BIGINT), ('B', DATE '2023-06-03', 2::BIGINT)) v(station, drop_date, entries)`;
    const handColumns = (repetition: 'REQUIRED' | 'OPTIONAL'): TinyParquetColumn[] => [
      { name: 'station', type: 'BYTE_ARRAY', converted: 'UTF8', repetition, values: ['A', 'B'] },
      { name: 'drop_date', type: 'INT32', converted: 'DATE', repetition, values: [19511, 19511] },
      { name: 'entries', type: 'INT64', repetition, values: [1n, 2n] },
    ];

    it('a decorated load holding rows of another day, or NULL dates, fails; of its day only, it loads', async () => {
      await bq
        .dataset('d')
        .table('t')
        .create({ schema: NULLABLE, timePartitioning: { type: 'DAY', field: 'drop_date' } });
      const ok = await duckdbFile('ok.parquet', ROWS);
      const meta = await load('day_ok', { sourceUris: [ok], destinationTable: dest('t$20230603') });
      expect(meta.statistics?.load?.outputRows).toBe('2');

      const other = await duckdbFile(
        'other.parquet',
        `${ROWS} UNION ALL SELECT 'C', DATE '2023-06-04', 3::BIGINT`,
      );
      const otherDay = await rejection(
        load('day_other', { sourceUris: [other], destinationTable: dest('t$20230603') }),
      );
      expect(otherDay.message).toBe(
        "Some rows belong to partitions 20230604, not to the decorator's 20230603",
      );

      const nulls = await duckdbFile('nulls.parquet', `${ROWS} UNION ALL SELECT 'C', NULL::DATE, 3::BIGINT`);
      const nullDay = await rejection(
        load('day_null', { sourceUris: [nulls], destinationTable: dest('t$20230603') }),
      );
      expect(nullDay.message).toBe(
        "Some rows belong to partitions __NULL__, not to the decorator's 20230603",
      );
      expect(nullDay.errors).toMatchObject([{ reason: 'invalid' }]);
      // Only the accepted load put rows in the table.
      expect([...(loader.partitions.get('proj.d.t')?.keys() ?? [])]).toEqual(['20230603']);
    });

    it('DuckDB Parquet (OPTIONAL columns) loads into NULLABLE fields, with or without a provided schema', async () => {
      const uri = await duckdbFile('opt.parquet', ROWS);
      await bq.dataset('d').table('t').create({ schema: NULLABLE });
      expect(
        (await load('opt_table', { sourceUris: [uri], destinationTable: dest() })).statistics?.load
          ?.outputRows,
      ).toBe('2');
      const provided = await load('opt_provided', {
        sourceUris: [uri],
        destinationTable: dest('new'),
        schema: NULLABLE,
      });
      expect(provided.statistics?.load?.outputRows).toBe('2');
    });

    it('an OPTIONAL column into a REQUIRED field fails: "changed mode from REQUIRED to NULLABLE"', async () => {
      const uri = await duckdbFile('opt.parquet', ROWS);
      await bq.dataset('d').table('t').create({ schema: REQUIRED });
      const message =
        'Provided Schema does not match Table proj:d.t. Field station has changed mode from REQUIRED to NULLABLE';
      const fromTable = await rejection(
        load('opt_req_table', { sourceUris: [uri], destinationTable: dest() }),
      );
      expect(fromTable.message).toBe(message);
      expect(fromTable.errors).toMatchObject([{ reason: 'invalid' }]);
      const provided = await rejection(
        load('opt_req_provided', { sourceUris: [uri], destinationTable: dest(), schema: REQUIRED }),
      );
      expect(provided.message).toBe(message);
      expect(loader.partitions.get('proj.d.t')).toBeUndefined();
    });

    it('REQUIRED Parquet columns load into REQUIRED fields; into NULLABLE fields they fail', async () => {
      const uri = handFile('req.parquet', handColumns('REQUIRED'));
      await bq.dataset('d').table('r').create({ schema: REQUIRED });
      expect(
        (await load('req_req', { sourceUris: [uri], destinationTable: dest('r') })).statistics?.load
          ?.outputRows,
      ).toBe('2');
      expect(loader.partitions.get('proj.d.r')?.get('__UNPARTITIONED__')?.[0]?.sums).toEqual({ entries: 3n });

      const message =
        "Error while reading data, error message: Provided schema is not compatible with the file 'gs://b/req.parquet'. Field 'station' is specified as NULLABLE in provided schema which does not match REQUIRED as specified in the file.";
      const provided = await rejection(
        load('req_null_provided', { sourceUris: [uri], destinationTable: dest('n'), schema: NULLABLE }),
      );
      expect(provided.message).toBe(message);
      expect(provided.errors).toMatchObject([{ reason: 'invalid' }]);
      await bq.dataset('d').table('n2').create({ schema: NULLABLE });
      const fromTable = await rejection(
        load('req_null_table', { sourceUris: [uri], destinationTable: dest('n2') }),
      );
      expect(fromTable.message).toBe(message);
      // The same columns written OPTIONAL by hand load into the NULLABLE table.
      const opt = handFile('opt-hand.parquet', handColumns('OPTIONAL'));
      expect(
        (await load('opt_hand', { sourceUris: [opt], destinationTable: dest('n2') })).statistics?.load
          ?.outputRows,
      ).toBe('2');
    });

    it('types follow the Parquet conversions: a mismatch fails with the cpp_type message', async () => {
      const swapped = await duckdbFile(
        'swapped.parquet',
        `SELECT 1::BIGINT AS station, DATE '2023-06-03' AS drop_date, 'x' AS entries`,
      );
      const err = await rejection(
        load('swapped', { sourceUris: [swapped], destinationTable: dest(), schema: NULLABLE }),
      );
      expect(err.message).toBe(
        "Error while reading data, error message: Parquet column 'station' has type INT64 which does not match the target cpp_type STRING.",
      );
      expect(err.errors).toMatchObject([{ reason: 'invalid' }]);
      const entries = await duckdbFile(
        'entries.parquet',
        `SELECT 'A' AS station, DATE '2023-06-03' AS drop_date, 'x' AS entries`,
      );
      expect(
        (
          await rejection(
            load('entries', { sourceUris: [entries], destinationTable: dest(), schema: NULLABLE }),
          )
        ).message,
      ).toBe(
        "Error while reading data, error message: Parquet column 'entries' has type BYTE_ARRAY which does not match the target cpp_type INT64.",
      );

      // DuckDB's TIMESTAMP is INT64 TIMESTAMP(isAdjustedToUTC=false): DATETIME, not TIMESTAMP;
      // TIMESTAMPTZ is isAdjustedToUTC=true: TIMESTAMP. DOUBLE is FLOAT64, BOOLEAN is BOOL.
      const times = await duckdbFile(
        'times.parquet',
        `SELECT TIMESTAMP '2023-06-03 04:00:00' AS at, TIMESTAMPTZ '2023-06-03 04:00:00+00' AS tz, 1.5::DOUBLE AS f, true AS ok`,
      );
      const timesSchema = (at: string, tz: string) => ({
        fields: [
          { name: 'at', type: at, mode: 'NULLABLE' },
          { name: 'tz', type: tz, mode: 'NULLABLE' },
          { name: 'f', type: 'FLOAT', mode: 'NULLABLE' },
          { name: 'ok', type: 'BOOLEAN', mode: 'NULLABLE' },
        ],
      });
      const fine = await load('times_ok', {
        sourceUris: [times],
        destinationTable: dest('x'),
        schema: timesSchema('DATETIME', 'TIMESTAMP'),
      });
      expect(fine.statistics?.load?.outputRows).toBe('1');
      expect(
        (
          await rejection(
            load('times_ts', {
              sourceUris: [times],
              destinationTable: dest('y'),
              schema: timesSchema('TIMESTAMP', 'TIMESTAMP'),
            }),
          )
        ).message,
      ).toBe(
        "Error while reading data, error message: Parquet column 'at' has type INT64 which does not match the target cpp_type TIMESTAMP.",
      );
      expect(
        (
          await rejection(
            load('times_dt', {
              sourceUris: [times],
              destinationTable: dest('z'),
              schema: timesSchema('DATETIME', 'DATETIME'),
            }),
          )
        ).message,
      ).toContain("Parquet column 'tz' has type INT64 which does not match the target cpp_type DATETIME.");
    });

    it('a schema field missing from the file fails the load', async () => {
      const uri = await duckdbFile('short.parquet', `SELECT 'A' AS station, DATE '2023-06-03' AS drop_date`);
      const err = await rejection(
        load('short', { sourceUris: [uri], destinationTable: dest(), schema: NULLABLE }),
      );
      expect(err.message).toBe(
        "Error while reading data, error message: Field 'entries' of the provided schema is missing from the file 'gs://b/short.parquet'.",
      );
    });
  });
});
