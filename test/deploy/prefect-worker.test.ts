/**
 * The image run by a real Prefect docker worker, as a user on one host runs it: a real Prefect
 * server (test/support/peers/prefect-server.ts), `prefect worker start --type docker` from
 * prefect-docker (pinned, in the Prefect venv, installed by .ci/install-image-tools) pointed at
 * `podman system service`'s Docker-compatible socket (DOCKER_HOST), and the image
 * test/support/peers/podman.ts builds. `deploy prefect` gives the deployments the block's container
 * settings (image, network mode, the data volume) as job variables; the worker starts the image
 * through podman, the container reports its own states, and the week lands in the volume.
 */
import { writeFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../support/harnesses/cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import {
  IMAGE,
  dataVolume,
  ensureImage,
  exec,
  podmanEnv,
  removeVolume,
  startPodmanService,
  type PodmanService,
} from '../support/peers/podman.ts';
import { PREFECT_VENV, startPrefectServer, type PrefectServer } from '../support/peers/prefect-server.ts';
import { REAL_WEEK_ROWS, realWeekFile } from '../support/fixtures/real-week.ts';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { readDefinitions } from '../../src/prefect/prefect-deploy.ts';

const BLOCK = 'onehost';
const POOL = 'mta-ingest-docker';
/** A Monday after the 2023-06-03 drop (and the 06-10 one), as the container's clock. */
const NOW = '2023-06-12T16:00:00Z';

let prefect: PrefectServer;
let source: SourceServer;
let service: PodmanService;
/** The operator's folder: blocks/onehost.json. */
let dir: string;
/** The host folder the block mounts on /work/data in every container. */
let data: string;

interface FlowRun {
  id: string;
  state: { type: string; name: string; message: string | null };
}

function blockFile(container: Record<string, unknown> = {}): string {
  return JSON.stringify({
    description: 'one host: the image through a docker worker, data in a host folder',
    source: { url: source.baseUrl, fetchBackoffMs: 10, fetchTimeoutMs: 60_000 },
    container: {
      image: IMAGE,
      pullPolicy: 'Never',
      networkMode: 'host',
      volumes: [`${data}:/work/data`],
      ...container,
    },
  });
}

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, { cwd: dir, env: { PREFECT_API_URL: prefect.apiUrl } });
}

async function deploymentNamed(
  name: string,
): Promise<{ id: string; job_variables: Record<string, unknown> }> {
  return prefect.api('GET', `/deployments/name/mta-ingest/${name}`);
}

async function backfillRun(parameters: Record<string, unknown>): Promise<string> {
  const { id } = await deploymentNamed('backfill');
  const run = await prefect.api<FlowRun>('POST', `/deployments/${id}/create_flow_run`, {
    parameters,
    // Per-run job variables, as Prefect allows: the container's clock for the test.
    job_variables: { env: { MTA_INGEST_NOW: NOW } },
  });
  return run.id;
}

/** `prefect worker start --run-once`: picks up the scheduled runs, waits for them (--limit). */
function workerOnce(): Promise<ReturnType<typeof exec> extends Promise<infer R> ? R : never> {
  return exec(
    join(PREFECT_VENV, 'bin', 'prefect'),
    ['worker', 'start', '--pool', POOL, '--type', 'docker', '--run-once', '--limit', '1'],
    {
      env: {
        ...process.env,
        PREFECT_API_URL: prefect.apiUrl,
        PREFECT_HOME: join(dir, 'prefect-home'),
        DOCKER_HOST: service.dockerHost,
        PREFECT_SERVER_ANALYTICS_ENABLED: 'false',
        DO_NOT_TRACK: '1',
      },
      timeoutMs: 300_000,
    },
  );
}

async function flowRun(id: string): Promise<FlowRun> {
  return prefect.api<FlowRun>('GET', `/flow_runs/${id}`);
}

