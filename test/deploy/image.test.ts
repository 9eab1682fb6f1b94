/**
 * The project's own Dockerfile, built and run as users run it, with no Docker engine and no image
 * registry: buildah builds it on a stand-in base made from Debian's packages and the project's
 * Node, podman runs it non-root, read-only, with every capability dropped and a volume for data
 * (test/support/peers/podman.ts holds every sandbox flag, and why). The peers are the suites' own, on
 * 127.0.0.1, reached through the host's network: the source server with the real week,
 * fake-gcs-server and the BigQuery stand-in.
 *
 * The first build on a clean machine makes the base with debootstrap (about a minute) and runs
 * npm ci twice inside the build; later runs reuse the cached base and buildah's layers.
 */
import { readdir, stat } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBigQueryStandin, type BigQueryStandin } from '../support/peers/bigquery-standin.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { createBucket, startFakeGcs, type FakeGcs } from '../support/peers/fake-gcs.ts';
import {
  CONTAINER_UID,
  IMAGE,
  dataVolume,
  ensureImage,
  exec,
  podmanEnv,
  podmanKill,
  podmanRemove,
  podmanRun,
  podmanStart,
  removeVolume,
  waitRunning,
  type BuildResult,
} from '../support/peers/podman.ts';
import { REAL_WEEK_ROWS, realWeekFile, NOW } from '../support/fixtures/real-week.ts';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { TOOL } from '../../src/tool.ts';

const BUCKET = 'mta-image-lake';
const PROJECT = 'image-project';

let build: BuildResult;
let source: SourceServer;
const volumes: string[] = [];

async function volume(): Promise<string> {
  const dir = await dataVolume('mta-ingest-image-');
  volumes.push(dir);
  return dir;
}

beforeAll(async () => {
  const realWeek = await realWeekFile();
  [build, source] = await Promise.all([
    ensureImage(),
    startSourceServer({
      files: [
        { name: 'turnstile_230603.txt', path: realWeek },
        // The week the SIGTERM test stalls in: headers and 1 MB, then nothing for two minutes.
        { name: 'turnstile_230610.txt', path: realWeek },
      ],
    }),
  ]);
  source.fault('turnstile_230610.txt', { kind: 'stall', afterBytes: 1_000_000, ms: 120_000 });
  console.info(
    `image ${IMAGE}: base ${build.base.from} in ${build.base.seconds.toFixed(1)} s, ` +
      `buildah bud ${build.buildSeconds.toFixed(1)} s, size ${(build.sizeBytes / 1e6).toFixed(0)} MB`,
  );
}, 1_800_000);

afterAll(async () => {
  await source?.close();
  for (const dir of volumes) await removeVolume(dir);
});

/** Node's compile-cache report (NODE_DEBUG_NATIVE=COMPILE_CACHE) on a command's stderr. */
const CACHE_REPORT = { NODE_DEBUG_NATIVE: 'COMPILE_CACHE' };

/** The modules the command found in the image's compile cache, and those it compiled anew. */
function compileCacheOf(stderr: string): { cached: number; compiled: string[] } {
  return {
    cached: stderr.match(/V8 code cache for .* was accepted/g)?.length ?? 0,
    compiled: [...stderr.matchAll(/reading cache from \S+ for (?:ESM|CommonJS) (\S+) no such file/g)].map(
      (match) => match[1] ?? '',
    ),
  };
}

