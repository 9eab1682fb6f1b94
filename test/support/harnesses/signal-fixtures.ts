/**
 * What the signal suites (signals.test.ts, signals-commands.test.ts) share: the bound, the week,
 * the 10x week file, the checks of a stopped process (exit code, bound, clean stop) and of what
 * it left (nothing half-written), and a process that holds a DuckDB file as another run would.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { readdir, readFile, rename, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { expect } from 'vitest';
import { duckdbTotals } from './crash-harness.ts';
import type { Stopped } from './signal-run.ts';

/** The promise: gone within this long after the signal. */
export const BOUND_MS = 3000;
export const WEEK = '2023-06-03';
export const FILE = 'turnstile_230603.txt';
export const NOW = '2023-06-19T16:00:00Z';
/** Measured stop times (label: ms), for the suite to print at its end. */
export const measured: string[] = [];

/** The real week's rows ten times over (one header), made once per machine. */
export async function bigWeekFile(real: string): Promise<string> {
  const path = join(tmpdir(), 'mta-ingest-test-data', 'turnstile_230603_x10.txt');
  if (existsSync(path)) return path;
  const temp = `${path}.${process.pid}.tmp`;
  const out = createWriteStream(temp);
  const header = (await readFile(real, 'latin1')).split('\n', 1)[0]!;
  out.write(`${header}\n`);
  for (let copy = 0; copy < 10; copy++) {
    let first = true;
    for await (const line of createInterface({ input: createReadStream(real, 'latin1') })) {
      if (first || line === '') {
        first = false;
        continue;
      }
      if (!out.write(`${line}\n`, 'latin1'))
        await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  await rename(temp, path);
  return path;
}

/** Exit code and bound, and the stop's measured time recorded for the summary. */
export function expectStopped(stopped: Stopped, code: 130 | 143, label: string): void {
  expect(stopped.signal, stopped.stderr.slice(-2000)).toBeNull();
  expect(stopped.code, stopped.stderr.slice(-2000)).toBe(code);
  expect(stopped.ms).toBeLessThan(BOUND_MS);
  // The clean stop, not the hard exit at the grace bound.
  expect(stopped.stderr).not.toMatch(/exiting now/);
  measured.push(`${label}: ${Math.round(stopped.ms)} ms`);
}

/** Every file under `dir`, relative. */
async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1));
}

/**
 * Nothing half-written: no lake temporary, every manifest's objects present at their size, no
 * spool left, and the warehouse holding the week wholly (`rows`) or as before (`before`).
 */
export async function expectNothingHalfWritten(dir: string, allowed: (number | undefined)[]): Promise<void> {
  const lake = join(dir, 'lake');
  const files = await filesUnder(lake);
  expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
  for (const file of files.filter((f) => f.includes('_manifests'))) {
    const manifest = JSON.parse(await readFile(join(lake, file), 'utf8')) as {
      objects: Record<string, { key: string; bytes: number } | undefined>;
    };
    for (const object of Object.values(manifest.objects)) {
      if (!object) continue;
      expect((await stat(join(lake, ...object.key.split('/')))).size, object.key).toBe(object.bytes);
    }
  }
  expect((await readdir(join(dir, 'work'))).filter((n) => n.startsWith('mta-ingest-'))).toEqual([]);
  const totals = await duckdbTotals(join(dir, 'wh.duckdb'));
  expect(allowed).toContain(totals.get(WEEK)?.rows);
  expect(totals.get(WEEK)?.duplicates ?? 0).toBe(0);
}

/** A process that holds the DuckDB file (as another run would) until released. */
export async function holdFile(
  file: string,
): Promise<{ pid: number | undefined; release: () => Promise<void> }> {
  const script = `import { DuckDBInstance } from '@duckdb/node-api';
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    await db.run(\`ATTACH '${file}' AS held\`);
    console.log('held');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid,
    release: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** `run` of the selected weeks into `dir`'s local lake and DuckDB warehouse, JSON out, debug log. */
export function signalRunArgs(sourceUrl: string, dir: string, ...selection: string[]): string[] {
  return [
    'run',
    ...(selection.length > 0 ? selection : ['--date', WEEK]),
    '--source-url',
    sourceUrl,
    '--lake',
    join(dir, 'lake'),
    '--warehouse',
    join(dir, 'wh.duckdb'),
    '--work-dir',
    join(dir, 'work'),
    '--json',
    '--log-level',
    'debug',
  ];
}
