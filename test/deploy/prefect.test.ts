/**
 * The worker with a real Prefect server (pinned, from .ci/install-test-servers) on 127.0.0.1:
 * blocks applied to it and read back by name, the flow and deployments registered through its
 * REST API, and flow runs created from the deployments and executed the way the docker worker
 * executes them: the deployment's command, run by the real CLI as a child process, with the flow
 * run's environment, against a local source server serving the real week.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../support/harnesses/cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { startPrefectServer, type PrefectServer } from '../support/peers/prefect-server.ts';
import { REAL_WEEK_ROWS, realWeekFile } from '../support/fixtures/real-week.ts';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { freePort } from '../support/peers/watched-process.ts';
import { validateBlock } from '../../src/blocks.ts';
import { choiceFromParameters } from '../../src/prefect/flow-run-parameters.ts';
import { jobVariables, readDefinitions } from '../../src/prefect/prefect-deploy.ts';
import { stateMessage, weekSummaryMarkdown } from '../../src/prefect/week-summary-markdown.ts';
import type { RunSummary } from '../../src/pipeline/week-result.ts';

const IMAGE = 'mtaingest/mta-ingest:0.1.0';
const BLOCK = 'nyc';

let prefect: PrefectServer;
let source: SourceServer;
/** Holds the block file (blocks/nyc.json) and the block's lake, warehouse and spool. */
let dir: string;
/** An empty working directory: a container has no blocks/ of the operator's. */
let container: string;

const lakeDir = () => join(dir, 'lake');
const warehouseFile = () => join(dir, 'wh.duckdb');

interface Deployment {
  id: string;
  name: string;
  flow_id: string;
  work_pool_name: string;
  schedules: { schedule: Record<string, unknown>; active: boolean }[];
  job_variables: Record<string, unknown>;
  parameters: Record<string, unknown>;
  parameter_openapi_schema: Record<string, unknown>;
  enforce_parameter_schema: boolean;
  version: string | null;
}
interface FlowRun {
  id: string;
  deployment_id: string;
  parameters: Record<string, unknown>;
  state: { type: string; name: string; message: string | null };
}
interface Artifact {
  key: string;
  type: string;
  data: string;
  flow_run_id: string;
}

/** The block the tests apply: the source server, the lake and warehouse in `dir`, the image. */
function blockFile(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    description: 'the tests',
    source: { url: source.baseUrl, fetchBackoffMs: 10 },
    lake: { uri: lakeDir() },
    warehouse: { uri: warehouseFile() },
    container: { image: IMAGE, pullPolicy: 'Always' },
    worker: { workDir: dir },
    ...extra,
  });
}

function cli(args: string[], env: Record<string, string> = {}, cwd = dir): Promise<CliResult> {
  return runCli(args, { cwd, env: { PREFECT_API_URL: prefect.apiUrl, ...env } });
}

async function deployment(name: string): Promise<Deployment> {
  return prefect.api<Deployment>('GET', `/deployments/name/mta-ingest/${name}`);
}

async function createFlowRun(
  from: 'weekly' | 'backfill',
  parameters: Record<string, unknown>,
  options: Record<string, unknown> = {},
): Promise<string> {
  const { id } = await deployment(from);
  return (
    await prefect.api<FlowRun>('POST', `/deployments/${id}/create_flow_run`, { parameters, ...options })
  ).id;
}

/**
 * What the docker worker does with a flow run: the container runs the deployment's `command` (the
 * image's entrypoint is the CLI) with PREFECT__FLOW_RUN_ID and PREFECT_API_URL set.
 */
async function executeFlowRun(id: string, now: string, env: Record<string, string> = {}): Promise<CliResult> {
  const run = await prefect.api<FlowRun>('GET', `/flow_runs/${id}`);
  const { job_variables } = await prefect.api<Deployment>('GET', `/deployments/${run.deployment_id}`);
  const command = (job_variables.command as string).split(' ');
  return cli(command, { PREFECT__FLOW_RUN_ID: id, MTA_INGEST_NOW: now, ...env }, container);
}

async function flowRun(id: string): Promise<FlowRun> {
  return prefect.api<FlowRun>('GET', `/flow_runs/${id}`);
}

async function stateHistory(id: string): Promise<string[]> {
  const states = await prefect.api<{ type: string; timestamp: string }[]>(
    'GET',
    `/flow_run_states/?flow_run_id=${id}`,
  );
  return states.sort((a, b) => a.timestamp.localeCompare(b.timestamp)).map((s) => s.type);
}

async function artifactsOf(id: string): Promise<Artifact[]> {
  return prefect.api<Artifact[]>('POST', '/artifacts/filter', { artifacts: { flow_run_id: { any_: [id] } } });
}

