/**
 * `mta-ingest deploy prefect`: registers the flow, the docker work pool and the deployments in a
 * Prefect server, through its REST API, idempotently: running it again updates the same records,
 * so a server always holds one flow `mta-ingest`, one pool and one deployment per definition.
 *
 * What is registered is data, not code: `deployments/prefect/` (shipped with the package) holds
 * the flow, the work pool (with the docker worker's base job template) and one
 * `deployment-<name>.json` per deployment, in the shapes of Prefect's API. This module adds what
 * depends on the target: the flow's id, the pool's name, the block's container section (image,
 * pull policy, and the network mode, volumes and environment a container needs on its host) as
 * the deployments' job variables, and the block the container reads its settings from (`{block}`
 * in a job variable).
 *
 * Deploying again brings everything to what the definitions and the block say: a deployment's
 * job variables are replaced (a setting removed from the block is removed from the deployment),
 * and a work pool that exists with another base job template is given the project's (reported
 * `updated`; `exists` when it already had it). A pool that is not a docker pool is refused.
 */
import { readdir, readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContainerSection } from '../blocks.ts';
import { MtaIngestError, UsageError } from '../errors.ts';
import { TOOL } from '../tool.ts';
import type { PrefectClient } from './prefect-client.ts';

export const DEFINITIONS_DIR = fileURLToPath(new URL('../../deployments/prefect/', import.meta.url));

export interface FlowDefinition {
  name: string;
  tags?: string[];
}

export interface WorkPoolDefinition {
  name: string;
  type: string;
  description?: string;
  base_job_template: Record<string, unknown>;
}

/** A deployment as Prefect's POST /deployments/ takes it, less what deployPrefect fills in. */
export interface DeploymentDefinition {
  name: string;
  description?: string;
  tags?: string[];
  schedules: unknown[];
  parameters: Record<string, unknown>;
  parameter_openapi_schema: Record<string, unknown>;
  enforce_parameter_schema: boolean;
  job_variables: Record<string, unknown>;
}

export interface Definitions {
  flow: FlowDefinition;
  workPool: WorkPoolDefinition;
  deployments: DeploymentDefinition[];
}