/** The containers the worker made for a flow run: state and exit code, from podman. */
async function containersOf(id: string): Promise<string[]> {
  const env = await podmanEnv();
  const ids = await exec('podman', ['ps', '-aq', '--filter', `label=io.prefect.flow-run-id=${id}`], { env });
  const states: string[] = [];
  for (const container of ids.stdout.trim().split('\n').filter(Boolean)) {
    const state = await exec(
      'podman',
      ['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', container],
      { env },
    );
    states.push(state.stdout.trim());
  }
  return states;
}

beforeAll(async () => {
  const realWeek = await realWeekFile();
  [prefect, source, service] = await Promise.all([
    startPrefectServer(),
    startSourceServer({
      files: [
        { name: 'turnstile_230603.txt', path: realWeek },
        { name: 'turnstile_230610.txt', path: realWeek },
      ],
    }),
    startPodmanService(),
    ensureImage(),
  ]);
  // The week the cancel test stops: headers and 1 MB, then nothing for two minutes.
  source.fault('turnstile_230610.txt', { kind: 'stall', afterBytes: 1_000_000, ms: 120_000 });
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-worker-'));
  data = await dataVolume('mta-ingest-worker-data-');
  await mkdir(join(dir, 'blocks'));
  await writeFile(join(dir, 'blocks', `${BLOCK}.json`), blockFile());
}, 1_800_000);

