/**
 * `npm run bench`: the full worker against DuckDB's bare COPY, in the same session, as ratios
 * (these machines are noisy, so no absolute number is a verdict).
 *
 * - bare: `bare-copy.ts`, DuckDB's CSV→Parquet COPY of the real week, in its own process;
 * - full: `mta-ingest run` of the same week from a loopback HTTP server into a fresh local lake
 *   and DuckDB warehouse (fetch, hash, gzip, convert, store, load, manifest);
 * - range: `mta-ingest run` of 10 weeks (the same file served under 10 drop dates), whose peak
 *   RSS must equal one week's: memory does not grow with the number of weeks.
 *
 * Wall time and peak RSS come from GNU time (`/usr/bin/time`); each measurement is repeated
 * (BENCH_REPEAT, default 5), alternating bare and full, and the medians are compared.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSourceServer } from '../support/peers/source-server.ts';
import { realWeekFile } from '../support/fixtures/real-week.ts';

const TIME = '/usr/bin/time';
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const BARE = fileURLToPath(new URL('./bare-copy.ts', import.meta.url));
const REPEAT = Number(process.env.BENCH_REPEAT ?? 5);
const RANGE = ['2023-04-01', '2023-06-03'] as const;

interface Sample {
  seconds: number;
  rssMb: number;
}

/** Runs node with args under GNU time; async, because the source server lives in this process. */
async function measure(args: string[], env: Record<string, string> = {}): Promise<Sample> {
  const { stderr } = await promisify(execFile)(TIME, ['-f', '@@ %e %M', process.execPath, ...args], {
    env: { ...process.env, ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
  const match = /@@ ([\d.]+) (\d+)/.exec(stderr);
  if (!match) throw new Error(`${args.join(' ')}: no measurement in ${stderr}`);
  return { seconds: Number(match[1]), rssMb: Number(match[2]) / 1024 };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

if (!existsSync(TIME)) throw new Error(`${TIME} not found: install GNU time (Debian package "time")`);
const week = await realWeekFile();
const server = await startSourceServer();
for (let date = new Date(`${RANGE[0]}T00:00:00Z`); date <= new Date(`${RANGE[1]}T00:00:00Z`);) {
  const yymmdd = date.toISOString().slice(2, 10).replaceAll('-', '');
  server.serve({ name: `turnstile_${yymmdd}.txt`, path: week });
  date = new Date(date.getTime() + 7 * 86_400_000);
}
const work = await mkdtemp(join(tmpdir(), 'mta-ingest-bench-'));
const env = { MTA_INGEST_NOW: '2023-06-05T16:00:00Z', MTA_INGEST_WORK_DIR: work };
const fullRun = (i: number, selection: string[]): Promise<Sample> =>
  measure(
    [CLI, 'run', ...selection, '--source-url', server.baseUrl, '--lake', join(work, `lake${i}`)].concat([
      '--warehouse',
      join(work, `wh${i}.duckdb`),
      '--log-level',
      'warn',
    ]),
    env,
  );

try {
  const bare: Sample[] = [];
  const full: Sample[] = [];
  const range: Sample[] = [];
  // One of each first, unmeasured, so the page cache and DuckDB's files are warm for both.
  await measure([BARE, week, join(work, 'warm.parquet')]);
  await fullRun(-1, ['--date', RANGE[1]]);
  for (let i = 0; i < REPEAT; i += 1) {
    bare.push(await measure([BARE, week, join(work, `bare${i}.parquet`)]));
    full.push(await fullRun(i, ['--date', RANGE[1]]));
  }
  for (let i = 0; i < Math.max(2, Math.ceil(REPEAT / 2)); i += 1) {
    range.push(await fullRun(100 + i, ['--from', RANGE[0], '--to', RANGE[1]]));
  }
  const row = (name: string, samples: Sample[]): string =>
    `${name.padEnd(34)} ${median(samples.map((s) => s.seconds))
      .toFixed(2)
      .padStart(7)} s ${median(samples.map((s) => s.rssMb))
      .toFixed(0)
      .padStart(6)} MB   (${samples.map((s) => s.seconds.toFixed(2)).join(' ')})`;
  const ratio = (a: Sample[], b: Sample[], key: keyof Sample): string =>
    (median(a.map((s) => s[key])) / median(b.map((s) => s[key]))).toFixed(2);
  console.log(
    `real week 2023-06-03 (33.2 MB, 253,237 rows), medians of ${REPEAT} runs, node ${process.version}`,
  );
  console.log(`${''.padEnd(34)} ${'wall'.padStart(9)} ${'peak RSS'.padStart(9)}`);
  console.log(row('bare DuckDB COPY (baseline)', bare));
  console.log(row('mta-ingest run, 1 week', full));
  console.log(row('mta-ingest run, 10 weeks', range));
  console.log(
    `full / bare: wall ${ratio(full, bare, 'seconds')}x (target <= 1.5), peak RSS ${ratio(full, bare, 'rssMb')}x`,
  );
  console.log(
    `10 weeks / 1 week: peak RSS ${ratio(range, full, 'rssMb')}x (target 1.0: flat), wall ${ratio(range, full, 'seconds')}x`,
  );
  console.log(`peak RSS of a full run: ${median(full.map((s) => s.rssMb)).toFixed(0)} MB (target <= 200 MB)`);
} finally {
  await server.close();
  await rm(work, { recursive: true, force: true });
}
