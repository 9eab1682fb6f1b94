/**
 * Start-up: the commands that do no data work (`--version`, `--help`, `plan --help`, `plan` of
 * one week), each run `runs` times interleaved with a bare `node -e 0` on the same Node, under
 * GNU time. Prints each command's median wall time, median peak RSS and its ratio to `node -e 0`
 * (issue 16's target: at most 4x and 90 MB). What users run is the built CLI, so build first:
 *
 *   npm run build && node test/bench/startup.ts [--runs 9] [--cli dist/cli.js]
 *
 * `plan` runs twice: in an empty folder (the embedded default, ./data/lake and
 * ./data/warehouse.duckdb, neither there yet) and on a lake and DuckDB file the demo filled
 * (the warehouse file must be opened to read the load state, so DuckDB loads there).
 * bench-run.ts can take the rows from `startupRows`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface StartupRow {
  name: string;
  /** Median wall time, seconds. */
  seconds: number;
  /** Median peak RSS, MB. */
  rssMb: number;
  /** Median wall time over `node -e 0`'s (the target: ≤ 4). */
  ratio: number;
}

interface Case {
  name: string;
  args: string[];
  cwd: string;
}

const TIME = '/usr/bin/time';

/** One run under GNU time: wall time taken here (its %e has 10 ms steps), peak RSS from %M. */
function sample(args: string[], cwd: string): { seconds: number; rssMb: number } {
  // No MTA_INGEST_* setting from the caller's environment: the embedded defaults only.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('MTA_INGEST_')),
  );
  const started = performance.now();
  const child = spawnSync(TIME, ['-f', '@@ %e %M', process.execPath, ...args], {
    cwd,
    env,
    encoding: 'utf8',
  });
  const seconds = (performance.now() - started) / 1000;
  const match = /@@ [\d.]+ (\d+)/.exec(child.stderr);
  if (child.status !== 0 || !match) {
    throw new Error(`node ${args.join(' ')} (in ${cwd}): exit ${child.status}\n${child.stderr}`);
  }
  return { seconds, rssMb: Number(match[1]) / 1024 };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

/** Measures the start-up commands of the CLI at `cli` (default the built dist/cli.js). */
export function startupRows(options: { cli?: string; runs?: number } = {}): StartupRow[] {
  const cli = resolve(options.cli ?? 'dist/cli.js');
  const runs = options.runs ?? 9;
  const work = mkdtempSync(join(tmpdir(), 'mta-ingest-startup-'));
  try {
    const empty = join(work, 'empty');
    const demo = join(work, 'demo');
    sample([cli, 'demo', '--dir', demo], work);
    const cases: Case[] = [
      { name: 'node -e 0', args: ['-e', '0'], cwd: work },
      { name: '--version', args: [cli, '--version'], cwd: work },
      { name: '--help', args: [cli, '--help'], cwd: work },
      { name: 'plan --help', args: [cli, 'plan', '--help'], cwd: work },
      { name: 'plan --date (empty folder)', args: [cli, 'plan', '--date', '2023-06-03'], cwd: empty },
      {
        name: 'plan --date (DuckDB file)',
        args: [
          cli,
          'plan',
          '--date',
          '2023-06-03',
          '--lake',
          join(demo, 'lake'),
          '--warehouse',
          join(demo, 'warehouse.duckdb'),
        ],
        cwd: work,
      },
    ];
    mkdirSync(empty);
    const samples = new Map(cases.map((c) => [c.name, [] as { seconds: number; rssMb: number }[]]));
    // Warm the disk cache once, then interleave: every round runs every case once.
    for (const c of cases) sample(c.args, c.cwd);
    for (let round = 0; round < runs; round++) {
      for (const c of cases) samples.get(c.name)!.push(sample(c.args, c.cwd));
    }
    const base = median(samples.get('node -e 0')!.map((s) => s.seconds));
    return cases.map(({ name }) => {
      const taken = samples.get(name)!;
      const seconds = median(taken.map((s) => s.seconds));
      return { name, seconds, rssMb: median(taken.map((s) => s.rssMb)), ratio: seconds / base };
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function formatStartupRows(rows: StartupRow[]): string {
  const lines = rows.map(
    (row) =>
      `${row.name.padEnd(28)} ${row.seconds.toFixed(3).padStart(7)} s ${row.rssMb.toFixed(1).padStart(7)} MB ${row.ratio.toFixed(1).padStart(6)}x`,
  );
  return [
    `${'command'.padEnd(28)} ${'median'.padStart(9)} ${'peak RSS'.padStart(10)} ${'ratio'.padStart(7)}`,
    ...lines,
  ].join('\n');
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const at = argv.indexOf(name);
    return at === -1 ? undefined : argv[at + 1];
  };
  const runs = Number(flag('--runs') ?? 9);
  const rows = startupRows({ cli: flag('--cli'), runs });
  console.log(`Start-up, median of ${runs} interleaved runs, Node ${process.version}`);
  console.log(formatStartupRows(rows));
}
