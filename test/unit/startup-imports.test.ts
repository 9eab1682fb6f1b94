/**
 * Start-up loads only what a command uses (issue 16): `--version`, `--help`, a command's
 * `--help` and `plan` of one week on the embedded defaults (no warehouse file yet) load neither
 * DuckDB's native library, nor a Google Cloud SDK, nor undici. The real entry point runs in a
 * child process with a module hook that records every module loaded; what is checked is the
 * module list, never the time.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

/** Packages a command that does no data work must not load. */
const HEAVY = /\/node_modules\/(@duckdb\/|@google-cloud\/|google-auth-library\/|gaxios\/|undici\/)/;

const HOOK = `
import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
registerHooks({
  load(url, context, next) {
    appendFileSync(process.env.STARTUP_MODULES_FILE, url + '\\n');
    return next(url, context);
  },
});
`;

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mta-ingest-startup-test-'));
  await writeFile(join(work, 'hook.mjs'), HOOK);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The modules (URLs) the CLI's entry point loads for `argv`, run in an empty folder. */
async function modulesLoadedBy(argv: string[], name: string): Promise<string[]> {
  const file = join(work, `${name}.txt`);
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('MTA_INGEST_')),
  );
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', join(work, 'hook.mjs'), CLI, ...argv],
      { cwd: work, env: { ...env, STARTUP_MODULES_FILE: file } },
      (error, _stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve()),
    );
  });
  return (await readFile(file, 'utf8')).split('\n').filter((url) => url !== '');
}

describe('start-up loads no heavy package a command does not use', () => {
  it.each([
    ['version', ['--version']],
    ['help', ['--help']],
    ['plan-help', ['plan', '--help']],
    ['run-help', ['run', '--help']],
    ['plan', ['plan', '--date', '2023-06-03']],
  ])('%s', async (name, argv) => {
    const loaded = await modulesLoadedBy(argv, name);
    // The hook saw the CLI run (a sanity check that the list is the real one).
    expect(loaded.some((url) => url.endsWith('/src/cli/commands.ts'))).toBe(true);
    expect(loaded.filter((url) => HEAVY.test(url))).toEqual([]);
  });

  it('plan of one week loads its command but no DuckDB, with no warehouse file to open', async () => {
    const loaded = await modulesLoadedBy(['plan', '--date', '2023-06-03', '--json'], 'plan-json');
    expect(loaded.some((url) => url.endsWith('/src/commands/plan.ts'))).toBe(true);
    expect(loaded.some((url) => url.endsWith('/src/warehouse/duckdb/duckdb-warehouse.ts'))).toBe(true);
    expect(loaded.filter((url) => /@duckdb\//.test(url))).toEqual([]);
  });
});

describe('the entry point keeps compiled code for the next process', () => {
  /** The files under the compile cache a run of `argv` leaves in `tmp` (the OS temp folder). */
  async function compileCacheAfter(argv: string[], tmp: string, extraEnv: Record<string, string> = {}) {
    await mkdir(tmp, { recursive: true });
    const env = Object.fromEntries(
      Object.entries(process.env).filter(
        ([key]) => !key.startsWith('MTA_INGEST_') && !key.startsWith('NODE_COMPILE_CACHE'),
      ),
    );
    await new Promise<void>((resolve, reject) => {
      execFile(
        process.execPath,
        [CLI, ...argv],
        { cwd: work, env: { ...env, TMPDIR: tmp, ...extraEnv } },
        (error, _stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve()),
      );
    });
    return readdir(join(tmp, 'node-compile-cache'), { recursive: true }).catch(() => []);
  }

  it('in the OS temp folder, unless NODE_DISABLE_COMPILE_CACHE is set', async () => {
    const files = await compileCacheAfter(['plan', '--date', '2023-06-03'], join(work, 'tmp-on'));
    expect(files.length).toBeGreaterThan(0);
    const off = await compileCacheAfter(['plan', '--date', '2023-06-03'], join(work, 'tmp-off'), {
      NODE_DISABLE_COMPILE_CACHE: '1',
    });
    expect(off).toEqual([]);
  });
});
