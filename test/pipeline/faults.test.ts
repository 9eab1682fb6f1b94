/**
 * Faults, one table per peer: what each network or service failure ends as (outcome, exit
 * code), how often it was retried, and that it left nothing half-written: no objects or rows
 * for a week that did not land, exactly the week's objects and rows once for one that did, and
 * no temporary file anywhere. The worker runs as a child process, as a scheduler runs it, so
 * the exit codes are the real ones; the peers are real servers on 127.0.0.1 (the source
 * stand-in's fault modes; fake-gcs-server behind the fault proxy; the BigQuery stand-in).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CRC32C, Storage } from '@google-cloud/storage';
import { startSourceServer, type Fault, type SourceServer } from '../support/peers/source-server.ts';
import { startFaultProxy, type FaultProxy, type ProxyFault } from '../support/peers/fault-proxy.ts';
import { startFakeGcs, type FakeGcs } from '../support/peers/fake-gcs.ts';
import { startBigQueryStandin, type BigQueryStandin } from '../support/peers/bigquery-standin.ts';
import { runCli, runWorker, type CliResult } from '../support/harnesses/cli.ts';
import { realWeekFile, WEEK, FILE, NOW } from '../support/fixtures/real-week.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { LINE_BYTES, filesUnder, realLines, sourceText } from '../support/fixtures/week-sample.ts';
import { GcsLake, RESUMABLE_THRESHOLD, emulatorStorage } from '../../src/lake/gcs/gcs-lake.ts';
import { weekKeys } from '../../src/lake/lake-layout.ts';
import { parseManifest, type Manifest } from '../../src/manifest/manifest.ts';

const BUCKET = 'faults';
const PROJECT = 'fault-project';
/** Data lines in the served sample (the first of the real week). */
const LINES = 2_000;

let source: SourceServer;
let gcs: FakeGcs;
let proxy: FaultProxy;
let text: string;
let dir: string;
let serial = 0;

beforeAll(async () => {
  text = sourceText(await realLines(LINES));
  source = await startSourceServer();
  gcs = await startFakeGcs({ buckets: [BUCKET], location: 'US' });
  proxy = await startFaultProxy(gcs.url, { resumableStatus: true });
});
afterAll(async () => {
  await Promise.all([source.close(), proxy.close(), gcs.stop()]);
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-faults-'));
  serial += 1;
  source.serve({ name: FILE, content: text });
  source.fault(FILE, undefined);
  source.requests.length = 0;
  proxy.fault(undefined);
  proxy.requests.length = 0;
  return () => rm(dir, { recursive: true, force: true });
});

/** The worker as a child process, into `dir` (DuckDB warehouse there, spooling there). */
function worker(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(
    ['run', '--date', WEEK, '--source-url', source.baseUrl, '--warehouse', join(dir, 'wh.duckdb'), ...args],
    {
      env: { MTA_INGEST_NOW: NOW, MTA_INGEST_WORK_DIR: dir, METADATA_SERVER_DETECTION: 'none', ...env },
    },
  );
}

/** The week's rows in the DuckDB warehouse, and how many distinct source lines they come from. */
async function warehouseRows(): Promise<{ rows: number; lines: number }> {
  const file = join(dir, 'wh.duckdb');
  if (!existsSync(file)) return { rows: 0, lines: 0 };
  const [row] = await query(
    `SELECT count(*) AS n, count(DISTINCT source_line) AS lines FROM turnstile_readings WHERE drop_date = DATE '${WEEK}'`,
    file,
  );
  return { rows: Number(row!.n), lines: Number(row!.lines) };
}

/** Files in the work dir that are neither the lake nor the warehouse: spools, staging, temps. */
async function leftovers(): Promise<string[]> {
  return (await filesUnder(dir)).filter(
    (path) => !path.startsWith('lake/') && !/^wh\.duckdb(\.wal)?$/.test(path),
  );
}

const keys = weekKeys(WEEK);