afterAll(async () => {
  const env = await podmanEnv().catch(() => undefined);
  if (env) {
    const leftovers = await exec('podman', ['ps', '-aq', '--filter', 'label=io.prefect.flow-run-id'], {
      env,
    });
    for (const id of leftovers.stdout.trim().split('\n').filter(Boolean)) {
      await exec('podman', ['rm', '--force', '--time', '0', id], { env });
    }
  }
  await Promise.all([prefect?.stop(), source?.close(), service?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
  await removeVolume(data);
});

describe('deploy prefect for a docker worker', () => {
  it("gives the deployments the block's container settings, and updates them idempotently", async () => {
    expect((await cli(['blocks', 'apply', '--block', BLOCK])).code).toBe(0);
    const first = await cli(['deploy', 'prefect', '--block', BLOCK, '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ workPool: { name: POOL, action: 'created' } });
    const expected = {
      command: `run --block prefect:${BLOCK}`,
      image: IMAGE,
      image_pull_policy: 'Never',
      network_mode: 'host',
      volumes: [`${data}:/work/data`],
    };
    for (const name of ['weekly', 'backfill']) {
      expect((await deploymentNamed(name)).job_variables).toEqual(expected);
    }

    // The block changes: an environment variable added, the volume read-only. And the pool's
    // template was changed in Prefect (an older version's, or a hand edit).
    await writeFile(
      join(dir, 'blocks', `${BLOCK}.json`),
      blockFile({ volumes: [`${data}:/work/data:ro`], env: { TZ: 'UTC' } }),
    );
    expect((await cli(['blocks', 'apply', '--block', BLOCK])).code).toBe(0);
    const definitions = await readDefinitions();
    const older = structuredClone(definitions.workPool.base_job_template) as {
      job_configuration: Record<string, unknown>;
      variables: { properties: Record<string, unknown> };
    };
    delete older.job_configuration.network_mode;
    delete older.variables.properties.network_mode;
    await prefect.api('PATCH', `/work_pools/${POOL}`, { base_job_template: older });
    const changed = await cli(['deploy', 'prefect', '--block', BLOCK, '--json']);
    expect(changed.code, changed.stderr).toBe(0);
    expect(JSON.parse(changed.stdout)).toMatchObject({ workPool: { action: 'updated' } });
    const pool = await prefect.api<{ base_job_template: unknown }>('GET', `/work_pools/${POOL}`);
    expect(pool.base_job_template).toEqual(definitions.workPool.base_job_template);
    expect((await deploymentNamed('backfill')).job_variables).toEqual({
      ...expected,
      volumes: [`${data}:/work/data:ro`],
      env: { TZ: 'UTC' },
    });

    // Back to the first block: the env is removed from the deployments, the pool stays as it is.
    await writeFile(join(dir, 'blocks', `${BLOCK}.json`), blockFile());
    expect((await cli(['blocks', 'apply', '--block', BLOCK])).code).toBe(0);
    const again = await cli(['deploy', 'prefect', '--block', BLOCK, '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({
      workPool: { action: 'exists' },
      deployments: [{ action: 'updated' }, { action: 'updated' }],
    });
    expect((await deploymentNamed('backfill')).job_variables).toEqual(expected);
  });
});

describe('a flow run picked up by the docker worker', () => {
  it('backfills 2023-06-03 in the image: the week lands in the volume, Completed with its artifact', async () => {
    const id = await backfillRun({ year: 2023, month: 6, day: 3 });
    const started = performance.now();
    const worker = await workerOnce();
    const seconds = (performance.now() - started) / 1000;
    console.info(`docker worker: flow run ${id} took ${seconds.toFixed(1)} s end to end`);
    expect(worker.code, worker.stdout + worker.stderr).toBe(0);

    const run = await flowRun(id);
    expect(run.state, worker.stdout + worker.stderr).toMatchObject({
      type: 'COMPLETED',
      message: '1 week: 1 loaded (253,237 rows loaded)',
    });
    const artifacts = await prefect.api<{ key: string; data: string }[]>('POST', '/artifacts/filter', {
      artifacts: { flow_run_id: { any_: [id] } },
    });
    expect(artifacts.map((a) => a.key)).toEqual(['mta-ingest-week-summary']);
    expect(artifacts[0]!.data).toMatch(/^\| 2023-06-03 \| loaded \| 253,237 \| 0 \| 33\.2 MB \| /m);
    // The week, in the host folder the block mounts, read with DuckDB from the host.
    expect(
      await query(
        `SELECT drop_date::VARCHAR AS drop_date, count(*)::INTEGER AS n FROM turnstile_readings GROUP BY 1`,
        join(data, 'warehouse.duckdb'),
      ),
    ).toEqual([{ drop_date: '2023-06-03', n: REAL_WEEK_ROWS }]);
    expect(await containersOf(id)).toEqual(['exited 0']);
  });

  it('for a week the source does not have ends Failed with the reason', async () => {
    const id = await backfillRun({ year: 2023, month: 5, day: 27 });
    const worker = await workerOnce();
    expect(worker.code, worker.stdout + worker.stderr).toBe(0);
    const run = await flowRun(id);
    expect(run.state.type, JSON.stringify(run.state)).toBe('FAILED');
    expect(run.state.message).toBe(
      `1 week: 1 not-published; 2023-05-27 not-published: HTTP 404 for ${source.baseUrl}/turnstile_230527.txt`,
    );
    expect(await containersOf(id)).toEqual(['exited 3']);
  });

  it('cancelled while it runs, stops its container and ends Cancelled', async () => {
    source.requests.length = 0;
    const id = await backfillRun({ year: 2023, month: 6, day: 10 });
    const worker = workerOnce();
    // Running, and stalled in the middle of the week's body.
    const deadline = Date.now() + 120_000;
    while (!source.requestsFor('turnstile_230610.txt').some((r) => r.status === 200)) {
      if (Date.now() > deadline)
        throw new Error(`the run never fetched: ${JSON.stringify(await flowRun(id))}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect((await flowRun(id)).state.type).toBe('RUNNING');
    const cancelled = performance.now();
    await prefect.api('POST', `/flow_runs/${id}/set_state`, {
      state: { type: 'CANCELLING', name: 'Cancelling' },
      force: true,
    });
    const result = await worker;
    const stopSeconds = (performance.now() - cancelled) / 1000;
    console.info(
      `docker worker: cancelled flow run ${id} stopped ${stopSeconds.toFixed(1)} s after Cancelling`,
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(stopSeconds).toBeLessThan(20);
    const run = await flowRun(id);
    expect(run.state.type, JSON.stringify(run.state)).toBe('CANCELLED');
    expect(run.state.message).toMatch(/^cancelled in Prefect: interrupted/);
    expect(await containersOf(id)).toEqual(['exited 143']);
  });
});