describe('the image', () => {
  it('is built from the Dockerfile: tini then the package, as uid 1000, with no npm and no CA', async () => {
    const env = await podmanEnv();
    const inspect = await exec('podman', ['image', 'inspect', '--format', '{{json .Config}}', IMAGE], {
      env,
    });
    expect(inspect.code, inspect.stderr).toBe(0);
    const config = JSON.parse(inspect.stdout) as {
      Entrypoint: string[];
      Cmd: string[];
      User: string;
      WorkingDir: string;
      Env: string[];
    };
    expect(config).toMatchObject({
      Entrypoint: ['tini', '--', 'node', '/app/dist/cli.js'],
      Cmd: ['run'],
      User: '1000:1000',
      WorkingDir: '/work',
    });
    expect(config.Env.join('\n')).not.toMatch(/CA_CERTS|SSL_CERT/);
    // The build-time CA was a secret mount: it is in no layer.
    const look = await podmanRun({
      args: [
        '-c',
        'test ! -e /run/secrets/ca && ! command -v npm && test -x /usr/bin/tini && id -u && ls /app/dist/cli.js',
      ],
      entrypoint: '/bin/sh',
    });
    expect(look.code, look.stderr + look.stdout).toBe(0);
    expect(look.stdout.trim().split('\n')).toEqual([String(CONTAINER_UID), '/app/dist/cli.js']);
    expect(build.sizeBytes).toBeGreaterThan(100e6);
    expect(build.sizeBytes).toBeLessThan(1e9);
  });

  it('--version prints the package version', async () => {
    const result = await podmanRun({ args: ['--version'] });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(TOOL.version);
  });

  it('starts from the compile cache built into it: --version compiles no module', async () => {
    const result = await podmanRun({ args: ['--version'], env: CACHE_REPORT });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(TOOL.version);
    const cache = compileCacheOf(result.stderr);
    expect(cache.compiled).toEqual([]);
    // The entry point and everything it imports (commander, pino, the command registry).
    expect(cache.cached).toBeGreaterThan(40);
    expect(result.stderr).toMatch(/for ESM file:\/\/\/app\/dist\/cli\.js was accepted/);
  });

  it('demo runs offline into a mounted volume', async () => {
    const data = await volume();
    const result = await podmanRun({
      args: ['demo', '--dir', '/work/data/demo'],
      volumes: { [data]: '/work/data' },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^2023-06-03\s+loaded\s+72,110 rows/m);
    expect(result.stdout).toMatch(/Busiest stations/);
    const owner = await stat(join(data, 'demo', 'warehouse.duckdb'));
    expect(owner.uid).toBe(CONTAINER_UID);
  });

  it('the default command, the weekly job, lands the real week in the mounted volume', async () => {
    const data = await volume();
    source.requests.length = 0;
    const result = await podmanRun({
      volumes: { [data]: '/work/data' },
      env: { MTA_INGEST_NOW: NOW, MTA_INGEST_SOURCE_URL: source.baseUrl, ...CACHE_REPORT },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^2023-06-03\s+loaded\s+253,237 rows/m);
    expect(source.requestsFor('turnstile_230603.txt')).toHaveLength(1);
    // Every module of the weekly job (DuckDB's included) came from the image's compile cache.
    expect(compileCacheOf(result.stderr).compiled).toEqual([]);
    // Read back from the host, with DuckDB, in the volume.
    const rows = await query(
      `SELECT drop_date::VARCHAR AS drop_date, count(*)::INTEGER AS n FROM turnstile_readings GROUP BY 1`,
      join(data, 'warehouse.duckdb'),
    );
    expect(rows).toEqual([{ drop_date: '2023-06-03', n: REAL_WEEK_ROWS }]);
    expect(await readdir(join(data, 'lake', 'turnstile', 'parquet', 'drop_date=2023-06-03'))).toEqual([
      'turnstile_230603.parquet',
    ]);
  });

  it('with GCS and BigQuery settings lands the week in fake-gcs-server and the BigQuery stand-in', async () => {
    let gcs: FakeGcs | undefined;
    let bigquery: BigQueryStandin | undefined;
    try {
      gcs = await startFakeGcs();
      await createBucket(gcs.url, BUCKET, 'US');
      // The stand-in reads what a load job names from the emulator: rows counted from the Parquet.
      bigquery = await startBigQueryStandin({ expectedToken: 'emulator', gcsUrl: gcs.url });
      const result = await podmanRun({
        args: ['run', '--date', '2023-06-03'],
        env: {
          MTA_INGEST_NOW: NOW,
          MTA_INGEST_SOURCE_URL: source.baseUrl,
          MTA_INGEST_LAKE: `gs://${BUCKET}/mta`,
          MTA_INGEST_WAREHOUSE: `bigquery://${PROJECT}/mta?location=US`,
          MTA_INGEST_GCS_EMULATOR: gcs.url,
          MTA_INGEST_BIGQUERY_EMULATOR: `${bigquery.url}/`,
          METADATA_SERVER_DETECTION: 'none',
          ...CACHE_REPORT,
        },
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^2023-06-03\s+loaded\s+253,237 rows/m);
      // The cloud SDKs' modules too came from the image's compile cache.
      expect(compileCacheOf(result.stderr).compiled).toEqual([]);

      const listing = (await (await fetch(`${gcs.url}/storage/v1/b/${BUCKET}/o`)).json()) as {
        items: { name: string }[];
      };
      const names = listing.items.map((item) => item.name);
      expect(names).toEqual(
        expect.arrayContaining([
          'mta/turnstile/raw/drop_date=2023-06-03/turnstile_230603.txt.gz',
          'mta/turnstile/parquet/drop_date=2023-06-03/turnstile_230603.parquet',
          'mta/turnstile/_manifests/drop_date=2023-06-03.json',
        ]),
      );
      const partition = bigquery.partitions.get(`${PROJECT}.mta.turnstile_readings`)?.get('20230603');
      expect(partition?.reduce((sum, chunk) => sum + chunk.rows, 0)).toBe(REAL_WEEK_ROWS);
      expect(bigquery.requests.every((r) => r.authorization === 'Bearer emulator')).toBe(true);
    } finally {
      await Promise.all([gcs?.stop(), bigquery?.close()]);
    }
  });
});

describe('SIGTERM', () => {
  /** A TCP server that accepts connections and never answers: a stalled Prefect API. */
  let silent: Server;
  let silentUrl: string;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api`;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  /**
   * Starts the container, waits for `ready`, sends SIGTERM the way `docker stop` does, and
   * returns the exit code and how long the container took to stop after the signal.
   */
  async function stopWithSigterm(
    name: string,
    options: { args: string[]; env?: Record<string, string>; ready: () => boolean },
  ): Promise<{ code: number | null; stopMs: number; output: string }> {
    const data = await volume();
    const container = `mta-ingest-sigterm-${name}-${process.pid}`;
    const started = await podmanStart({
      name: container,
      args: options.args,
      env: options.env,
      volumes: { [data]: '/work/data' },
    });
    try {
      await waitRunning(container);
      const deadline = Date.now() + 60_000;
      while (!options.ready() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(options.ready(), `${name} never got ready: ${started.output()}`).toBe(true);
      const signalled = performance.now();
      await podmanKill(container, 'TERM');
      const exited = await Promise.race([
        started.exited,
        new Promise<undefined>((resolve) => setTimeout(resolve, 30_000, undefined)),
      ]);
      const stopMs = performance.now() - signalled;
      return { code: exited?.code ?? null, stopMs, output: started.output() };
    } finally {
      await podmanRemove(container);
    }
  }

  it('stops `run` on a stalled source within 5 s, exit 143, the week interrupted', async () => {
    source.requests.length = 0;
    const result = await stopWithSigterm('run', {
      args: ['run', '--date', '2023-06-10'],
      env: { MTA_INGEST_NOW: '2023-06-12T16:00:00Z', MTA_INGEST_SOURCE_URL: source.baseUrl },
      // The body has begun, and stalls: the run is in the middle of fetching.
      ready: () => source.requestsFor('turnstile_230610.txt').some((r) => r.status === 200),
    });
    expect(result.code, result.output).toBe(143);
    expect(result.stopMs).toBeLessThan(5_000);
    expect(result.output).toMatch(/^2023-06-10\s+interrupted/m);
    console.info(`run: stopped ${result.stopMs.toFixed(0)} ms after SIGTERM`);
  });

  it('stops `demo` within 5 s, exit 143', async () => {
    const result = await stopWithSigterm('demo', {
      args: ['demo', '--dir', '/work/data/demo'],
      // As soon as the container runs: the demo takes about a second.
      ready: () => true,
    });
    expect(result.code, result.output).toBe(143);
    expect(result.stopMs).toBeLessThan(5_000);
    console.info(`demo: stopped ${result.stopMs.toFixed(0)} ms after SIGTERM`);
  });

  it('stops `blocks apply` and `deploy prefect` waiting on a Prefect API that never answers, exit 143', async () => {
    for (const args of [
      ['blocks', 'apply', '--block', 'local'],
      ['deploy', 'prefect', '--block', 'local'],
    ]) {
      let connected = false;
      silent.once('connection', () => (connected = true));
      const result = await stopWithSigterm(args[0]!, {
        args,
        env: { PREFECT_API_URL: silentUrl },
        ready: () => connected,
      });
      expect(result.code, `${args.join(' ')}: ${result.output}`).toBe(143);
      expect(result.stopMs).toBeLessThan(5_000);
      console.info(`${args.join(' ')}: stopped ${result.stopMs.toFixed(0)} ms after SIGTERM`);
    }
  });
});
