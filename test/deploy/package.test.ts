/**
 * The npm package as users get it. Node does not strip types under node_modules, so what runs
 * when installed is only known by installing it there: this suite
 *   1. copies the checkout's files (what a clone holds: git's tracked and not ignored files) to a
 *      fresh folder and runs `npm ci` there on the machine's own node and npm, with
 *      --strict-allow-scripts (npm 12 skips an install script that package.json's allowScripts
 *      does not cover; this flag makes that an error, on npm 11 too), so the README's set-up is
 *      proved: the `node` dev dependency's preinstall still gives node_modules/.bin/node
 *      (Node 24), and the `prepare` script builds dist/;
 *   2. packs it with `npm pack` (which runs `prepare`, so the tarball has freshly built JS);
 *   3. installs the tarball into a throwaway project's node_modules (run with
 *      `npx --no-install mta-ingest`) and globally (`npm install -g --prefix`, run as
 *      <prefix>/bin/mta-ingest), both through the bin's `#!/usr/bin/env node` shebang with the
 *      fresh clone's Node 24 first on PATH;
 * and runs `--version`, the offline `demo` and a refused date in each.
 */
import { execFile, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  files: string[];
  allowScripts: Record<string, boolean>;
};

interface Packed {
  filename: string;
  files: { path: string }[];
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
let clone: string;
let project: string;
let prefix: string;
let nodeDir: string;
let tarball: string;
let packed: Packed;
let cloneNodeVersion: string;
const timings: Record<string, number> = {};

/** The machine's PATH, without this project's node_modules/.bin (vitest runs under npm). */
const MACHINE_PATH = (process.env.PATH ?? '')
  .split(':')
  .filter((entry) => !entry.includes('node_modules'))
  .join(':');

function sh(command: string, args: string[], cwd: string, path = MACHINE_PATH): string {
  const start = performance.now();
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, PATH: path, npm_config_update_notifier: 'false' },
    maxBuffer: 64 * 1024 * 1024,
  });
  timings[`${command} ${args.slice(0, 2).join(' ')}`] = Math.round(performance.now() - start);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  }
  return result.stdout;
}

/** A command as a user runs it: only PATH (Node 24 first), HOME and TMPDIR from the machine. */
function run(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        cwd,
        env: {
          PATH: `${nodeDir}:${MACHINE_PATH}`,
          HOME: join(dir, 'home'),
          TMPDIR: join(dir, 'tmp'),
          npm_config_update_notifier: 'false',
          ...env,
        },
        maxBuffer: 16 * 1024 * 1024,
        timeout: 90_000,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number')
          return reject(new Error(error.message, { cause: error }));
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
  });
}

function filesUnder(base: string, path: string): string[] {
  if (!existsSync(join(base, path))) return [];
  return readdirSync(join(base, path), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(base, join(entry.parentPath, entry.name)));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mta-ingest-package-'));
  clone = join(dir, 'clone');
  project = join(dir, 'project');
  prefix = join(dir, 'global');
  nodeDir = join(dir, 'node-bin');
  for (const sub of [clone, project, prefix, nodeDir, join(dir, 'home'), join(dir, 'tmp')]) mkdirSync(sub);

  // 1. A clone's files (tracked and new, not ignored: no node_modules, dist or .ci/.cache).
  const listed = sh('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT);
  for (const path of listed.split('\0').filter(Boolean)) {
    if (!existsSync(join(ROOT, path))) continue; // deleted in the work tree, not yet in git
    mkdirSync(dirname(join(clone, path)), { recursive: true });
    cpSync(join(ROOT, path), join(clone, path));
  }
  sh('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund', '--strict-allow-scripts'], clone);
  const cloneNode = join(clone, 'node_modules', '.bin', 'node');
  cloneNodeVersion = sh(cloneNode, ['--version'], clone).trim();
  // Only `node` on PATH from the clone, not its other dev tools.
  symlinkSync(cloneNode, join(nodeDir, 'node'));

  // 2. The tarball, as `npm pack` makes it (prepare builds dist/ first).
  const json = sh('npm', ['pack', '--json', '--pack-destination', dir], clone);
  packed = (JSON.parse(json) as Packed[])[0] as Packed;
  tarball = join(dir, packed.filename);

  // 3. Installed where Node will not strip types: a project's node_modules, and a global prefix.
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'throwaway', private: true }));
  sh(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball],
    project,
    `${nodeDir}:${MACHINE_PATH}`,
  );
  sh(
    'npm',
    ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
    project,
    `${nodeDir}:${MACHINE_PATH}`,
  );
}, 600_000);

