/**
 * Runs the real CLI as a child process, the way a scheduler does, and captures what it prints.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const CLI = fileURLToPath(new URL('../../../src/cli.ts', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        cwd: options.cwd,
        // MTA_INGEST_ACCEPT=all: most suites feed the worker deliberately partial weeks (a few
        // thousand real lines, the MTA's one-turnstile legacy sample, one station's file), which
        // the plausibility gate rightly holds back; they test other promises. The gate's own
        // suite (test/gate.test.ts) runs with it unset.
        env: { ...process.env, MTA_INGEST_FETCH_BACKOFF_MS: '10', MTA_INGEST_ACCEPT: 'all', ...options.env },
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number')
          return reject(new Error(error.message, { cause: error }));
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
  });
}

/**
 * `mta-ingest run` as of `now`, fetching from `sourceUrl` into `dir`'s lake and DuckDB warehouse
 * (`<dir>/lake`, `<dir>/wh.duckdb`), spooling in `dir`.
 */
export function runWorker(
  target: { sourceUrl: string; dir: string; now: string },
  ...args: string[]
): Promise<CliResult> {
  const { sourceUrl, dir, now } = target;
  return runCli(
    [
      'run',
      '--source-url',
      sourceUrl,
      '--lake',
      join(dir, 'lake'),
      '--warehouse',
      join(dir, 'wh.duckdb'),
      ...args,
    ],
    { env: { MTA_INGEST_NOW: now, MTA_INGEST_WORK_DIR: dir } },
  );
}
