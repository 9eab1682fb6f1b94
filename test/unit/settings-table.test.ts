/**
 * The settings table (src/settings/settings-table.ts) as the one source: the generated
 * configuration page, the options each command offers, and messages that name where a value
 * came from (flag, variable, block file).
 */
import { describe, expect, it, vi } from 'vitest';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIGURATION_PAGE, configurationPage } from '../../scripts/generate-configuration-docs.ts';
import { ENV, resolveConfig } from '../../src/config.ts';
import { main } from '../../src/cli.ts';
import { CONFIG_COMMANDS, SETTINGS, settingsOf } from '../../src/settings/settings-table.ts';
import { BLOCK_SECTIONS } from '../../src/settings/block-sections.ts';
import { DEFAULT_LOCK_WAIT_MS } from '../../src/warehouse/warehouse.ts';

/** `main` with captured streams. */
async function cli(argv: string[], env: Record<string, string> = {}, cwd = process.cwd()) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    env,
    cwd,
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('the settings table', () => {
  it('docs/configuration.md is exactly what scripts/generate-configuration-docs.ts writes', async () => {
    const committed = await readFile(CONFIGURATION_PAGE, 'utf8');
    expect(await configurationPage(committed), 'run npm run docs:configuration').toBe(committed);
  });

  it('gives every setting one variable, one block field and (if it has one) one flag', () => {
    expect(Object.values(ENV)).toEqual(SETTINGS.map((s) => s.env));
    // The log's settings alone have no block field: the log exists before a block is read.
    const inBlocks = SETTINGS.filter((s) => s.block !== undefined);
    expect(SETTINGS.filter((s) => s.block === undefined).map((s) => s.name)).toEqual([
      'logLevel',
      'logFormat',
    ]);
    const fields = inBlocks.map((s) => `${s.block!.section}.${s.block!.field}`);
    expect(new Set(fields).size).toBe(inBlocks.length);
    for (const setting of inBlocks) {
      expect(BLOCK_SECTIONS[setting.block!.section].fields[setting.block!.field]?.setting).toBe(setting.name);
    }
    expect(SETTINGS.find((s) => s.name === 'lockWaitMs')?.default).toBe(DEFAULT_LOCK_WAIT_MS);
  });

  it.each(CONFIG_COMMANDS.map((c) => [c] as const))(
    '%s --help lists only its settings, each naming its variable',
    async (command) => {
      const help = await cli([command, '--help']);
      expect(help.code).toBe(0);
      for (const setting of SETTINGS) {
        const offered = settingsOf(command).includes(setting);
        // Every variable the command reads is named, those of settings without a flag too.
        if (offered)
          expect(help.stdout.replace(/\s+/g, ' '), `${command} ${setting.env}`).toContain(setting.env);
        if (setting.flag === undefined) continue;
        expect(help.stdout.includes(`${setting.flag} `), `${command} ${setting.flag}`).toBe(offered);
      }
      expect(help.stdout).toContain('MTA_INGEST_LOG_LEVEL');
      expect(help.stdout).toContain('MTA_INGEST_BLOCK');
      if (command === 'status' || command === 'report') {
        expect(help.stdout).not.toMatch(/--source-url|--fetch-|--work-dir|--lock-wait-ms/);
      }
    },
  );

  it('refuses a flag a new command does not take; the older commands accept it, unshown', async () => {
    const refused = await cli(['versions', '--date', '2023-06-03', '--fetch-attempts', '3']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^mta-ingest: .*--fetch-attempts/);
    // status, plan, report and run took every setting's flag before: scripts that pass one set
    // of flags to all of them keep working.
    const dir = await mkdtemp(join(tmpdir(), 'settings-hidden-'));
    try {
      const lake = join(dir, 'lake');
      const accepted = await cli([
        'status',
        '--fetch-attempts',
        '3',
        '--lake',
        lake,
        '--warehouse',
        join(dir, 'w.duckdb'),
      ]);
      expect(accepted.code, accepted.stderr).toBe(0);
      expect(accepted.stdout).toMatch(/No week stored or loaded yet/);
      expect((await cli(['status', '--help'])).stdout).not.toContain('--fetch-attempts');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('messages name where a value came from', () => {
  it('a lake URI of no backend: the variable, the flag, or the block', () => {
    expect(() => resolveConfig({}, { MTA_INGEST_LAKE: 'ftp://x' })).toThrow(
      /^MTA_INGEST_LAKE ftp:\/\/x: expected/,
    );
    expect(() => resolveConfig({ lake: 'ftp://x' }, {})).toThrow(/^--lake ftp:\/\/x: expected/);
    expect(() => resolveConfig({}, {}, { lake: 'ftp://x' }, 'block b (blocks/b.json)')).toThrow(
      /^block b \(blocks\/b\.json\) lake\.uri ftp:\/\/x: expected/,
    );
  });

  it('a warehouse URI of no backend', () => {
    expect(() => resolveConfig({}, { MTA_INGEST_WAREHOUSE: 's3://x/y' })).toThrow(
      /^MTA_INGEST_WAREHOUSE s3:/,
    );
    expect(() => resolveConfig({ warehouse: 'duckdb:' }, {})).toThrow(/^--warehouse duckdb:/);
    expect(resolveConfig({ warehouse: 'bigquery://proj-1/d' }, {}).warehouse).toBe('bigquery://proj-1/d');
    expect(resolveConfig({ lake: 'file:///tmp/l' }, {}).lake).toBe('file:///tmp/l');
  });

  it('a URI of a known backend but malformed, refused while resolving, naming its source', () => {
    // A project id is 6 to 30 characters; a bucket name at least 3.
    expect(() => resolveConfig({}, { MTA_INGEST_WAREHOUSE: 'bigquery://p/d' })).toThrow(
      /^MTA_INGEST_WAREHOUSE bigquery:\/\/p\/d: expected bigquery:\/\/PROJECT\/DATASET/,
    );
    expect(() => resolveConfig({}, { MTA_INGEST_LAKE: 'gs://b/p' })).toThrow(
      /^MTA_INGEST_LAKE gs:\/\/b\/p: not a gs:\/\/bucket/,
    );
    expect(() => resolveConfig({ lake: 'gs://bkt/../x' }, {})).toThrow(
      /^--lake gs:\/\/bkt\/\.\.\/x: the prefix/,
    );
  });

  it('MTA_INGEST_LAKE=ftp://x mta-ingest plan blames the variable, not --lake', async () => {
    const refused = await cli(['plan', '--date', '2023-06-03'], {
      MTA_INGEST_LAKE: 'ftp://x',
      MTA_INGEST_NOW: '2023-06-05T12:00:00Z',
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      'mta-ingest: MTA_INGEST_LAKE ftp://x: expected a folder path, a file:// URL or gs://bucket/prefix\n',
    );
  });

  it("a block file's bad value names the block, its file and its field", async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'mta-ingest-settings-'));
    try {
      await mkdir(join(cwd, 'blocks'));
      await writeFile(join(cwd, 'blocks', 'odd.json'), JSON.stringify({ lake: { uri: 'ftp://x' } }));
      const refused = await cli(['status', '--block', 'odd'], {}, cwd);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`block odd (${join(cwd, 'blocks', 'odd.json')}) lake.uri ftp://x`);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });
});

describe('main', () => {
  it('writes to the streams it is given, never to the process', async () => {
    const stdout = vi.spyOn(process.stdout, 'write');
    const stderr = vi.spyOn(process.stderr, 'write');
    try {
      expect((await cli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+/);
      expect((await cli(['plan', '--lake', 'ftp://x'])).stderr).toMatch(/^mta-ingest: --lake ftp/);
      expect(stdout).not.toHaveBeenCalled();
      expect(stderr).not.toHaveBeenCalled();
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
  });
});