afterAll(() => {
  console.log(`package test timings (ms): ${JSON.stringify(timings)}`);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm ci on a fresh clone, with install scripts allowed only by package.json allowScripts', () => {
  it("gives the project's Node 24 (the `node` dev dependency, allowed by name)", () => {
    expect(pkg.allowScripts).toEqual({ node: true });
    expect(cloneNodeVersion).toMatch(/^v24\./);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; hasInstallScript?: boolean }>;
    };
    expect(cloneNodeVersion).toBe(`v${lock.packages['node_modules/node']?.version}`);
    // Every dependency with an install script is covered (today only `node`).
    const scripted = Object.entries(lock.packages)
      .filter(([, entry]) => entry.hasInstallScript)
      .map(([path]) => path.replace(/^.*node_modules\//, ''));
    for (const name of scripted) expect(pkg.allowScripts[name], name).toBe(true);
  });

  it('builds dist/ through `prepare`', () => {
    expect(existsSync(join(clone, 'dist', 'cli.js'))).toBe(true);
  });
});

describe('the packed package', () => {
  const shipped = (): string[] => packed.files.map((file) => file.path);

  it('ships the compiled JS with the reference data, the blocks and the Prefect deployments, and no sources', () => {
    expect(pkg.bin).toEqual({ 'mta-ingest': 'dist/cli.js' });
    expect(pkg.files).toEqual(['dist/', 'blocks/', 'deployments/prefect/']);
    const files = shipped();
    // Every source module has its JS, and every reference file is beside it.
    const sources = filesUnder(ROOT, 'src').filter((path) => path.endsWith('.ts'));
    expect(sources.length).toBeGreaterThan(40);
    for (const source of sources) {
      const js = source.replace(/^src\//, 'dist/').replace(/\.ts$/, '.js');
      expect(files, js).toContain(js);
    }
    for (const path of filesUnder(ROOT, 'src/reference')) {
      expect(files, path).toContain(path.replace(/^src\//, 'dist/'));
    }
    for (const path of [...filesUnder(ROOT, 'blocks'), ...filesUnder(ROOT, 'deployments/prefect')]) {
      expect(files, path).toContain(path);
    }
    const outside = files.filter(
      (path) =>
        !/^(dist|blocks|deployments\/prefect)\//.test(path) && !['package.json', 'README.md'].includes(path),
    );
    expect(outside).toEqual([]);
    expect(files.filter((path) => path.endsWith('.ts'))).toEqual([]);
  });

  it('the bin keeps its shebang, and no compiled import still names a .ts file', () => {
    const installed = join(project, 'node_modules', 'mta-ingest');
    expect(readFileSync(join(installed, 'dist', 'cli.js'), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    for (const path of filesUnder(installed, 'dist').filter((p) => p.endsWith('.js'))) {
      const text = readFileSync(join(installed, path), 'utf8');
      expect(text, path).not.toMatch(
        /\bfrom\s+['"]\.{1,2}\/[^'"]*\.ts['"]|import\(\s*['"]\.{1,2}\/[^'"]*\.ts['"]/,
      );
    }
  });
});

/** The installed command in each place users run it from. */
const installs: [string, (args: string[], env?: Record<string, string>) => Promise<Result>][] = [
  [
    'installed locally (npx --no-install)',
    (args, env) => run('npx', ['--no-install', 'mta-ingest', ...args], project, env),
  ],
  [
    'installed globally (npm install -g --prefix)',
    (args, env) => run(join(prefix, 'bin', 'mta-ingest'), args, project, env),
  ],
];

describe.each(installs)('mta-ingest %s', (where, mtaIngest) => {
  it('prints the version', async () => {
    const result = await mtaIngest(['--version']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(pkg.version);
  });

  it('runs the offline demo through DuckDB into a lake and a warehouse, exit 0', async () => {
    const demo = join(dir, `demo-${where.includes('globally') ? 'global' : 'local'}`);
    const start = performance.now();
    const result = await mtaIngest(['demo', '--dir', demo]);
    timings[`demo ${where}`] = Math.round(performance.now() - start);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/2023-06-03\s+loaded\s+72,110 rows/);
    expect(existsSync(join(demo, 'warehouse.duckdb'))).toBe(true);
    expect(filesUnder(demo, 'lake').some((path) => path.endsWith('.parquet'))).toBe(true);
  });

  it('refuses a date that is not a drop date: exit 2, one line', async () => {
    const result = await mtaIngest(['run', '--date', '2023-06-04'], {
      MTA_INGEST_NOW: '2023-06-05T12:00:00Z',
    });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/not a drop date/);
    expect(result.stdout).toBe('');
  });
});