/** Reads and checks the definition files (a broken file is the package's fault: exit 1). */
export async function readDefinitions(dir = DEFINITIONS_DIR): Promise<Definitions> {
  const read = async (file: string): Promise<Record<string, unknown>> => {
    const path = join(dir, file);
    let value: unknown;
    try {
      value = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      throw new MtaIngestError(`cannot read the Prefect definition ${path}: ${(error as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new MtaIngestError(`${path} must hold a JSON object`);
    }
    const record = value as Record<string, unknown>;
    if (typeof record.name !== 'string' || record.name === '') {
      throw new MtaIngestError(`${path} must have a "name"`);
    }
    return record;
  };
  const expect = (path: string, record: Record<string, unknown>, key: string, type: string): void => {
    const actual = Array.isArray(record[key]) ? 'array' : typeof record[key];
    if (actual !== type) throw new MtaIngestError(`${join(dir, path)}: "${key}" must be ${type}`);
  };

  const flow = await read('flow.json');
  const workPool = await read('work-pool.json');
  expect('work-pool.json', workPool, 'type', 'string');
  expect('work-pool.json', workPool, 'base_job_template', 'object');
  const files = (await readdir(dir)).filter((f) => /^deployment-[a-z0-9-]+\.json$/.test(f)).sort();
  if (files.length === 0) throw new MtaIngestError(`${dir} holds no deployment-<name>.json`);
  const deployments: DeploymentDefinition[] = [];
  for (const file of files) {
    const deployment = await read(file);
    expect(file, deployment, 'schedules', 'array');
    expect(file, deployment, 'parameters', 'object');
    expect(file, deployment, 'parameter_openapi_schema', 'object');
    expect(file, deployment, 'enforce_parameter_schema', 'boolean');
    expect(file, deployment, 'job_variables', 'object');
    deployments.push(deployment as unknown as DeploymentDefinition);
  }
  return {
    flow: flow as unknown as FlowDefinition,
    workPool: workPool as unknown as WorkPoolDefinition,
    deployments,
  };
}

export interface DeployTarget {
  /** The block the container reads its settings from, in Prefect (`--block prefect:<block>`). */
  block: string;
  container: ContainerSection;
  /** Overrides the pool name of work-pool.json. */
  workPool?: string | undefined;
}

export interface DeployResult {
  flow: { id: string; name: string; action: 'created' | 'exists' };
  workPool: { name: string; type: string; action: 'created' | 'updated' | 'exists' };
  deployments: { id: string; name: string; action: 'created' | 'updated' }[];
}

interface IdRecord {
  id: string;
}

export async function deployPrefect(
  client: PrefectClient,
  target: DeployTarget,
  definitions: Definitions,
): Promise<DeployResult> {
  const flowAnswer = await client.post<IdRecord>('/flows/', {
    name: definitions.flow.name,
    tags: definitions.flow.tags ?? [],
  });
  const flow = {
    id: flowAnswer.body.id,
    name: definitions.flow.name,
    action: flowAnswer.status === 201 ? ('created' as const) : ('exists' as const),
  };

  const poolName = target.workPool ?? definitions.workPool.name;
  const workPool = await ensureWorkPool(client, { ...definitions.workPool, name: poolName });

  const deployments: DeployResult['deployments'] = [];
  for (const definition of definitions.deployments) {
    // POST /deployments/ is an upsert on (flow, name): the same id comes back, schedules replaced.
    const answer = await client.post<IdRecord>('/deployments/', {
      ...definition,
      flow_id: flow.id,
      work_pool_name: poolName,
      version: TOOL.version,
      paused: false,
      job_variables: jobVariables(definition.job_variables, target),
    });
    deployments.push({
      id: answer.body.id,
      name: definition.name,
      action: answer.status === 201 ? 'created' : 'updated',
    });
  }
  return { flow, workPool, deployments };
}

async function ensureWorkPool(
  client: PrefectClient,
  pool: WorkPoolDefinition,
): Promise<DeployResult['workPool']> {
  const path = `/work_pools/${encodeURIComponent(pool.name)}`;
  const found = await client.get<{ type: string; base_job_template?: unknown; description?: string | null }>(
    path,
    [200, 404],
  );
  if (found.status === 200) {
    if (found.body.type !== pool.type) {
      throw new UsageError(
        `work pool ${pool.name} exists in Prefect with type ${found.body.type}, not ${pool.type}: pass --work-pool with another name`,
      );
    }
    if (
      isDeepStrictEqual(found.body.base_job_template, pool.base_job_template) &&
      (pool.description === undefined || found.body.description === pool.description)
    ) {
      return { name: pool.name, type: pool.type, action: 'exists' };
    }
    await client.patch(path, { base_job_template: pool.base_job_template, description: pool.description });
    return { name: pool.name, type: pool.type, action: 'updated' };
  }
  // 409: created by someone else between the two requests; it is there, which is what counts.
  const created = await client.post('/work_pools/', pool, [200, 201, 409]);
  return { name: pool.name, type: pool.type, action: created.status === 409 ? 'exists' : 'created' };
}

/**
 * The definition's job variables with `{block}` filled, and the container section's: image, pull
 * policy, and network_mode, volumes and env when the block sets them (the docker worker's names).
 */
export function jobVariables(
  template: Record<string, unknown>,
  target: Pick<DeployTarget, 'block' | 'container'>,
): Record<string, unknown> {
  const filled: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(template)) {
    filled[key] = typeof value === 'string' ? value.replaceAll('{block}', target.block) : value;
  }
  const { container } = target;
  return {
    ...filled,
    image: container.image,
    image_pull_policy: container.pullPolicy,
    ...(container.networkMode === undefined ? {} : { network_mode: container.networkMode }),
    ...(container.volumes === undefined ? {} : { volumes: [...container.volumes] }),
    ...(container.env === undefined ? {} : { env: { ...container.env } }),
  };
}
