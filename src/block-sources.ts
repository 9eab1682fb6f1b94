/**
 * Where a block comes from: a file (`blocks/<name>.json`, blocks.ts) or a Prefect server
 * (`prefect:<name>`, prefect/prefect-blocks.ts). The one place that knows both, so that the
 * block format and the Prefect client do not import each other.
 */
import { readFile } from 'node:fs/promises';
import { UsageError } from './errors.ts';
import {
  PREFECT_BLOCK_PREFIX,
  blockPaths,
  flattenBlock,
  parseBlockDocument,
  type BlockDocument,
  type ConfigBlock,
} from './blocks.ts';

/** A block by reference, flattened for resolveConfig: `NAME` (a file) or `prefect:NAME`. */
export async function loadBlock(
  ref: string,
  cwd = process.cwd(),
  env: Record<string, string | undefined> = process.env,
): Promise<ConfigBlock> {
  return flattenBlock(await loadBlockDocument(ref, cwd, env));
}

/** A block by reference, by section (the container section included). */
export async function loadBlockDocument(
  ref: string,
  cwd = process.cwd(),
  env: Record<string, string | undefined> = process.env,
): Promise<BlockDocument> {
  if (ref.startsWith(PREFECT_BLOCK_PREFIX)) {
    // Loaded only when asked for: a run from a file block never loads the Prefect client.
    const { loadPrefectBlock } = await import('./prefect/prefect-blocks.ts');
    return loadPrefectBlock(ref.slice(PREFECT_BLOCK_PREFIX.length), env);
  }
  const paths = blockPaths(ref, cwd);
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new UsageError(`--block ${ref}: cannot read ${path}: ${(error as Error).message}`);
    }
    return parseBlockDocument(ref, text, path);
  }
  throw new UsageError(`--block ${ref}: no block of that name (looked for ${paths.join(' and ')})`);
}
