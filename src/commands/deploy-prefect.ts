/**
 * `mta-ingest deploy prefect --block NAME`: the flow, the docker work pool and the deployments
 * (deployments/prefect/) in a Prefect server. The block is read from Prefect itself, where the
 * container will read it at run time (`run --block prefect:NAME`), so a deployment never names
 * a block its runs cannot find; its container section gives the image and pull policy.
 */
import { PREFECT_BLOCK_PREFIX } from '../blocks.ts';
import { UsageError } from '../errors.ts';
import type { PrefectClient } from '../prefect/prefect-client.ts';
import { readPrefectBlock } from '../prefect/prefect-blocks.ts';
import { deployPrefect, readDefinitions, type DeployResult } from '../prefect/prefect-deploy.ts';

export async function deployPrefectCommand(options: {
  block: string;
  workPool?: string | undefined;
  client: PrefectClient;
}): Promise<DeployResult> {
  const name = options.block.startsWith(PREFECT_BLOCK_PREFIX)
    ? options.block.slice(PREFECT_BLOCK_PREFIX.length)
    : options.block;
  if (options.workPool !== undefined && !/^[^/%&><\s]+$/.test(options.workPool)) {
    throw new UsageError(`--work-pool ${options.workPool}: a work pool name has no spaces, /, %, &, < or >`);
  }
  const definitions = await readDefinitions();
  const block = await readPrefectBlock(options.client, name);
  if (block.container === undefined) {
    throw new UsageError(
      `--block ${name}: the block has no container section (image, pullPolicy) to run in the work pool; add one and run mta-ingest blocks apply --block ${name}`,
    );
  }
  return deployPrefect(
    options.client,
    { block: name, container: block.container, workPool: options.workPool },
    definitions,
  );
}
