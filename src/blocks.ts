/**
 * Named configuration blocks: small JSON documents in `blocks/` (the working directory's, then
 * the package's) that hold a deployment's settings, so a scheduler passes `--block gcp-prod`
 * instead of every flag. Blocks rank below flags and environment variables and above defaults.
 *
 * A block never holds a secret: a key that looks like one is refused, and Google credentials
 * come from Application Default Credentials only.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.ts';
import type { ConfigFlags } from './config.ts';

/** Settings a block may set: the same as the flags, by the same names. */
export const BLOCK_SETTINGS = [
  'sourceUrl',
  'lake',
  'warehouse',
  'workDir',
  'fetchTimeoutMs',
  'fetchAttempts',
  'fetchBackoffMs',
  'gcsEmulator',
  'bigqueryEmulator',
] as const satisfies readonly (keyof ConfigFlags)[];

export type ConfigBlock = Partial<Record<(typeof BLOCK_SETTINGS)[number], string>>;

const PACKAGE_BLOCKS = fileURLToPath(new URL('../blocks/', import.meta.url));
const SECRET_LIKE = /key|secret|token|password|credential|private/i;

/** Where a block named `name` is looked for, in order. */
export function blockPaths(name: string, cwd = process.cwd()): string[] {
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name)) {
    throw new UsageError(
      `--block ${name}: a block name is lower-case letters, digits, - and _ (a file in blocks/)`,
    );
  }
  return [join(cwd, 'blocks', `${name}.json`), join(PACKAGE_BLOCKS, `${name}.json`)];
}

export async function loadBlock(name: string, cwd = process.cwd()): Promise<ConfigBlock> {
  const paths = blockPaths(name, cwd);
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new UsageError(`--block ${name}: cannot read ${path}: ${(error as Error).message}`);
    }
    return parseBlock(name, text, path);
  }
  throw new UsageError(`--block ${name}: no block of that name (looked for ${paths.join(' and ')})`);
}

export function parseBlock(name: string, text: string, where: string): ConfigBlock {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`--block ${name}: ${where} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`--block ${name}: ${where} must hold a JSON object`);
  }
  const block: ConfigBlock = {};
  for (const [key, setting] of Object.entries(value)) {
    if (key === 'description' || key === '$schema') continue;
    if (SECRET_LIKE.test(key)) {
      throw new UsageError(
        `--block ${name}: "${key}" looks like a secret; blocks never hold secrets (Google credentials come from Application Default Credentials)`,
      );
    }
    if (!(BLOCK_SETTINGS as readonly string[]).includes(key)) {
      throw new UsageError(`--block ${name}: unknown setting "${key}" (known: ${BLOCK_SETTINGS.join(', ')})`);
    }
    if (typeof setting !== 'string' && typeof setting !== 'number') {
      throw new UsageError(`--block ${name}: "${key}" must be a string or a number`);
    }
    block[key as keyof ConfigBlock] = String(setting);
  }
  return block;
}