describe('source faults (the source stand-in on 127.0.0.1)', () => {
  /** Where a cut-off download ends: inside EXITS of data line 1,001 ("…,000000122" still parses). */
  const cutInsideExits = LINE_BYTES * 1_001 + 84;

  interface SourceCase {
    name: string;
    fault?: Fault;
    /** Serve nothing under the week's name. */
    unpublished?: boolean;
    args?: string[];
    exit: number;
    outcome: 'loaded' | 'not-published' | 'failed';
    /** Requests for the file: the first attempt plus the retries. */
    requests: number;
    /** Stored and loaded: rows and rejects; undefined: nothing stored. */
    landed?: { rows: number; rejects: number };
    detail?: RegExp;
  }

  const CASES: SourceCase[] = [
    {
      name: 'a connection reset mid-body is retried, then loads',
      fault: { kind: 'reset', afterBytes: 100_000, times: 1 },
      exit: 0,
      outcome: 'loaded',
      requests: 2,
      landed: { rows: LINES, rejects: 0 },
    },
    {
      name: '503 twice is retried twice, then loads',
      fault: { kind: 'status', status: 503, times: 2 },
      exit: 0,
      outcome: 'loaded',
      requests: 3,
      landed: { rows: LINES, rejects: 0 },
    },
    {
      name: '429 is retried, then loads',
      fault: { kind: 'status', status: 429, times: 1 },
      exit: 0,
      outcome: 'loaded',
      requests: 2,
      landed: { rows: LINES, rejects: 0 },
    },
    {
      name: 'a stalled body times out, is retried, then loads',
      fault: { kind: 'stall', afterBytes: 100_000, ms: 10_000, times: 1 },
      args: ['--fetch-timeout-ms', '300'],
      exit: 0,
      outcome: 'loaded',
      requests: 2,
      landed: { rows: LINES, rejects: 0 },
    },
    {
      name: 'a 404 is not-published: exit 3, not retried, nothing stored',
      unpublished: true,
      exit: 3,
      outcome: 'not-published',
      requests: 1,
      detail: /HTTP 404/,
    },
    {
      name: 'an HTML page with status 200 fails at once: exit 1, not retried, nothing stored',
      fault: { kind: 'html' },
      exit: 1,
      outcome: 'failed',
      requests: 1,
      detail: /HTML page/,
    },
    {
      name: 'a body cut inside its last line loads every whole line and rejects the cut one',
      fault: { kind: 'truncate', afterBytes: cutInsideExits },
      exit: 0,
      outcome: 'loaded',
      requests: 1,
      landed: { rows: 1_000, rejects: 1 },
    },
  ];

  for (const c of CASES) {
    it(c.name, async () => {
      if (c.unpublished) source.remove(FILE);
      source.fault(FILE, c.fault);
      const result = await worker(['--lake', join(dir, 'lake'), ...(c.args ?? [])]);

      expect(result.code, result.stderr).toBe(c.exit);
      expect(result.stdout).toMatch(new RegExp(`^${WEEK}\\s+${c.outcome}\\s`, 'm'));
      if (c.detail) expect(result.stdout).toMatch(c.detail);
      expect(source.requestsFor(FILE)).toHaveLength(c.requests);

      const everything = await filesUnder(join(dir, 'lake'));
      // The current version under the week's keys; its kept copy under _versions/ (below).
      const lake = everything.filter((file) => !file.startsWith('turnstile/_versions/'));
      if (c.landed) {
        const expected = [keys.manifest, keys.parquet, keys.raw];
        if (c.landed.rejects > 0) expected.push(keys.rejects);
        expect(lake).toEqual(expected.sort());
        expect(everything.length - lake.length).toBe(expected.length);
        const manifest = JSON.parse(await readFile(join(dir, 'lake', keys.manifest), 'utf8')) as Manifest;
        expect(manifest).toMatchObject({ ...c.landed, load: { rows: c.landed.rows } });
        // The raw object is the body as served, whole: no retry appended to or mixed a partial body.
        const served = c.fault?.kind === 'truncate' ? text.slice(0, c.fault.afterBytes) : text;
        expect(manifest.source.sha256).toBe(createHash('sha256').update(served, 'latin1').digest('hex'));
        expect(await warehouseRows()).toEqual({ rows: c.landed.rows, lines: c.landed.rows });
      } else {
        expect(everything).toEqual([]);
        expect(await warehouseRows()).toEqual({ rows: 0, lines: 0 });
      }
      expect(await leftovers()).toEqual([]);
    });
  }
});

