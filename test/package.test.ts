/**
 * The image without a Docker engine: what the Dockerfile does, done here by hand. The project is
 * packed with `npm pack` (package.json "files" decides what ships, as in the image's `package`
 * stage), extracted, given the lock file (npm pack never ships it; the image's `deps` stage
 * copies it the same way), installed with the Dockerfile's own `npm ci --omit=dev` command, and
 * then the Dockerfile's ENTRYPOINT is run from a separate working directory, as in the image
 * (/app holds the package, /work is the working directory), on the tests' Node 24.
 */
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Node 24, the `node` dev dependency: the Node the image pins (test/deploy-files.test.ts). */
const NODE = join(ROOT, 'node_modules', '.bin', 'node');

interface Packed {
  filename: string;
  files: { path: string }[];
}

/** The Dockerfile's instruction of this kind (the last one), continuations joined. */
function dockerInstruction(keyword: string): string {
  const lines = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.startsWith(`${keyword} `));
  const line = lines.at(-1);
  if (line === undefined) throw new Error(`no ${keyword} in the Dockerfile`);
  return line.slice(keyword.length + 1).trim();
}

/** Where the Dockerfile puts the package in the image (WORKDIR of the deps stage: /app). */
const IMAGE_APP_DIR = '/app';

let dir: string;
let app: string;
let work: string;
let packed: Packed;
let entrypoint: string[];
const timings: Record<string, number> = {};

function timed<T>(name: string, run: () => T): T {
  const start = performance.now();
  try {
    return run();
  } finally {
    timings[name] = Math.round(performance.now() - start);
  }
}

function sh(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    // npm runs on the machine's node; the project's node_modules/.bin first, as npm scripts do.
    env: { ...process.env, PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  }
  return result.stdout;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The image's entrypoint with `args` (as CMD or `docker run IMAGE args`): its script mapped from
 * /app to the extracted package, in the working directory `work`, with only the environment an
 * image has (no MTA_INGEST_* leaking in from the test's).
 */
function runImage(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const [command, script, ...rest] = entrypoint;
  expect(command).toBe('node');
  const local = join(app, relative(IMAGE_APP_DIR, script ?? ''));
  return new Promise((resolve, reject) => {
    execFile(
      NODE,
      [local, ...rest, ...args],
      {
        cwd: work,
        env: { PATH: '/usr/bin:/bin', HOME: work, TMPDIR: join(dir, 'tmp'), NODE_ENV: 'production', ...env },
        maxBuffer: 16 * 1024 * 1024,
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number')
          return reject(new Error(error.message, { cause: error }));
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
  });
}

function filesUnder(path: string): string[] {
  if (!existsSync(join(ROOT, path))) return [];
  return readdirSync(join(ROOT, path), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mta-ingest-package-'));
  app = join(dir, 'app');
  work = join(dir, 'work');
  for (const sub of [app, work, join(dir, 'tmp')]) mkdirSync(sub);
  entrypoint = JSON.parse(dockerInstruction('ENTRYPOINT')) as string[];

  const json = timed('pack', () =>
    sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], ROOT),
  );
  packed = (JSON.parse(json) as Packed[])[0] as Packed;
  timed('extract', () =>
    sh('tar', ['-xzf', join(dir, packed.filename), '-C', app, '--strip-components=1'], ROOT),
  );
  copyFileSync(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
  // The Dockerfile's install command, word for word (--prefer-offline only spares the network).
  const install = dockerfileNpmCi().trim().split(/\s+/);
  expect(install.slice(0, 3)).toEqual(['npm', 'ci', '--omit=dev']);
  timed('npm ci --omit=dev', () => sh('npm', [...install.slice(1), '--prefer-offline'], app));
}, 120_000);

/** The `npm ci ...` command of the Dockerfile's RUN instructions. */
function dockerfileNpmCi(): string {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const match = /^RUN\s+(npm ci [^&\n]*)/m.exec(text);
  if (!match?.[1]) throw new Error('no `RUN npm ci` in the Dockerfile');
  return match[1];
}

afterAll(() => {
  console.log(`package test timings (ms): ${JSON.stringify(timings)}`);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  const paths = (): string[] => packed.files.map((file) => file.path);

  it('ships the code, the reference data, the blocks and the Prefect deployments, and nothing else', () => {
    const shipped = paths();
    for (const path of [
      'package.json',
      'README.md',
      'src/cli.ts',
      'src/reference/remote-booth-station.csv',
      'src/reference/demo/turnstile_230603.txt.gz',
      'blocks/local.json',
      'blocks/gcp-example.json',
    ]) {
      expect(shipped, path).toContain(path);
    }
    // Every file in these folders ships (deployments/prefect/ may not exist yet).
    for (const path of [
      ...filesUnder('src'),
      ...filesUnder('blocks'),
      ...filesUnder('deployments/prefect'),
    ]) {
      expect(shipped, path).toContain(path);
    }
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toEqual(expect.arrayContaining(['src/', 'blocks/', 'deployments/prefect/']));
    const outside = shipped.filter(
      (path) =>
        !/^(src|blocks|deployments\/prefect)\//.test(path) && !['package.json', 'README.md'].includes(path),
    );
    expect(outside).toEqual([]);
    for (const excluded of [
      /^test\//,
      /^\.ci\//,
      /^data\//,
      /^terraform\//,
      /^\.github\//,
      /^scripts\//,
      /node_modules/,
    ]) {
      expect(shipped.filter((path) => excluded.test(path))).toEqual([]);
    }
  });

  it('installs production dependencies only, with DuckDB’s binary for this platform', () => {
    const modules = join(app, 'node_modules');
    expect(existsSync(join(modules, '@duckdb', 'node-api'))).toBe(true);
    expect(existsSync(join(modules, '@duckdb', `node-bindings-linux-${process.arch}`))).toBe(true);
    for (const dev of ['node', 'vitest', 'typescript', 'eslint', 'prettier', 'fast-check', 'yaml']) {
      expect(existsSync(join(modules, dev)), dev).toBe(false);
    }
  });
});

describe("the Dockerfile's entrypoint, from the clean install", () => {
  it('prints the version', async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    const result = await runImage(['--version']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(version);
  });

  it('runs the offline demo through DuckDB into a lake and a warehouse, exit 0', async () => {
    const demo = join(work, 'demo');
    const start = performance.now();
    const result = await runImage(['demo', '--dir', demo]);
    timings.demo = Math.round(performance.now() - start);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/2023-06-03\s+loaded\s+72,110 rows/);
    expect(existsSync(join(demo, 'warehouse.duckdb'))).toBe(true);
    expect(filesUnder(relative(ROOT, join(demo, 'lake'))).some((path) => path.endsWith('.parquet'))).toBe(
      true,
    );
  });

  it('plans a week into the working directory’s default lake, fetching nothing', async () => {
    const result = await runImage(['plan', '--date', '2023-06-03'], {
      MTA_INGEST_NOW: '2023-06-05T12:00:00Z',
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('2023-06-03  not stored: fetch, convert, store, load');
    expect(result.stdout).toContain(join(work, 'data', 'lake'));
    expect(result.stdout).toMatch(/1 week; nothing was fetched\./);
  });

  it('refuses bad arguments with exit 2, as the image would', async () => {
    const result = await runImage(['run', '--date', '2023-06-04'], {
      MTA_INGEST_NOW: '2023-06-05T12:00:00Z',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/not a drop date/);
  });
});
