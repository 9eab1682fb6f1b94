/**
 * `mta-ingest blocks apply`: puts blocks (files in blocks/) into a Prefect server as block
 * documents of the project's block types (src/prefect/prefect-blocks.ts), so that a worker in a
 * container, which has no blocks/ folder of the operator's, reads them with `--block prefect:NAME`.
 * With no names, every block file (the working directory's and the package's) is applied.
 *
 * Every block is read and checked before the first request: a bad file changes nothing.
 */
import { PREFECT_BLOCK_PREFIX, listBlockNames, type BlockDocument } from '../blocks.ts';
import { loadBlockDocument } from '../block-sources.ts';
import { UsageError } from '../errors.ts';
import type { PrefectClient } from '../prefect/prefect-client.ts';
import {
  applyBlock,
  applyBlockTypes,
  checkPrefectBlockName,
  type AppliedDocument,
} from '../prefect/prefect-blocks.ts';

export async function blocksApplyCommand(options: {
  names: readonly string[];
  client: PrefectClient;
  cwd?: string;
}): Promise<AppliedDocument[]> {
  const cwd = options.cwd ?? process.cwd();
  const names = options.names.length > 0 ? [...new Set(options.names)] : await listBlockNames(cwd);
  if (names.length === 0) throw new UsageError('no block to apply: blocks/ holds no <name>.json');
  const blocks: [string, BlockDocument][] = [];
  for (const name of names) {
    if (name.startsWith(PREFECT_BLOCK_PREFIX)) {
      throw new UsageError(
        `--block ${name}: blocks apply takes block files (blocks/<name>.json), not prefect: blocks`,
      );
    }
    checkPrefectBlockName(name);
    blocks.push([name, await loadBlockDocument(name, cwd, {})]);
  }
  const types = await applyBlockTypes(options.client);
  const applied: AppliedDocument[] = [];
  for (const [name, block] of blocks) applied.push(...(await applyBlock(options.client, name, block, types)));
  return applied;
}