describe('a source that closes the connection after each response', () => {
  // Node 24's bundled undici crashed the process (an uncatchable AssertionError, a stack trace,
  // exit 1) when the server's FIN arrived while the body was paused under backpressure: about
  // half the runs of a real week against such a server. The worker uses undici 8's own client.
  it('loads the real week every time, with no crash', async () => {
    const closing = await startSourceServer({
      files: [{ name: FILE, path: await realWeekFile() }],
      connectionClose: true,
    });
    try {
      for (let run = 0; run < 6; run++) {
        const target = { sourceUrl: closing.baseUrl, dir: await mkdtemp(join(dir, 'close-')), now: NOW };
        const result = await runWorker(target, '--date', WEEK);
        expect(result.stderr).not.toMatch(/AssertionError|\n\s+at /);
        expect(result.code, result.stderr).toBe(0);
        expect(result.stdout).toMatch(/loaded\s+253,237 rows/);
      }
      expect(closing.requests.every((r) => r.status === 200)).toBe(true);
    } finally {
      await closing.close();
    }
  });
});

describe('GCS upload faults (fake-gcs-server behind the fault proxy)', () => {
  const isUpload = (r: { method: string; url: string }): boolean =>
    r.method === 'POST' && r.url.includes('/upload/');
  const storage = (): Storage =>
    new Storage({ apiEndpoint: gcs.url, projectId: PROJECT, useAuthWithCustomEndpoint: false });

  /** Objects under a run's prefix, with every stored object checked against the manifest. */
  async function landedObjects(prefix: string): Promise<{ names: string[]; manifest?: Manifest }> {
    const bucket = storage().bucket(BUCKET);
    const [files] = await bucket.getFiles({ prefix: `${prefix}/` });
    const names = files.map((f) => f.name.slice(prefix.length + 1)).sort();
    if (!names.includes(keys.manifest)) return { names };
    const [body] = await bucket.file(`${prefix}/${keys.manifest}`).download();
    const manifest = parseManifest(body.toString('utf8'), keys.manifest);
    for (const object of [manifest.objects.raw, manifest.objects.parquet]) {
      const [bytes] = await bucket.file(`${prefix}/${object.key}`).download();
      expect(createHash('sha256').update(bytes).digest('hex'), object.key).toBe(object.sha256);
    }
    return { names, manifest };
  }

  const CASES: { name: string; fault: ProxyFault; injected: number }[] = [
    {
      name: '503 on two upload requests is retried, and the week lands whole',
      fault: { kind: 'status', status: 503, times: 2, match: isUpload },
      injected: 2,
    },
    {
      name: '429 on two upload requests is retried, and the week lands whole',
      fault: { kind: 'status', status: 429, times: 2, match: isUpload },
      injected: 2,
    },
  ];

  for (const c of CASES) {
    it(c.name, async () => {
      const prefix = `run-${serial}`;
      proxy.fault(c.fault);
      const result = await worker(['--lake', `gs://${BUCKET}/${prefix}`], {
        MTA_INGEST_GCS_EMULATOR: proxy.url,
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^2023-06-03\s+loaded\s+2,000 rows\s+0 rejects/m);

      const injected = proxy.requests.filter((r) => r.fault === 'status');
      expect(injected).toHaveLength(c.injected);
      // Every upload that was refused was sent again: one more upload than objects written
      // (the version's raw, Parquet and record under _versions/, then raw, Parquet, manifest,
      // manifest with the load) per injected fault.
      expect(proxy.requests.filter(isUpload)).toHaveLength(7 + c.injected);

      const { names, manifest } = await landedObjects(prefix);
      const version = `turnstile/_versions/drop_date=${WEEK}/${manifest!.source.sha256.slice(0, 16)}/`;
      expect(names).toEqual([
        keys.manifest,
        `${version}turnstile_230603.parquet`,
        `${version}turnstile_230603.txt.gz`,
        `${version}version.json`,
        keys.parquet,
        keys.raw,
      ]);
      expect(manifest).toMatchObject({ rows: LINES, load: { rows: LINES } });
      expect(await warehouseRows()).toEqual({ rows: LINES, lines: LINES });
      expect(await leftovers()).toEqual([]);
    });
  }

  /**
   * Objects above 8 MiB go resumably: a session is started (POST uploadType=resumable), then
   * the body is PUT in 8 MiB chunks. A real week's objects are smaller, so this is driven
   * through the lake directly, with the storage client the worker builds for an emulator. After
   * a refused chunk the client asks the session what it kept and sends the rest: the proxy
   * answers that question as GCS does (fake-gcs-server would commit instead; fault-proxy.ts).
   */
  const RESUMABLE: { name: string; fault: ProxyFault; statusQueries: number }[] = [
    {
      name: '503 on starting the session',
      fault: {
        kind: 'status',
        status: 503,
        times: 1,
        match: (r) => r.method === 'POST' && r.url.includes('uploadType=resumable'),
      },
      statusQueries: 0,
    },
    {
      name: '429 on starting the session',
      fault: {
        kind: 'status',
        status: 429,
        times: 1,
        match: (r) => r.method === 'POST' && r.url.includes('uploadType=resumable'),
      },
      statusQueries: 0,
    },
    {
      name: '503 on a chunk',
      fault: { kind: 'status', status: 503, times: 1, match: (r) => r.method === 'PUT' },
      statusQueries: 1,
    },
    {
      name: '429 on a chunk',
      fault: { kind: 'status', status: 429, times: 1, match: (r) => r.method === 'PUT' },
      statusQueries: 1,
    },
  ];

  for (const c of RESUMABLE) {
    it(`a resumable upload survives ${c.name}, and the object is whole`, async () => {
      const data = randomBytes(RESUMABLE_THRESHOLD + 1024 * 1024);
      const path = join(dir, 'big.bin');
      await writeFile(path, data);
      const lake = new GcsLake(`gs://${BUCKET}/big-${serial}`, emulatorStorage(proxy.url));
      proxy.fault(c.fault);

      const stored = await lake.putFile('big.bin', path, 'application/octet-stream');
      expect(proxy.requests.filter((r) => r.fault === 'status')).toHaveLength(1);
      expect(proxy.requests.filter((r) => r.statusQuery)).toHaveLength(c.statusQueries);
      const crc = new CRC32C();
      crc.update(data);
      expect(stored.crc32c).toBe(crc.toString());
      const [copy] = await storage().bucket(BUCKET).file(`big-${serial}/big.bin`).download();
      expect(copy.equals(data)).toBe(true);
    });
  }
});

describe('BigQuery job faults (the BigQuery stand-in)', () => {
  let bigquery: BigQueryStandin;
  beforeAll(async () => {
    // With gcsUrl it holds what the loads read: the worker's record counts the partition's rows.
    bigquery = await startBigQueryStandin({ expectedToken: 'emulator', gcsUrl: gcs.url });
  });
  afterAll(() => bigquery.close());

  it('a failed load job fails the week (exit 1), the manifest does not claim it, and a rerun loads it', async () => {
    const prefix = `bq-${serial}`;
    const dataset = `faults_${serial}`;
    const args = ['--lake', `gs://${BUCKET}/${prefix}`, '--warehouse', `bigquery://${PROJECT}/${dataset}`];
    const env = { MTA_INGEST_GCS_EMULATOR: gcs.url, MTA_INGEST_BIGQUERY_EMULATOR: bigquery.url };
    const manifest = async (): Promise<Manifest> => {
      const [body] = await new Storage({ apiEndpoint: gcs.url, projectId: PROJECT })
        .bucket(BUCKET)
        .file(`${prefix}/${keys.manifest}`)
        .download();
      return parseManifest(body.toString('utf8'), keys.manifest);
    };
    const loadsInto = () =>
      [...bigquery.jobs.values()].filter(
        (j) => j.configuration.load?.destinationTable?.datasetId === dataset,
      );

    bigquery.script({
      states: ['RUNNING', 'DONE'],
      error: { reason: 'backendError', message: 'Backend error. Please try again.' },
    });
    const failed = await worker(args, env);
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stdout).toMatch(/^2023-06-03\s+failed\s.*Backend error\. Please try again\./m);
    expect((await manifest()).load).toBeUndefined();
    expect(loadsInto().map((j) => j.error?.reason)).toEqual(['backendError']);

    bigquery.script({ states: ['RUNNING', 'DONE'] });
    const rerun = await worker(args, env);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/^2023-06-03\s+loaded\s+2,000 rows\s.*loaded from the lake/m);
    const jobs = loadsInto();
    expect(jobs.map((j) => j.error?.reason)).toEqual(['backendError', undefined]);
    expect((await manifest()).load).toMatchObject({ jobId: jobs[1]!.jobId, rows: LINES });
    expect(await leftovers()).toEqual([]);

    // And the week is now "already loaded": no third job.
    const again = await worker(args, env);
    expect(again.stdout).toMatch(/^2023-06-03\s+already-loaded/m);
    expect(loadsInto()).toHaveLength(2);
  });
});
