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
  isBlockPath,
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

/**
 * A block by reference, flattened, with where it came from as messages name it (`block NAME
 * (its file)` or `Prefect block prefect:NAME`): resolveConfig's last two arguments.
 */
export async function loadBlockWithOrigin(
  ref: string,
  cwd: string,
  env: Record<string, string | undefined>,
): Promise<{ settings: ConfigBlock; origin: string }> {
  const { document, origin } = await locateBlock(ref, cwd, env);
  return { settings: flattenBlock(document), origin };
}

/** A block by reference, by section (the container section included). */
export async function loadBlockDocument(
  ref: string,
  cwd = process.cwd(),
  env: Record<string, string | undefined> = process.env,
): Promise<BlockDocument> {
  return (await locateBlock(ref, cwd, env)).document;
}

async function locateBlock(
  ref: string,
  cwd: string,
  env: Record<string, string | undefined>,
): Promise<{ document: BlockDocument; origin: string }> {
  if (ref.startsWith(PREFECT_BLOCK_PREFIX)) {
    // Loaded only when asked for: a run from a file block never loads the Prefect client.
    const { loadPrefectBlock } = await import('./prefect/prefect-blocks.ts');
    return {
      document: await loadPrefectBlock(ref.slice(PREFECT_BLOCK_PREFIX.length), env),
      origin: `Prefect block ${ref}`,
    };
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
    return { document: parseBlockDocument(ref, text, path), origin: `block ${ref} (${path})` };
  }
  if (isBlockPath(ref)) throw new UsageError(`--block ${ref}: no such file (${paths.join('')})`);
  throw new UsageError(`--block ${ref}: no block of that name (looked for ${paths.join(' and ')})`);
}
