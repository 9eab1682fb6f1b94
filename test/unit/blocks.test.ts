import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BLOCK_SECTIONS,
  BLOCK_SETTINGS,
  SECTION_NAMES,
  flattenBlock,
  listBlockNames,
  parseBlock,
  parseBlockDocument,
  sectionJsonSchema,
} from '../../src/blocks.ts';
import { loadBlock, loadBlockDocument } from '../../src/block-sources.ts';
import { resolveConfig, ENV, DEFAULT_LAKE } from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';
import { main } from '../../src/cli.ts';

const PACKAGE_BLOCKS = fileURLToPath(new URL('../../blocks/', import.meta.url));

let cwd: string;
beforeEach(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'blocks-'));
  await mkdir(join(cwd, 'blocks'));
});
afterEach(() => rm(cwd, { recursive: true, force: true }));

/** The message parseBlock throws for `block`, checked to be a one-line UsageError. */
function refusal(block: unknown): string {
  try {
    parseBlock('b', typeof block === 'string' ? block : JSON.stringify(block), 'blocks/b.json');
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toMatch(/^--block b: blocks\/b\.json: /);
    return message;
  }
  throw new Error(`accepted ${JSON.stringify(block)}`);
}

describe('blocks', () => {
  it("loads a block from the working directory's blocks/, then the package's, flattened by the flags' names", async () => {
    await writeFile(
      join(cwd, 'blocks', 'prod.json'),
      JSON.stringify({ lake: { uri: 'gs://b/p' }, warehouse: { uri: 'bigquery://proj-1/ds' } }),
    );
    expect(await loadBlock('prod', cwd)).toEqual({ lake: 'gs://b/p', warehouse: 'bigquery://proj-1/ds' });
    // The package ships blocks/local.json and blocks/gcp-example.json.
    expect(await loadBlock('local', cwd)).toEqual({
      lake: './data/lake',
      warehouse: './data/warehouse.duckdb',
    });
    expect(await loadBlock('gcp-example', cwd)).toEqual({
      sourceUrl: 'http://web.mta.info/developers/data/nyct/turnstile',
      fetchTimeoutMs: '60000',
      fetchAttempts: '5',
      fetchBackoffMs: '1000',
      lake: 'gs://YOUR-BUCKET/mta-ingest',
      warehouse: 'bigquery://YOUR-PROJECT/mta?location=US',
      workDir: '/tmp',
    });
    // The container section is not a run setting: it is kept in the document, for deploy prefect.
    expect((await loadBlockDocument('gcp-example', cwd)).container).toEqual({
      image: 'mtaingest/mta-ingest:0.1.0',
      pullPolicy: 'IfNotPresent',
    });
    // The working directory's block wins over the package's of the same name.
    await writeFile(join(cwd, 'blocks', 'local.json'), JSON.stringify({ lake: { uri: '/mine' } }));
    expect(await loadBlock('local', cwd)).toEqual({ lake: '/mine' });
    expect(await listBlockNames(cwd)).toEqual(['gcp-example', 'local', 'prod']);
  });

  it('flattens every section setting into the flag it stands for, as resolveConfig reads it', () => {
    const block = parseBlockDocument(
      'all',
      JSON.stringify({
        description: 'every setting',
        source: { url: 'https://mirror.example/t', fetchTimeoutMs: 10, fetchAttempts: 2, fetchBackoffMs: 0 },
        lake: { uri: 'gs://bkt/p', gcsEmulator: 'http://127.0.0.1:1' },
        warehouse: { uri: 'bigquery://proj-1/d', bigqueryEmulator: 'http://127.0.0.1:2', lockWaitMs: 5000 },
        container: { image: 'img:1', pullPolicy: 'Never' },
        worker: { workDir: '/scratch', catchUpWeeks: 26 },
      }),
      'x',
    );
    const flat = flattenBlock(block);
    expect(Object.keys(flat).sort()).toEqual([...BLOCK_SETTINGS].sort());
    const config = resolveConfig({}, {}, flat);
    expect(config).toMatchObject({
      sourceUrl: 'https://mirror.example/t',
      lake: 'gs://bkt/p',
      warehouse: 'bigquery://proj-1/d',
      workDir: '/scratch',
      gcsEmulator: 'http://127.0.0.1:1',
      bigqueryEmulator: 'http://127.0.0.1:2',
      lockWaitMs: 5000,
      catchUpWeeks: 26,
      fetch: { timeoutMs: 10, attempts: 2, backoffMs: 0 },
    });
    expect(block.container).toEqual({ image: 'img:1', pullPolicy: 'Never' });
    expect(block.description).toBe('every setting');
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

  it.each([['../etc/passwd'], ['Prod'], ['a/b'], [''], ['prefect']])('refuses the name %j', async (name) => {
    await expect(loadBlock(name, cwd)).rejects.toThrow(UsageError);
  });

  it('needs PREFECT_API_URL for a prefect: block', async () => {
    await expect(loadBlock('prefect:prod', cwd, {})).rejects.toThrow(/set PREFECT_API_URL/);
    await expect(loadBlock('prefect:prod_1', cwd, { PREFECT_API_URL: 'http://x/api' })).rejects.toThrow(
      /lower-case letters, digits and - only/,
    );
  });

  it('takes a path to a block file as well as a name (a path ends in .json; a name has no dot)', async () => {
    const elsewhere = join(cwd, 'etc');
    await mkdir(elsewhere, { recursive: true });
    await writeFile(join(elsewhere, 'prod.json'), JSON.stringify({ lake: { uri: 'gs://bkt/from-path' } }));
    expect(await loadBlock(join(elsewhere, 'prod.json'), cwd)).toEqual({ lake: 'gs://bkt/from-path' });
    expect(await loadBlock('./etc/prod.json', cwd)).toEqual({ lake: 'gs://bkt/from-path' });
    await expect(loadBlock('./etc/none.json', cwd)).rejects.toThrow(
      new UsageError(`--block ./etc/none.json: no such file (${join(elsewhere, 'none.json')})`),
    );
    // Through the command line, relative to where it runs: plan shows the block's lake.
    await writeFile(
      join(elsewhere, 'local.json'),
      JSON.stringify({ lake: { uri: join(cwd, 'lake-from-path') } }),
    );
    const out: string[] = [];
    const err: string[] = [];
    const io = {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t) },
    };
    const code = await main(['plan', '--date', '2023-06-03', '--block', 'etc/local.json'], {
      ...io,
      env: { MTA_INGEST_NOW: '2023-06-05T16:00:00Z' },
      cwd,
    });
    expect(code, err.join('')).toBe(0);
    expect(out.join('')).toContain(join(cwd, 'lake-from-path'));
  });

  it('says where it looked for a missing block', async () => {
    await expect(loadBlock('nope', cwd)).rejects.toThrow(
      /no block of that name \(looked for .*blocks\/nope\.json and .*blocks\/nope\.json\)/,
    );
  });

  it('refuses secrets, anywhere, in one line', () => {
    expect(refusal({ lake: { uri: 'x' }, privateKey: '-----BEGIN' })).toMatch(
      /"privateKey" looks like a secret/,
    );
    expect(refusal({ serviceAccountCredentials: '{}' })).toMatch(/looks like a secret/);
    expect(refusal({ lake: { uri: 'x', accessToken: 't' } })).toMatch(
      /"lake.accessToken" looks like a secret/,
    );
    expect(refusal({ container: { image: 'i', registryPassword: 'p' } })).toMatch(/looks like a secret/);
  });

  it('refuses unknown sections and settings, naming the known ones', () => {
    expect(refusal({ lakee: { uri: 'x' } })).toMatch(
      /unknown section "lakee" \(known: source, lake, warehouse, container, worker\)$/,
    );
    expect(refusal({ lake: { uri: 'x', url: 'y' } })).toMatch(
      /unknown setting "lake.url" \(known: uri, gcsEmulator\)/,
    );
    // The flat format of earlier versions is refused with the way to write it now.
    expect(refusal({ sourceUrl: 'http://x' })).toMatch(
      /unknown section "sourceUrl".*blocks hold sections now/,
    );
    expect(refusal({ lake: 'gs://b/p' })).toMatch(
      /"lake" must be an object \(a section\), e.g. \{"lake": \{"uri"/,
    );
  });

  it('refuses wrong types and values', () => {
    expect(refusal({ source: { fetchAttempts: '5' } })).toMatch(
      /"source.fetchAttempts" must be a whole number/,
    );
    expect(refusal({ source: { fetchTimeoutMs: 1.5 } })).toMatch(
      /"source.fetchTimeoutMs" must be a whole number/,
    );
    expect(refusal({ source: { fetchAttempts: 0 } })).toMatch(/"source.fetchAttempts" must be at least 1/);
    expect(refusal({ source: { fetchBackoffMs: -1 } })).toMatch(/at least 0/);
    expect(refusal({ source: { fetchTimeoutMs: 1e10 } })).toMatch(/at most 999999999/);
    expect(refusal({ source: { url: 'ftp://x/y' } })).toMatch(
      /"source.url" "ftp:\/\/x\/y" is not an http\(s\) URL/,
    );
    expect(refusal({ lake: { uri: 5 } })).toMatch(/"lake.uri" must be a non-empty string/);
    expect(refusal({ lake: { uri: ' ' } })).toMatch(/"lake.uri" must be a non-empty string/);
    expect(refusal({ lake: { gcsEmulator: 'http://x' } })).toMatch(
      /"lake.uri" is required in the lake section/,
    );
    expect(refusal({ warehouse: {} })).toMatch(/"warehouse.uri" is required/);
    expect(refusal({ container: { pullPolicy: 'Always' } })).toMatch(/"container.image" is required/);
    expect(refusal({ container: { image: 'i', pullPolicy: 'Sometimes' } })).toMatch(
      /"container.pullPolicy" "Sometimes" is not one of Always, IfNotPresent, Never/,
    );
    expect(refusal({ container: { image: 'has space' } })).toMatch(
      /"container.image" "has space" is not valid/,
    );
    expect(refusal({ description: 3 })).toMatch(/"description" must be a string/);
    expect(refusal({ worker: ['x'] })).toMatch(/"worker" must be an object/);
    expect(refusal('["x"]')).toMatch(/must hold a JSON object/);
    expect(() => parseBlock('b', '{lake:', 'blocks/b.json')).toThrow(
      /--block b: blocks\/b\.json is not valid JSON/,
    );
  });

  it('fills in the pull policy, and only that: other defaults are left to the configuration', () => {
    const block = parseBlockDocument('b', '{"container":{"image":"i:1"},"source":{"url":"http://x"}}', 'x');
    expect(block.container).toEqual({ image: 'i:1', pullPolicy: 'IfNotPresent' });
    expect(block.source).toEqual({ url: 'http://x' });
    expect(parseBlock('b', '{"description":"d","source":{"fetchAttempts":3}}', 'x')).toEqual({
      fetchAttempts: '3',
    });
    expect(parseBlock('b', '{"$schema":"./s.json"}', 'x')).toEqual({});
  });

  it('describes each section with a JSON schema that says what the validator enforces', () => {
    for (const section of SECTION_NAMES) {
      const schema = sectionJsonSchema(section, `mta-ingest-${section}`) as {
        properties: Record<string, { type: string; enum?: string[]; minimum?: number }>;
        required: string[];
        additionalProperties: boolean;
        block_type_slug: string;
        secret_fields: string[];
      };
      expect(Object.keys(schema.properties)).toEqual(Object.keys(BLOCK_SECTIONS[section].fields));
      expect(schema.additionalProperties).toBe(false);
      expect(schema.block_type_slug).toBe(`mta-ingest-${section}`);
      expect(schema.secret_fields).toEqual([]);
      for (const [key, property] of Object.entries(schema.properties)) {
        // A required field, left out, is refused; a wrong type is refused.
        if (schema.required.includes(key)) {
          expect(() => parseBlock('b', JSON.stringify({ [section]: {} }), 'x')).toThrow(
            `"${section}.${key}" is required`,
          );
        }
        const wrong = property.type === 'integer' ? 'x' : 7;
        const base = Object.fromEntries(schema.required.map((r) => [r, 'v']));
        expect(() => parseBlock('b', JSON.stringify({ [section]: { ...base, [key]: wrong } }), 'x')).toThrow(
          new RegExp(`"${section}.${key}" must be`),
        );
      }
    }
    const container = sectionJsonSchema('container', 'mta-ingest-container') as {
      properties: { pullPolicy: { enum: string[]; default: string } };
      required: string[];
    };
    expect(container.properties.pullPolicy).toMatchObject({
      enum: ['Always', 'IfNotPresent', 'Never'],
      default: 'IfNotPresent',
    });
    expect(container.required).toEqual(['image']);
  });

  it('ships only valid blocks', async () => {
    const files = (await readdir(PACKAGE_BLOCKS)).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(['gcp-example.json', 'local.json']);
    for (const file of files) {
      const text = await readFile(join(PACKAGE_BLOCKS, file), 'utf8');
      expect(() => parseBlockDocument(file, text, file)).not.toThrow();
    }
  });
});
