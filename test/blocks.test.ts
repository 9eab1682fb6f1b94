import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BLOCK_SETTINGS, loadBlock, parseBlock } from '../src/blocks.ts';
import { resolveConfig, ENV, DEFAULT_LAKE } from '../src/config.ts';
import { UsageError } from '../src/errors.ts';

let cwd: string;
beforeEach(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'blocks-'));
  await mkdir(join(cwd, 'blocks'));
});
afterEach(() => rm(cwd, { recursive: true, force: true }));

describe('blocks', () => {
  it("loads a block from the working directory's blocks/, then the package's", async () => {
    await writeFile(
      join(cwd, 'blocks', 'prod.json'),
      JSON.stringify({ lake: 'gs://b/p', warehouse: 'bigquery://proj-1/ds' }),
    );
    expect(await loadBlock('prod', cwd)).toEqual({ lake: 'gs://b/p', warehouse: 'bigquery://proj-1/ds' });
    // The package ships blocks/local.json and blocks/gcp-example.json.
    expect(await loadBlock('local', cwd)).toEqual({
      lake: './data/lake',
      warehouse: './data/warehouse.duckdb',
    });
    expect((await loadBlock('gcp-example', cwd)).lake).toMatch(/^gs:\/\//);
  });

  it('ranks below flags and environment variables, above defaults', () => {
    const block = { lake: 'gs://from-block/p', fetchAttempts: '7' };
    expect(resolveConfig({}, {}, block).lake).toBe('gs://from-block/p');
    expect(resolveConfig({}, { [ENV.lake]: '/from-env' }, block).lake).toBe('/from-env');
    expect(resolveConfig({ lake: '/from-flag' }, { [ENV.lake]: '/from-env' }, block).lake).toBe('/from-flag');
    expect(resolveConfig({}, {}, {}).lake).toBe(DEFAULT_LAKE);
    expect(resolveConfig({}, {}, block).fetch.attempts).toBe(7);
    expect(() => resolveConfig({}, {}, { fetchAttempts: 'x' })).toThrow(/the block's fetchAttempts x/);
  });

  it.each([['../etc/passwd'], ['Prod'], ['a/b'], ['']])('refuses the name %j', async (name) => {
    await expect(loadBlock(name, cwd)).rejects.toThrow(UsageError);
  });

  it('says where it looked for a missing block', async () => {
    await expect(loadBlock('nope', cwd)).rejects.toThrow(
      /no block of that name \(looked for .*blocks\/nope\.json and .*blocks\/nope\.json\)/,
    );
  });

  it('refuses secrets, unknown settings, non-objects and bad JSON, in one line', () => {
    for (const [text, message] of [
      ['{"lake":"x","privateKey":"-----BEGIN"}', /looks like a secret/],
      ['{"serviceAccountCredentials":"{}"}', /looks like a secret/],
      ['{"lakee":"x"}', /unknown setting "lakee"/],
      ['["x"]', /must hold a JSON object/],
      ['{"lake": {"a": 1}}', /must be a string or a number/],
      ['{lake:', /not valid JSON/],
    ] as const) {
      expect(() => parseBlock('b', text, 'blocks/b.json')).toThrow(message);
      try {
        parseBlock('b', text, 'blocks/b.json');
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        expect((error as Error).message).not.toContain('\n');
      }
    }
    expect(parseBlock('b', '{"description":"d","fetchAttempts":3}', 'x')).toEqual({ fetchAttempts: '3' });
    expect(BLOCK_SETTINGS).toContain('warehouse');
  });
});