async function weeksInWarehouse(): Promise<Record<string, unknown>[]> {
  if (!existsSync(warehouseFile())) return [];
  return query(
    `SELECT drop_date::VARCHAR AS drop_date, count(*)::INTEGER AS n FROM turnstile_readings GROUP BY 1 ORDER BY 1`,
    warehouseFile(),
  );
}

beforeAll(async () => {
  const realWeek = await realWeekFile();
  [prefect, source] = await Promise.all([
    startPrefectServer(),
    startSourceServer({
      files: [
        { name: 'turnstile_230603.txt', path: realWeek },
        // The same file as next week's drop, so a month's backfill has two weeks to load.
        { name: 'turnstile_230610.txt', path: realWeek },
      ],
    }),
  ]);
  console.info(`Prefect server ready in ${(prefect.startMs / 1000).toFixed(1)} s at ${prefect.apiUrl}`);
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-prefect-'));
  container = join(dir, 'container');
  await mkdir(join(dir, 'blocks'), { recursive: true });
  await mkdir(container);
  await writeFile(join(dir, 'blocks', `${BLOCK}.json`), blockFile());
}, 60_000);
afterAll(async () => {
  await Promise.all([prefect?.stop(), source?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('deploy prefect', () => {
  it('deploying twice gives one flow, one docker pool and two deployments, exactly as specified', async () => {
    expect((await cli(['blocks', 'apply', '--block', BLOCK])).code).toBe(0);
    const first = await cli(['deploy', 'prefect', '--block', BLOCK, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const second = await cli(['deploy', 'prefect', '--block', BLOCK, '--json']);
    expect(second.code, second.stderr).toBe(0);
    const [a, b] = [JSON.parse(first.stdout), JSON.parse(second.stdout)] as {
      flow: { id: string; action: string };
      workPool: { action: string };
      deployments: { id: string; name: string; action: string }[];
    }[];
    expect([a!.flow.action, a!.workPool.action, a!.deployments.map((d) => d.action)]).toEqual([
      'created',
      'created',
      ['created', 'created'],
    ]);
    expect([b!.flow.action, b!.workPool.action, b!.deployments.map((d) => d.action)]).toEqual([
      'exists',
      'exists',
      ['updated', 'updated'],
    ]);
    expect(b!.flow.id).toBe(a!.flow.id);
    expect(b!.deployments.map((d) => d.id)).toEqual(a!.deployments.map((d) => d.id));

    const flows = await prefect.api<{ id: string; name: string }[]>('POST', '/flows/filter', {});
    expect(flows.map((f) => f.name)).toEqual(['mta-ingest']);
    const pools = await prefect.api<{ name: string; type: string; base_job_template: unknown }[]>(
      'POST',
      '/work_pools/filter',
      {},
    );
    const definitions = await readDefinitions();
    expect(pools.map((p) => [p.name, p.type])).toEqual([['mta-ingest-docker', 'docker']]);
    expect(pools[0]!.base_job_template).toEqual(definitions.workPool.base_job_template);
    const deployments = await prefect.api<Deployment[]>('POST', '/deployments/filter', {});
    expect(deployments.map((d) => d.name).sort()).toEqual(['backfill', 'weekly']);

    const jobVariables = {
      command: `run --block prefect:${BLOCK}`,
      image: IMAGE,
      image_pull_policy: 'Always',
    };
    const weekly = await deployment('weekly');
    expect(weekly).toMatchObject({
      flow_id: a!.flow.id,
      work_pool_name: 'mta-ingest-docker',
      job_variables: jobVariables,
      parameters: {},
      enforce_parameter_schema: true,
      version: '0.1.0',
    });
    // Deployed twice, still one schedule: Sunday 09:00 in New York.
    expect(weekly.schedules).toHaveLength(1);
    expect(weekly.schedules[0]).toMatchObject({
      active: true,
      schedule: { cron: '0 9 * * 0', timezone: 'America/New_York', day_or: true },
    });

    const backfill = await deployment('backfill');
    expect(backfill).toMatchObject({
      flow_id: a!.flow.id,
      work_pool_name: 'mta-ingest-docker',
      job_variables: jobVariables,
      schedules: [],
      enforce_parameter_schema: true,
    });
    // No parameter is required: a flow run with no date selection is the weekly catch-up (Prefect
    // checks a deployment's default parameters against its schema, so one-of-these-is-required
    // cannot be said there; the worker refuses what does not combine, e.g. month without year).
    expect(backfill.parameter_openapi_schema).not.toHaveProperty('required');
    expect(backfill.parameter_openapi_schema).toMatchObject({
      type: 'object',
      properties: {
        year: { type: 'integer', minimum: 2010 },
        month: { type: 'integer', minimum: 1, maximum: 12 },
        day: { type: 'integer', minimum: 1, maximum: 31 },
        date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
        from: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
        to: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
        week_of: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
        missing: { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
      },
      additionalProperties: false,
    });
    expect(Object.keys(backfill.parameter_openapi_schema.properties as object)).toEqual([
      'year',
      'month',
      'day',
      'date',
      'from',
      'to',
      'week_of',
      'missing',
      'force',
    ]);
  });

  it("schedules the weekly deployment's runs on Sundays at 09:00 New York time, summer and winter", async () => {
    const weekly = await deployment('weekly');
    const start = new Date();
    await prefect.api('POST', `/deployments/${weekly.id}/schedule`, {
      start_time: start.toISOString(),
      end_time: new Date(start.getTime() + 400 * 86_400_000).toISOString(),
      min_runs: 53,
      max_runs: 53,
    });
    const runs = await prefect.api<{ expected_start_time: string }[]>('POST', '/flow_runs/filter', {
      flow_runs: { deployment_id: { any_: [weekly.id] }, state: { type: { any_: ['SCHEDULED'] } } },
      limit: 200,
    });
    expect(runs.length).toBeGreaterThanOrEqual(52);
    const newYork = new Intl.DateTimeFormat('en-US', {
      timeZone: 'America/New_York',
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    const local = new Set(runs.map((r) => newYork.format(new Date(r.expected_start_time))));
    expect([...local]).toEqual(['Sun 09:00']);
    // A year of Sundays spans both offsets: 13:00 UTC in summer (EDT), 14:00 UTC in winter (EST).
    const utcHours = new Set(runs.map((r) => new Date(r.expected_start_time).getUTCHours()));
    expect([...utcHours].sort()).toEqual([13, 14]);
    await prefect.api('POST', '/flow_runs/bulk_delete', {
      flow_runs: { deployment_id: { any_: [weekly.id] }, state: { type: { any_: ['SCHEDULED'] } } },
    });
  });

  it('lets Prefect refuse flow runs whose parameters break the backfill schema', async () => {
    const { id } = await deployment('backfill');
    for (const [parameters, reason] of [
      // Prefect makes every optional parameter nullable (anyOf the type and null): its reason
      // varies between the branches, the field it names does not.
      [{ year: '2023' }, /Validation failed for field 'year'/],
      [{ year: 2023, month: 13 }, /Validation failed for field 'month'/],
      [{ year: 2023, week: 1 }, /'week' was unexpected/],
      [{ week_of: '2023-6-4' }, /Validation failed for field 'week_of'/],
      [{ date: 20230603 }, /Validation failed for field 'date'/],
      [{ missing: 'yes' }, /Validation failed for field 'missing'/],
    ] as const) {
      const answer = await prefect.request('POST', `/deployments/${id}/create_flow_run`, { parameters });
      expect(answer.status).toBe(409);
      expect(JSON.stringify(answer.body)).toMatch(reason);
    }
  });

  it('refuses a block with no container section, or not in Prefect, and a pool of another type', async () => {
    await writeFile(join(dir, 'blocks', 'bare.json'), JSON.stringify({ lake: { uri: lakeDir() } }));
    expect((await cli(['blocks', 'apply', '--block', 'bare'])).code).toBe(0);
    const bare = await cli(['deploy', 'prefect', '--block', 'bare']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^mta-ingest: --block bare: the block has no container section/m);

    const missing = await cli(['deploy', 'prefect', '--block', 'nowhere']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/has no block documents named nowhere .*blocks apply --block nowhere/);

    await prefect.api('POST', '/work_pools/', { name: 'processes', type: 'process' });
    const pool = await cli(['deploy', 'prefect', '--block', BLOCK, '--work-pool', 'processes']);
    expect(pool.code).toBe(2);
    expect(pool.stderr).toMatch(/work pool processes exists in Prefect with type process, not docker/);

    const noServer = await runCli(['deploy', 'prefect', '--block', BLOCK], { env: { PREFECT_API_URL: '' } });
    expect(noServer.code).toBe(2);
    expect(noServer.stderr).toMatch(/a Prefect server is needed: set PREFECT_API_URL/);
  });
});

describe('a flow run', () => {
  beforeAll(async () => {
    expect((await cli(['blocks', 'apply', '--block', BLOCK])).code).toBe(0);
    expect((await cli(['deploy', 'prefect', '--block', BLOCK])).code).toBe(0);
  });
  beforeEach(async () => {
    await rm(lakeDir(), { recursive: true, force: true });
    await rm(warehouseFile(), { force: true });
    source.requests.length = 0;
  });

  it('from the backfill deployment loads the month it names, and ends Completed with the artifact', async () => {
    const id = await createFlowRun('backfill', { year: 2023, month: 6 });
    const result = await executeFlowRun(id, '2023-06-12T16:00:00Z');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^2023-06-03\s+loaded\s+253,237 rows/m);
    expect(result.stdout).toMatch(/^2023-06-10\s+loaded\s+253,237 rows/m);
    expect(result.stderr).not.toMatch(/mta-ingest: prefect:/);

    expect(await weeksInWarehouse()).toEqual([
      { drop_date: '2023-06-03', n: REAL_WEEK_ROWS },
      { drop_date: '2023-06-10', n: REAL_WEEK_ROWS },
    ]);
    const run = await flowRun(id);
    expect(run.state).toMatchObject({
      type: 'COMPLETED',
      message: '2 weeks: 2 loaded (506,474 rows loaded)',
    });
    expect(await stateHistory(id)).toEqual(['SCHEDULED', 'PENDING', 'RUNNING', 'COMPLETED']);

    const artifacts = await artifactsOf(id);
    expect(artifacts).toHaveLength(1);
    expect(artifacts[0]).toMatchObject({ key: 'mta-ingest-week-summary', type: 'markdown', flow_run_id: id });
    const table = artifacts[0]!.data.split('\n').filter((line) => line.startsWith('| 2023-'));
    expect(table).toEqual([
      expect.stringMatching(/^\| 2023-06-03 \| loaded \| 253,237 \| 0 \| 33\.2 MB \| [\d.]+ \| /),
      expect.stringMatching(/^\| 2023-06-10 \| loaded \| 253,237 \| 0 \| 33\.2 MB \| [\d.]+ \| /),
    ]);
    expect(artifacts[0]!.data).toMatch(/2 weeks: 2 loaded \(506,474 rows loaded\); exit code 0\./);
  });

  it('from the weekly deployment takes the latest drop date, and force from its parameters', async () => {
    // Sunday 2023-06-04 09:00 in New York, when the schedule fires.
    const now = '2023-06-04T13:00:00Z';
    const first = await executeFlowRun(await createFlowRun('weekly', {}), now);
    expect(first.code, first.stderr).toBe(0);
    expect(await weeksInWarehouse()).toEqual([{ drop_date: '2023-06-03', n: REAL_WEEK_ROWS }]);

    const again = await createFlowRun('weekly', {});
    expect((await executeFlowRun(again, now)).stdout).toMatch(/^2023-06-03\s+already-loaded/m);
    expect((await flowRun(again)).state).toMatchObject({
      type: 'COMPLETED',
      message: '1 week: 1 already-loaded',
    });

    const forced = await createFlowRun('weekly', { force: true });
    expect((await executeFlowRun(forced, now)).stdout).toMatch(/^2023-06-03\s+loaded/m);
    expect((await flowRun(forced)).state.type).toBe('COMPLETED');
  });

  it('from the backfill deployment takes week_of (a logical date) and missing, as the flags do', async () => {
    // Sunday 2023-06-04, Airflow's {{ ds }} for the week: its readings are in the file of 2023-06-10.
    const byWeek = await createFlowRun('backfill', { week_of: '2023-06-04' });
    const result = await executeFlowRun(byWeek, '2023-06-12T16:00:00Z');
    expect(result.code, result.stderr).toBe(0);
    expect(await weeksInWarehouse()).toEqual([{ drop_date: '2023-06-10', n: REAL_WEEK_ROWS }]);

    source.requests.length = 0;
    const missing = await createFlowRun('backfill', { from: '2023-06-01', to: '2023-06-10', missing: true });
    const filled = await executeFlowRun(missing, '2023-06-12T16:00:00Z');
    expect(filled.code, filled.stderr).toBe(0);
    expect(filled.stdout).toMatch(/^2023-06-03\s+loaded/m);
    expect(source.requests.map((r) => r.path)).toEqual([
      `${new URL(source.baseUrl).pathname}/turnstile_230603.txt`,
    ]);
    expect((await flowRun(missing)).state).toMatchObject({
      type: 'COMPLETED',
      message: '1 week: 1 loaded (253,237 rows loaded)',
    });
  });

  it('for a week the source does not have ends Failed with the reason', async () => {
    const id = await createFlowRun('backfill', { year: 2023, month: 6, day: 17 });
    const result = await executeFlowRun(id, '2023-06-19T16:00:00Z');
    expect(result.code).toBe(3);
    const run = await flowRun(id);
    expect(run.state.type).toBe('FAILED');
    // Named for what exit 3 means to a scheduler (docs/deployment.md, "Exit codes per scheduler").
    expect(run.state.name).toBe('NotPublished');
    expect(run.state.message).toBe(
      `1 week: 1 not-published; 2023-06-17 not-published: HTTP 404 for ${source.baseUrl}/turnstile_230617.txt`,
    );
    expect(await stateHistory(id)).toEqual(['SCHEDULED', 'PENDING', 'RUNNING', 'FAILED']);
    const [artifact] = await artifactsOf(id);
    expect(artifact!.data).toMatch(
      /^\| 2023-06-17 \| not-published \| - \| - \| 0\.0 MB \| [\d.]+ \| HTTP 404 for /m,
    );
    expect(await weeksInWarehouse()).toEqual([]);
  });

  it('for a future date ends Failed with the usage error, having fetched nothing', async () => {
    const id = await createFlowRun('backfill', { year: 2023, month: 7 });
    const result = await executeFlowRun(id, '2023-06-12T16:00:00Z');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^mta-ingest: --year 2023 --month 7 is in the future/m);
    const run = await flowRun(id);
    expect(run.state.type).toBe('FAILED');
    expect(run.state.message).toBe(
      '--year 2023 --month 7 is in the future (today in New York is 2023-06-12)',
    );
    expect(source.requests).toEqual([]);
    expect(await artifactsOf(id)).toEqual([]);
  });

  it('with a parameter Prefect did not check ends Failed: the worker checks it too', async () => {
    const id = await createFlowRun('backfill', { year: '2023' }, { enforce_parameter_schema: false });
    const result = await executeFlowRun(id, '2023-06-12T16:00:00Z');
    expect(result.code).toBe(2);
    expect((await flowRun(id)).state).toMatchObject({
      type: 'FAILED',
      message: 'flow run parameter year "2023" is not a whole number',
    });
    expect(source.requests).toEqual([]);
  });

  it('that Prefect has cancelled does not run', async () => {
    const id = await createFlowRun('backfill', { year: 2023, month: 6, day: 3 });
    await prefect.api('POST', `/flow_runs/${id}/set_state`, {
      state: { type: 'CANCELLED', name: 'Cancelled' },
      force: true,
    });
    const result = await executeFlowRun(id, '2023-06-12T16:00:00Z');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Prefect answered ABORT to Pending for flow run .* which stays Cancelled/);
    expect((await flowRun(id)).state.type).toBe('CANCELLED');
    expect(source.requests).toEqual([]);
  });

  it('keeps the data outcome when reporting fails, sends the API key and never prints it', async () => {
    const apiKey = 'pnu_sentinel-key-0123456789';
    const proxy = await startRecordingProxy(
      prefect.apiUrl,
      (method, url) => method === 'POST' && url === '/api/artifacts/',
    );
    try {
      const id = await createFlowRun('backfill', { year: 2023, month: 6, day: 3 });
      const result = await executeFlowRun(id, '2023-06-12T16:00:00Z', {
        PREFECT_API_URL: proxy.apiUrl,
        PREFECT_API_KEY: apiKey,
      });
      expect(result.code, result.stderr).toBe(0);
      const problems = result.stderr.split('\n').filter((line) => line.startsWith('mta-ingest:'));
      expect(problems).toEqual([
        `mta-ingest: prefect: could not attach the week summary to flow run ${id}: Prefect POST /artifacts/ answered HTTP 500: injected failure`,
      ]);
      expect(await weeksInWarehouse()).toEqual([{ drop_date: '2023-06-03', n: REAL_WEEK_ROWS }]);
      expect((await flowRun(id)).state.type).toBe('COMPLETED');
      // Every request, the block's included, carried the key; no output shows it.
      expect(proxy.requests.length).toBeGreaterThanOrEqual(8);
      expect(new Set(proxy.requests.map((r) => r.authorization))).toEqual(new Set([`Bearer ${apiKey}`]));
      expect(`${result.stdout}${result.stderr}`).not.toContain('sentinel-key');
    } finally {
      await proxy.close();
    }
  });

  it('that cannot be read, Prefect being unreachable, does not run', async () => {
    const port = await freePort();
    const result = await executeFlowRun(
      await createFlowRun('backfill', { year: 2023, month: 6, day: 3 }),
      '2023-06-12T16:00:00Z',
      { PREFECT_API_URL: `http://127.0.0.1:${port}/api` },
    );
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(
      /^mta-ingest: cannot read Prefect flow run [0-9a-f-]+: .*failed after 3 attempts: ECONNREFUSED$/,
    );
    expect(source.requests).toEqual([]);
  });
});

describe('blocks in Prefect', () => {
  interface BlockDocumentRecord {
    id: string;
    name: string;
    data: Record<string, unknown>;
    block_type: { slug: string };
  }
  const documentsNamed = async (name: string): Promise<BlockDocumentRecord[]> =>
    (
      await prefect.api<BlockDocumentRecord[]>('POST', '/block_documents/filter', {
        block_documents: { name: { any_: [name] } },
      })
    ).sort((a, b) => a.block_type.slug.localeCompare(b.block_type.slug));

  it('applying twice gives the same documents, updated in place, and a removed section is deleted', async () => {
    await writeFile(join(dir, 'blocks', 'twice.json'), blockFile());
    const first = await cli(['blocks', 'apply', '--block', 'twice', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const applied = (
      JSON.parse(first.stdout) as { blocks: { reference: string; action: string; id: string }[] }
    ).blocks;
    expect(applied.map((a) => `${a.reference} ${a.action}`)).toEqual([
      'mta-ingest-source/twice created',
      'mta-ingest-lake/twice created',
      'mta-ingest-warehouse/twice created',
      'mta-ingest-container/twice created',
      'mta-ingest-worker/twice created',
    ]);
    const before = await documentsNamed('twice');
    expect(before.map((d) => [d.block_type.slug, d.data])).toEqual([
      ['mta-ingest-container', { image: IMAGE, pullPolicy: 'Always' }],
      ['mta-ingest-lake', { uri: lakeDir() }],
      ['mta-ingest-source', { url: source.baseUrl, fetchBackoffMs: 10 }],
      ['mta-ingest-warehouse', { uri: warehouseFile() }],
      ['mta-ingest-worker', { workDir: dir }],
    ]);

    const second = await cli(['blocks', 'apply', '--block', 'twice']);
    expect(
      second.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(/\s+/)[1]),
    ).toEqual(Array(5).fill('unchanged'));
    expect(await documentsNamed('twice')).toEqual(before);

    // The file changes: the lake moves, the container section goes.
    await writeFile(
      join(dir, 'blocks', 'twice.json'),
      JSON.stringify({ ...JSON.parse(blockFile()), lake: { uri: '/elsewhere' }, container: undefined }),
    );
    const third = await cli(['blocks', 'apply', '--block', 'twice', '--json']);
    expect(
      (JSON.parse(third.stdout) as { blocks: { action: string }[] }).blocks.map((a) => a.action),
    ).toEqual(['unchanged', 'updated', 'unchanged', 'deleted', 'unchanged']);
    const after = await documentsNamed('twice');
    expect(after.map((d) => d.block_type.slug)).toEqual([
      'mta-ingest-lake',
      'mta-ingest-source',
      'mta-ingest-warehouse',
      'mta-ingest-worker',
    ]);
    const lake = after.find((d) => d.block_type.slug === 'mta-ingest-lake')!;
    // Updated in place: the same document, new data.
    const lakeBefore = before.find((d) => d.block_type.slug === 'mta-ingest-lake')!;
    expect(lake).toMatchObject({ id: lakeBefore.id, data: { uri: '/elsewhere' } });
  });

  it("registers the project's block types with their JSON schemas", async () => {
    await cli(['blocks', 'apply', '--block', BLOCK]);
    for (const [section, required, properties] of [
      ['source', [], ['url', 'fetchTimeoutMs', 'fetchAttempts', 'fetchBackoffMs']],
      ['lake', ['uri'], ['uri', 'gcsEmulator']],
      ['warehouse', ['uri'], ['uri', 'bigqueryEmulator', 'lockWaitMs']],
      ['container', ['image'], ['image', 'pullPolicy', 'networkMode', 'volumes', 'env']],
      ['worker', [], ['workDir', 'catchUpWeeks']],
    ] as const) {
      const type = await prefect.api<{ id: string; name: string }>(
        'GET',
        `/block_types/slug/mta-ingest-${section}`,
      );
      expect(type.name).toMatch(/^MTA Ingest /);
      const schemas = await prefect.api<{ fields: { required: string[]; properties: object } }[]>(
        'POST',
        '/block_schemas/filter',
        { block_schemas: { block_type_id: { any_: [type.id] } } },
      );
      expect(schemas).toHaveLength(1);
      expect(schemas[0]!.fields.required).toEqual(required);
      expect(Object.keys(schemas[0]!.fields.properties)).toEqual(properties);
    }
  });

  it('a run with --block prefect:NAME uses its source, lake and warehouse', async () => {
    await rm(lakeDir(), { recursive: true, force: true });
    await rm(warehouseFile(), { force: true });
    expect((await cli(['blocks', 'apply', '--block', BLOCK])).code).toBe(0);
    // In an empty directory, with no flag for the source, lake or warehouse: all from Prefect.
    const run = await cli(
      ['run', '--date', '2023-06-03', '--block', `prefect:${BLOCK}`],
      { MTA_INGEST_NOW: '2023-06-05T16:00:00Z' },
      container,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^2023-06-03\s+loaded\s+253,237 rows/m);
    expect(await weeksInWarehouse()).toEqual([{ drop_date: '2023-06-03', n: REAL_WEEK_ROWS }]);
    expect(existsSync(join(lakeDir(), 'turnstile', '_manifests', 'drop_date=2023-06-03.json'))).toBe(true);
    expect(source.requestsFor('turnstile_230603.txt')).toHaveLength(1);

    // MTA_INGEST_BLOCK names it as well.
    const status = await cli(['status', '--json'], { MTA_INGEST_BLOCK: `prefect:${BLOCK}` }, container);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      weeks: [{ dropDate: '2023-06-03', warehouse: 'loaded' }],
    });
    const manifest = JSON.parse(
      await readFile(join(lakeDir(), 'turnstile', '_manifests', 'drop_date=2023-06-03.json'), 'utf8'),
    ) as { rows: number };
    expect(manifest.rows).toBe(REAL_WEEK_ROWS);
  });

  it('refuses a document edited in Prefect out of the format, and a block Prefect does not have', async () => {
    await writeFile(join(dir, 'blocks', 'edited.json'), blockFile());
    expect((await cli(['blocks', 'apply', '--block', 'edited'])).code).toBe(0);
    const lake = (await documentsNamed('edited')).find((d) => d.block_type.slug === 'mta-ingest-lake')!;
    await prefect.api('PATCH', `/block_documents/${lake.id}`, {
      data: { uri: 5 },
      merge_existing_data: false,
    });
    const edited = await cli(['status', '--block', 'prefect:edited'], {}, container);
    expect(edited.code).toBe(2);
    expect(edited.stderr.trim()).toBe(
      `mta-ingest: --block prefect:edited: Prefect's mta-ingest-lake/edited: "lake.uri" must be a non-empty string`,
    );

    const missing = await cli(['status', '--block', 'prefect:absent'], {}, container);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /--block prefect:absent: Prefect at http:\/\/127\.0\.0\.1:\d+\/api has no block documents named absent/,
    );

    const underscore = await cli(['blocks', 'apply', '--block', 'my_block']);
    expect(underscore.code).toBe(2);
    expect(underscore.stderr).toMatch(/lower-case letters, digits and - only \(Prefect refuses _\)/);
  });
});

describe('flow-run parameters, state messages and job variables (no server)', () => {
  const flags = { selection: {}, force: false };

  it('takes year, month, day and force from the flow run, and refuses the rest', () => {
    expect(choiceFromParameters({ year: 2023, month: 6, day: 3, force: true }, flags)).toEqual({
      selection: { year: '2023', month: '6', day: '3' },
      force: true,
    });
    // Prefect's UI sends null for an optional parameter left empty.
    expect(choiceFromParameters({ year: 2023, month: null }, flags)).toEqual({
      selection: { year: '2023' },
      force: false,
    });
    expect(choiceFromParameters({}, { selection: { date: '2023-06-03' }, force: true })).toEqual({
      selection: { date: '2023-06-03' },
      force: true,
    });
    expect(() => choiceFromParameters({ year: 2023.5 }, flags)).toThrow(/year 2023.5 is not a whole number/);
    expect(() => choiceFromParameters({ force: 'yes' }, flags)).toThrow(/force "yes" is not true or false/);
    expect(() => choiceFromParameters({ week: 1 }, flags)).toThrow(/parameter week is not one of/);
    expect(
      choiceFromParameters({ date: '2023-06-03', from: null, week_of: null, missing: true }, flags),
    ).toEqual({ selection: { date: '2023-06-03' }, force: false, missing: true });
    expect(choiceFromParameters({ from: '2023-05-06', to: '2023-06-03' }, flags)).toEqual({
      selection: { from: '2023-05-06', to: '2023-06-03' },
      force: false,
      missing: undefined,
    });
    expect(choiceFromParameters({ week_of: '2023-05-28' }, flags).selection).toEqual({
      weekOf: '2023-05-28',
    });
    expect(() => choiceFromParameters({ week_of: 20230528 }, flags)).toThrow(
      /week_of 20230528 is not a date/,
    );
    expect(() => choiceFromParameters({ missing: 'yes' }, flags)).toThrow(
      /missing "yes" is not true or false/,
    );
    expect(() =>
      choiceFromParameters({ year: 2023 }, { selection: { date: '2023-06-03' }, force: false }),
    ).toThrow(/both select drop dates/);
  });

  it('says in one line which weeks did not load and why, and escapes the markdown table', () => {
    const summary: RunSummary = {
      runId: 'r1',
      exitCode: 1,
      weeks: [
        {
          dropDate: '2023-06-03',
          outcome: 'loaded',
          sourceUrl: 'u',
          rows: 10,
          rejects: 0,
          bytes: 2e6,
          seconds: 1,
        },
        {
          dropDate: '2023-06-10',
          outcome: 'failed',
          sourceUrl: 'u',
          bytes: 0,
          seconds: 0.5,
          detail: 'a | b\nc',
          advice: 'retry',
        },
      ],
    };
    expect(stateMessage(summary, false)).toBe(
      '2 weeks: 1 loaded, 1 failed (10 rows loaded); 2023-06-10 failed: a | b c',
    );
    expect(stateMessage({ ...summary, weeks: [] }, true)).toBe('interrupted after 0 weeks');
    expect(weekSummaryMarkdown(summary)).toContain(
      '| 2023-06-10 | failed | - | - | 0.0 MB | 0.5 | a \\| b c → retry |',
    );
    const long = { ...summary, weeks: Array(50).fill(summary.weeks[1]) as RunSummary['weeks'] };
    expect(stateMessage(long, false).length).toBe(1000);
  });

  it("puts the container section's network mode, volumes and env into the job variables, checked", () => {
    const block = validateBlock(
      'host',
      {
        container: {
          image: 'i:2',
          networkMode: 'host',
          volumes: ['/srv/mta:/work/data', '/etc/ssl/certs:/certs:ro'],
          env: { TZ: 'UTC' },
        },
      },
      'blocks/host.json',
    );
    expect(jobVariables({ command: 'run' }, { block: 'host', container: block.container! })).toEqual({
      command: 'run',
      image: 'i:2',
      image_pull_policy: 'IfNotPresent',
      network_mode: 'host',
      volumes: ['/srv/mta:/work/data', '/etc/ssl/certs:/certs:ro'],
      env: { TZ: 'UTC' },
    });
    const refused = (container: Record<string, unknown>): string => {
      try {
        validateBlock('host', { container: { image: 'i:2', ...container } }, 'blocks/host.json');
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(refused({ volumes: '/srv:/work/data' })).toMatch(/"container.volumes" must be a list of strings/);
    expect(refused({ volumes: ['relative'] })).toMatch(/"container.volumes\[0\]" "relative" is not valid/);
    expect(refused({ env: { API_TOKEN: 'x' } })).toMatch(/"container.env.API_TOKEN" looks like a secret/);
    expect(refused({ env: { 'A B': 'x' } })).toMatch(/"container.env" name "A B" is not valid/);
    expect(refused({ env: { TZ: 5 } })).toMatch(/"container.env.TZ" must be a string/);
    expect(refused({ networkMode: 'host; rm' })).toMatch(/"container.networkMode" "host; rm" is not valid/);
  });

  it('fills the image, pull policy and block into the job variables', () => {
    expect(
      jobVariables(
        { command: 'run --block prefect:{block}', env: { A: '1' } },
        { block: 'prod', container: { image: 'i:2', pullPolicy: 'Never' } },
      ),
    ).toEqual({
      command: 'run --block prefect:prod',
      env: { A: '1' },
      image: 'i:2',
      image_pull_policy: 'Never',
    });
  });
});

/**
 * A proxy in front of the Prefect API that records each request's Authorization header and
 * answers 500 to the requests `fail` picks, forwarding the others.
 */
async function startRecordingProxy(
  apiUrl: string,
  fail: (method: string, url: string) => boolean,
): Promise<{ apiUrl: string; requests: { url: string; authorization?: string }[]; close(): Promise<void> }> {
  const origin = new URL(apiUrl).origin;
  const requests: { url: string; authorization?: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const method = req.method ?? 'GET';
      const url = req.url ?? '/';
      requests.push({ url, authorization: req.headers.authorization });
      if (fail(method, url)) {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"detail":"injected failure"}');
        return;
      }
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'x-prefect-api-version']) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      fetch(`${origin}${url}`, { method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined })
        .then(async (upstream) => {
          const body = Buffer.from(await upstream.arrayBuffer());
          res.writeHead(upstream.status, {
            'content-type': upstream.headers.get('content-type') ?? 'text/plain',
          });
          res.end(body);
        })
        .catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    apiUrl: `http://127.0.0.1:${port}${new URL(apiUrl).pathname}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
