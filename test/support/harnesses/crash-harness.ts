/**
 * Crash consistency harness: runs the real CLI (src/cli.ts) as a child process with
 * `--log-level debug`, reads its JSON log lines as they arrive, and SIGKILLs it the moment a
 * chosen event appears (or, for BigQuery, the moment the stand-in has taken a chosen request and
 * before it answers). Never by sleeps: a kill point is something the worker did.
 *
 * A trial is one or more killed runs, then a run without a kill. After every killed run and
 * after the final run the target's state is checked against invariants that must hold whatever
 * the kill interrupted, and after the final run against a clean run's state:
 *
 * - no row is duplicated (a week loaded twice, or twice over in one load);
 * - no week is visible in the warehouse without its manifest in the lake;
 * - a week visible in the warehouse is the whole week (rows and counter sums equal a clean run's);
 * - after the final run: exit 0; the warehouse holds exactly the clean run's weeks; each manifest
 *   records the load the warehouse holds and names objects whose bytes are in the lake; the lake
 *   holds exactly the layout's objects; and no temporary file, spool folder or WAL is left.
 *
 * Backends (local folder + DuckDB, GCS + the BigQuery stand-in) plug in as `CrashTarget`s.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { DuckDBInstance } from '@duckdb/node-api';
import { CLI } from './cli.ts';
import type { BigQueryStandin, JobConfiguration, StandinRequest } from '../peers/bigquery-standin.ts';
import { HUDSON_YARDS } from '../fixtures/real-week.ts';
import { weekKeys } from '../../../src/lake/lake-layout.ts';
import { parseManifest, type Manifest } from '../../../src/manifest/manifest.ts';

/** The first week: small, derived from a real one, with one reject. */
export const SMALL_WEEK = '2023-05-27';
/** The second: the real week 2023-06-03. */
export const REAL_WEEK = '2023-06-03';
export const WEEKS = [SMALL_WEEK, REAL_WEEK] as const;
/** The clock of every run: the Monday after the second week. */
export const NOW = '2023-06-05T16:00:00Z';
/** The small week's rows and rejects (the Hudson Yards part of 2015-09-19, one line spoiled). */
export const SMALL_WEEK_ROWS = 841;
export const SMALL_WEEK_REJECTS = 1;

/**
 * The small week: the real Hudson Yards slice of the 2015-09-19 file (842 readings of one
 * station; its last line has no newline), moved to the week before 2023-06-03 (09/12-09/18/2015
 * become 05/20-05/26/2023), with one counter spoiled so the week has a reject (and so a rejects
 * object, one more lake write to be killed between).
 */
export async function smallWeekContent(): Promise<Buffer> {
  const text = await readFile(HUDSON_YARDS, 'latin1');
  const lines = text
    .split('\n')
    .map((line) => line.replace(/09\/(1[2-8])\/2015/g, (_, day: string) => `05/${Number(day) + 8}/2023`));
  // Line 10 (a data line): its ENTRIES becomes "0000000-42", not a counter.
  lines[9] = lines[9]!.replace(/,(\d{10}),(\d{10})(\s*)$/, ',0000000-42,$2$3');
  return Buffer.from(lines.join('\n'), 'latin1');
}

/** A week's totals in a warehouse. */
export interface WeekTotals {
  rows: number;
  entries: bigint;
  exits: bigint;
  /** Rows beyond the first copy of each (source_file, source_line), or of each load. */
  duplicates: number;
  /** The load that put the rows there (DuckDB's job id; the BigQuery job of the chunk). */
  jobIds: string[];
}

/** One place a run writes to: a lake, a warehouse, a work dir. */
export interface CrashTarget {
  readonly name: string;
  /** The CLI arguments (after `run` and the dates) and environment that point a run here. */
  readonly args: string[];
  readonly env: Record<string, string>;
  /** The BigQuery dataset, for targets whose warehouse is the stand-in. */
  readonly dataset?: string;
  /** Totals per drop date, read without changing anything a rerun would see. */
  warehouse(): Promise<Map<string, WeekTotals>>;
  /** Every object (file) in the lake, by key, temporaries included. */
  lakeKeys(): Promise<string[]>;
  readObject(key: string): Promise<Buffer>;
  /** Anything left outside the lake: spool folders in the work dir, a DuckDB WAL. */
  leftovers(): Promise<string[]>;
}

/** A parsed log line. */
export interface LogEvent {
  event?: string;
  dropDate?: string;
  object?: string;
  [field: string]: unknown;
}

export interface KillPoint {
  label: string;
  /** Kill when the worker logs a line this matches. */
  onEvent?: (event: LogEvent) => boolean;
  /** Or when the BigQuery stand-in has taken a request this matches (before it answers). */
  onRequest?: (request: StandinRequest, status: number) => boolean;
  /** BigQuery: how jobs inserted during the killed run play (default the stand-in's). */
  jobStates?: ('PENDING' | 'RUNNING' | 'DONE')[];
  /** BigQuery: after the kill, let every job finish as BigQuery would with nobody watching. */
  finishJobs?: boolean;
}

export interface Trial {
  label: string;
  /** The kill of each killed run, in order; then a run without a kill. */
  kills: KillPoint[];
  /** The first killed run is `--force` over a target that already holds the weeks. */
  force?: boolean;
}

export interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Whether the kill was sent (its point was reached). */
  killed: boolean;
  /** For a kill at a stand-in request: which. */
  killedAt?: string | undefined;
  events: LogEvent[];
  stdout: string;
  stderr: string;
}

/** Kill when the worker logs `event` (for `dropDate`, and with `fields`). */
export function atEvent(event: string, dropDate?: string, fields: Record<string, unknown> = {}): KillPoint {
  const extra = Object.values(fields)
    .map((value) => ` ${String(value)}`)
    .join('');
  return {
    label: `${dropDate ? `${dropDate} ` : ''}${event}${extra}`,
    onEvent: (e) =>
      e.event === event &&
      (dropDate === undefined || e.dropDate === dropDate) &&
      Object.entries(fields).every(([k, v]) => e[k] === v),
  };
}

/** The partition decorator's or job id's date form, 20230603. */
const compact = (date: string): string => date.replaceAll('-', '');

/** Kill once the stand-in has inserted the week's load job, before the worker hears of it. */
export function atJobInsert(dropDate: string, options: Partial<KillPoint> = {}): KillPoint {
  return {
    label: `${dropDate} job inserted${options.finishJobs ? ' (job finishes unwatched)' : ''}`,
    onRequest: (r, status) =>
      r.method === 'POST' &&
      r.path.endsWith('/jobs') &&
      status === 200 &&
      JSON.stringify(r.body).includes(`$${compact(dropDate)}`),
    ...options,
  };
}

/**
 * Kill once the query job that records the week's load in `_mta_ingest_loads` is inserted: the
 * rows are in the partition, the record may or may not follow (with `finishJobs`, it does).
 */
export function atRecordInsert(dropDate: string, options: Partial<KillPoint> = {}): KillPoint {
  return {
    label: `${dropDate} record job inserted${options.finishJobs ? ' (finishes unwatched)' : ''}`,
    onRequest: (r, status) => {
      const query = (r.body as { configuration?: JobConfiguration } | undefined)?.configuration?.query;
      return (
        r.method === 'POST' &&
        r.path.endsWith('/jobs') &&
        status === 200 &&
        /^INSERT INTO `[^`]+\._mta_ingest_loads`/.test(query?.query ?? '') &&
        JSON.stringify(query?.queryParameters).includes(`"${dropDate}"`)
      );
    },
    ...options,
  };
}

/**
 * Kill while the worker polls the week's load job: at a poll answered RUNNING (the job goes on
 * without it), or at one answered DONE (the job finished; the worker never heard).
 */
export function atJobPoll(dropDate: string, state: 'RUNNING' | 'DONE'): KillPoint {
  return {
    label: `${dropDate} job polled (${state})`,
    onRequest: (r, status) =>
      r.method === 'GET' &&
      r.path.includes('/jobs/') &&
      r.path.includes(`_${compact(dropDate)}_`) &&
      status === 200,
    // The insert answers states[0] and the n-th poll states[n-1]: the first poll answers `state`.
    jobStates: state === 'RUNNING' ? ['RUNNING', 'DONE'] : ['DONE'],
  };
}

export interface RunRequest {
  target: CrashTarget;
  sourceUrl: string;
  force?: boolean;
  kill?: KillPoint;
  router?: StandinRouter;
}

type JobStates = NonNullable<KillPoint['jobStates']>;

/** The dataset a stand-in request is about: jobs name it in their configuration or their id. */
function datasetOf(request: StandinRequest): string | undefined {
  const body = request.body as { configuration?: JobConfiguration } | undefined;
  return (
    datasetOfJob(body?.configuration) ??
    /\/(?:jobs|queries)\/mta_ingest_(?:load|record)_(.+)_\d{8}_[0-9a-f]{64}/.exec(request.path)?.[1]
  );
}

/** The dataset a job is about: a load's destination, or the table a query names (`p.d.t`). */
function datasetOfJob(configuration: JobConfiguration | undefined): string | undefined {
  const loaded = configuration?.load?.destinationTable?.datasetId;
  if (typeof loaded === 'string') return loaded;
  return /`[^`.]+\.([^`.]+)\.[^`.]+`/.exec(configuration?.query?.query ?? '')?.[1];
}

/**
 * One stand-in serves trials that run side by side, each in its own dataset: this routes its
 * hook (the kill) and its job states to the run whose dataset a request is about.
 */
export class StandinRouter {
  readonly standin: BigQueryStandin;
  private readonly routes = new Map<
    string,
    { states: JobStates; hook: (request: StandinRequest, status: number) => Promise<void> }
  >();

  constructor(standin: BigQueryStandin) {
    this.standin = standin;
    standin.defaultScript((configuration) => ({
      states: this.routes.get(String(datasetOfJob(configuration)))?.states ?? ['DONE'],
    }));
    standin.beforeResponse(async (request, status) => {
      const dataset = datasetOf(request);
      if (dataset !== undefined) await this.routes.get(dataset)?.hook(request, status);
    });
  }

  route(
    dataset: string,
    states: JobStates,
    hook: (request: StandinRequest, status: number) => Promise<void>,
  ): () => void {
    this.routes.set(dataset, { states, hook });
    return () => void this.routes.delete(dataset);
  }
}

/**
 * One CLI run over both weeks; killed with SIGKILL at `kill`. Resolves when the process has
 * exited. A run whose kill point never came runs to its end (`killed` false).
 */
export function runOnce(request: RunRequest): Promise<RunOutcome> {
  const { target, kill, router } = request;
  const args = [
    CLI,
    'run',
    '--from',
    SMALL_WEEK,
    '--to',
    REAL_WEEK,
    '--source-url',
    request.sourceUrl,
    '--log-level',
    'debug',
    '--fetch-backoff-ms',
    '10',
    ...target.args,
    ...(request.force ? ['--force'] : []),
  ];
  const child = spawn(process.execPath, args, {
    // The harness's weeks are one station's file (842 lines): accepted past the gate.
    env: { ...process.env, MTA_INGEST_NOW: NOW, MTA_INGEST_ACCEPT: 'all', ...target.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('exit', (code, signal) => resolve([code, signal])),
  );
  let killed = false;
  /** The stand-in request the kill came at, for telling where it landed. */
  let killedAt: string | undefined;
  const killNow = (): void => {
    if (killed) return;
    killed = true;
    child.kill('SIGKILL');
  };
  const events: LogEvent[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  const lines = createInterface({ input: child.stderr });
  lines.on('line', (line) => {
    stderr += `${line}\n`;
    let event: LogEvent;
    try {
      event = JSON.parse(line) as LogEvent;
    } catch {
      return;
    }
    events.push(event);
    if (kill?.onEvent?.(event)) killNow();
  });
  const stdoutDone = new Promise<void>((resolve) => child.stdout.once('close', () => resolve()));
  const stderrDone = new Promise<void>((resolve) => lines.once('close', () => resolve()));
  const unroute =
    router && target.dataset !== undefined
      ? router.route(target.dataset, kill?.jobStates ?? ['DONE'], async (r, status) => {
          if (killed || !kill?.onRequest?.(r, status)) return;
          killedAt = `${r.method} ${r.path.includes('/jobs/') ? 'job' : 'jobs'}`;
          killNow();
          // The answer goes out only once the worker is dead: it never learns of it.
          await exited;
        })
      : undefined;
  return (async () => {
    const [code, signal] = await exited;
    await Promise.all([stdoutDone, stderrDone]);
    unroute?.();
    if (kill?.finishJobs) await router?.standin.finishAll();
    return { code, signal, killed: killed && signal === 'SIGKILL', killedAt, events, stdout, stderr };
  })();
}

/** What a clean run leaves: per week its totals, rejects (so which objects exist). */
export interface Reference {
  weeks: Map<string, { rows: number; entries: bigint; exits: bigint }>;
  rejects: Map<string, number>;
  /** Each week's source sha256: its version's own folder under _versions/ is expected too. */
  sha256: Map<string, string>;
}

export interface TrialResult {
  label: string;
  /** Where each kill landed: the last event the worker logged before it died. */
  landed: string[];
  /** A week missing or different in the warehouse when it should be there. */
  lost: boolean;
  duplicated: boolean;
  problems: string[];
  /** Findings that are not failures (printed with the summary). */
  notes: string[];
  ms: number;
}

export interface Summary {
  name: string;
  trials: TrialResult[];
  lost: number;
  duplicated: number;
  problems: string[];
  line: string;
}

/** The week's objects the lake must hold once a run has stored it (the rejects only with rejects). */
export function expectedKeys(reference: Reference): string[] {
  const keys: string[] = [];
  for (const date of WEEKS) {
    const k = weekKeys(date);
    keys.push(k.raw, k.parquet, k.manifest);
    const sha256 = reference.sha256.get(date);
    const version = `turnstile/_versions/drop_date=${date}/${sha256?.slice(0, 16)}/${k.raw
      .split('/')
      .at(-1)!
      .replace(/\.txt\.gz$/, '')}`;
    if (sha256 !== undefined)
      keys.push(`${version}.txt.gz`, `${version}.parquet`, version.replace(/[^/]+$/, 'version.json'));
    if ((reference.rejects.get(date) ?? 0) > 0) {
      keys.push(k.rejects);
      if (sha256 !== undefined) keys.push(`${version}.rejects.parquet`);
    }
  }
  return keys.sort();
}

const fmt = (t: { rows: number; entries: bigint; exits: bigint }): string =>
  `${t.rows} rows, entries ${t.entries}, exits ${t.exits}`;

/**
 * The invariants that hold at any moment, killed or not. `full`: every week must be there
 * (a target that held them before the killed run: a reload must never lose a week).
 */
async function checkAnyMoment(
  target: CrashTarget,
  reference: Reference,
  full: boolean,
  when: string,
  result: TrialResult,
): Promise<Map<string, WeekTotals>> {
  const warehouse = await target.warehouse();
  const lake = new Set(await target.lakeKeys());
  for (const [date, totals] of warehouse) {
    if (totals.duplicates > 0) {
      result.duplicated = true;
      result.problems.push(`${when}: ${date} has ${totals.duplicates} duplicated rows`);
    }
    const clean = reference.weeks.get(date);
    if (!clean) {
      result.problems.push(`${when}: the warehouse holds ${date}, which a clean run does not`);
      continue;
    }
    if (!lake.has(weekKeys(date).manifest)) {
      result.problems.push(`${when}: ${date} is in the warehouse without its manifest in the lake`);
    }
    const whole = totals.rows - totals.duplicates === clean.rows && totals.duplicates === 0;
    if (
      totals.duplicates === 0 &&
      (!whole || totals.entries !== clean.entries || totals.exits !== clean.exits)
    ) {
      result.lost = true;
      result.problems.push(`${when}: ${date} holds ${fmt(totals)}; a clean run ${fmt(clean)}`);
    }
  }
  if (full) {
    for (const date of reference.weeks.keys()) {
      if (!warehouse.has(date)) {
        result.lost = true;
        result.problems.push(`${when}: ${date}, loaded before the killed reload, is gone`);
      }
    }
  }
  return warehouse;
}

/** After the final run: the clean state, recorded and consistent, with nothing left over. */
export async function checkFinal(
  target: CrashTarget,
  reference: Reference,
  run: RunOutcome,
  result: TrialResult,
): Promise<void> {
  if (run.code !== 0) {
    result.problems.push(`final run: exit ${run.code} (${run.signal ?? 'no signal'}): ${run.stdout.trim()}`);
  }
  const warehouse = await checkAnyMoment(target, reference, true, 'after the rerun', result);
  if (warehouse.size !== reference.weeks.size) {
    result.problems.push(`after the rerun: the warehouse holds ${[...warehouse.keys()].join(', ')}`);
  }
  const keys = await target.lakeKeys();
  const expected = expectedKeys(reference);
  const extra = keys.filter((key) => !expected.includes(key));
  const missing = expected.filter((key) => !keys.includes(key));
  if (extra.length > 0) result.problems.push(`lake: left behind ${extra.join(', ')}`);
  if (missing.length > 0) result.problems.push(`lake: missing ${missing.join(', ')}`);
  for (const leftover of await target.leftovers()) result.problems.push(`left behind: ${leftover}`);
  for (const date of WEEKS) {
    const key = weekKeys(date).manifest;
    if (!keys.includes(key)) continue;
    let manifest: Manifest;
    try {
      manifest = parseManifest((await target.readObject(key)).toString('utf8'), key);
    } catch (error) {
      result.problems.push(`${date}: manifest unreadable: ${String(error)}`);
      continue;
    }
    const clean = reference.weeks.get(date);
    if (manifest.rows !== clean?.rows) result.problems.push(`${date}: manifest says ${manifest.rows} rows`);
    const jobIds = warehouse.get(date)?.jobIds ?? [];
    if (!manifest.load || manifest.load.rows !== clean?.rows) {
      result.problems.push(`${date}: the manifest records no load of its ${manifest.rows} rows`);
    } else if (!jobIds.includes(manifest.load.jobId)) {
      // The load it records is of this source version (its job id carries the sha256; the
      // rows are checked above), but the rows the warehouse holds were put there by another
      // load of the same version: see the note in the suite.
      if (!jobIds.every((id) => id.includes(manifest.source.sha256.slice(0, 16)))) {
        result.problems.push(
          `${date}: the manifest records load ${manifest.load.jobId}, the warehouse holds ${jobIds.join(', ') || '(none)'}`,
        );
      } else {
        result.notes.push(
          `${date}: the rows are from ${jobIds.join(', ')}, the manifest records ${manifest.load.jobId} (same source version)`,
        );
      }
    }
    const objects = [manifest.objects.raw, manifest.objects.parquet, manifest.objects.rejects];
    for (const object of objects) {
      if (!object) continue;
      if (!keys.includes(object.key)) {
        result.problems.push(`${date}: the manifest names ${object.key}, which is not in the lake`);
        continue;
      }
      const bytes = await target.readObject(object.key);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (sha256 !== object.sha256 || bytes.length !== object.bytes) {
        result.problems.push(`${date}: ${object.key} in the lake is not the object its manifest describes`);
      }
    }
  }
}

/** The last event the worker logged before it died: where the kill landed. */
function landing(run: RunOutcome): string {
  if (!run.killed) return `not killed (exit ${run.code})`;
  const last = run.events.filter((e) => e.event !== undefined).at(-1);
  if (!last) return 'before its first event';
  const extra = last.object === undefined ? '' : ` ${last.object}`;
  const after = `after ${last.dropDate ? `${last.dropDate} ` : ''}${last.event}${extra}`;
  return run.killedAt ? `at the stand-in's ${run.killedAt} (${after})` : after;
}

export interface TrialRequest {
  trial: Trial;
  target: CrashTarget;
  reference: Reference;
  sourceUrl: string;
  router?: StandinRouter;
}

export function newResult(label: string): TrialResult {
  return { label, landed: [], lost: false, duplicated: false, problems: [], notes: [], ms: 0 };
}

/** One trial: the killed runs (checked after each), then the rerun (checked in full). */
export async function runTrial(request: TrialRequest): Promise<TrialResult> {
  const { trial, target, reference, sourceUrl, router } = request;
  const started = performance.now();
  const result = newResult(trial.label);
  for (const [index, kill] of trial.kills.entries()) {
    const force = trial.force === true && index === 0;
    const run = await runOnce({ target, sourceUrl, kill, force, router });
    result.landed.push(landing(run));
    if (!run.events.some((e) => kill.onEvent?.(e)) && kill.onEvent) {
      result.problems.push(`kill point "${kill.label}" never came (exit ${run.code})`);
    }
    if (!run.killed && kill.onRequest) {
      result.problems.push(`kill point "${kill.label}" never came (exit ${run.code})`);
    }
    await checkAnyMoment(
      target,
      reference,
      trial.force === true,
      `after kill ${index + 1} (${kill.label})`,
      result,
    );
  }
  const final = await runOnce({ target, sourceUrl, router });
  await checkFinal(target, reference, final, result);
  result.ms = performance.now() - started;
  return result;
}

export function summarise(name: string, trials: TrialResult[]): Summary {
  const lost = trials.filter((t) => t.lost).length;
  const duplicated = trials.filter((t) => t.duplicated).length;
  const problems = trials.flatMap((t) => t.problems.map((p) => `${t.label}: ${p}`));
  const line = `${name}: ${trials.length} trials, ${lost} lost, ${duplicated} duplicated`;
  return { name, trials, lost, duplicated, problems, line };
}

/** The per-trial table printed under the summary line. */
export function describeTrials(trials: TrialResult[]): string {
  return trials
    .map(
      (t) =>
        `  ${t.label.padEnd(44)} ${(t.ms / 1000).toFixed(1).padStart(5)} s  killed ${t.landed.join('; then ')}` +
        (t.problems.length > 0 ? `\n    PROBLEMS: ${t.problems.join('\n    ')}` : '') +
        (t.notes.length > 0 ? `\n    note: ${t.notes.join('\n    note: ')}` : ''),
    )
    .join('\n');
}

// ---- targets ----

/** The scratch folders and WAL a run leaves when it is killed: none may outlive the rerun. */
async function workDirLeftovers(workDir: string): Promise<string[]> {
  if (!existsSync(workDir)) return [];
  return (await readdir(workDir))
    .filter((name) => name.startsWith('mta-ingest-'))
    .map((name) => `work dir: ${name}`);
}

/**
 * A local lake and a DuckDB warehouse under `dir` (lake/, wh.duckdb, work/). The warehouse is
 * read from a copy (with its WAL), so reading never checkpoints what the rerun must face.
 */
export async function localTarget(dir: string): Promise<CrashTarget> {
  const lake = join(dir, 'lake');
  const file = join(dir, 'wh.duckdb');
  const work = join(dir, 'work');
  await mkdir(work, { recursive: true });
  return {
    name: 'local lake + DuckDB',
    args: ['--lake', lake, '--warehouse', file, '--work-dir', work],
    env: {},
    warehouse: () => duckdbTotals(file),
    async lakeKeys() {
      if (!existsSync(lake)) return [];
      return (await readdir(lake, { recursive: true, withFileTypes: true }))
        .filter((entry) => entry.isFile())
        .map((entry) =>
          join(entry.parentPath, entry.name)
            .slice(lake.length + 1)
            .split(sep)
            .join('/'),
        )
        .sort();
    },
    readObject: (key) => readFile(join(lake, ...key.split('/'))),
    async leftovers() {
      const left = await workDirLeftovers(work);
      if (existsSync(`${file}.wal`)) left.push('wh.duckdb.wal');
      return left;
    },
  };
}

/** Totals per drop date in a DuckDB warehouse file (read from a copy). */
export async function duckdbTotals(file: string): Promise<Map<string, WeekTotals>> {
  const totals = new Map<string, WeekTotals>();
  if (!existsSync(file)) return totals;
  const copy = await mkdtemp(join(tmpdir(), 'crash-wh-'));
  try {
    await copyFile(file, join(copy, 'wh.duckdb'));
    if (existsSync(`${file}.wal`)) await copyFile(`${file}.wal`, join(copy, 'wh.duckdb.wal'));
    const instance = await DuckDBInstance.create(':memory:');
    const db = await instance.connect();
    try {
      await db.run(`ATTACH '${join(copy, 'wh.duckdb')}' AS w`);
      const tables = (
        await db.runAndReadAll(`SELECT table_name FROM duckdb_tables() WHERE database_name = 'w'`)
      )
        .getRows()
        .map(([name]) => String(name));
      if (!tables.includes('turnstile_readings')) return totals;
      const rows = await db.runAndReadAll(`SELECT drop_date::VARCHAR, count(*)::BIGINT,
          sum(entries)::VARCHAR, sum(exits)::VARCHAR,
          (count(*) - count(DISTINCT (source_file, source_line)))::BIGINT
        FROM w.turnstile_readings GROUP BY ALL`);
      for (const [date, n, entries, exits, duplicates] of rows.getRows()) {
        totals.set(String(date), {
          rows: Number(n),
          entries: BigInt(String(entries ?? '0')),
          exits: BigInt(String(exits ?? '0')),
          duplicates: Number(duplicates),
          jobIds: [],
        });
      }
      if (tables.includes('_mta_ingest_loads')) {
        const loads = await db.runAndReadAll(`SELECT drop_date::VARCHAR, job_id FROM w._mta_ingest_loads`);
        for (const [date, jobId] of loads.getRows()) totals.get(String(date))?.jobIds.push(String(jobId));
      }
      return totals;
    } finally {
      db.closeSync();
      instance.closeSync();
    }
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}

export interface GcsTargetOptions {
  gcsUrl: string;
  bucket: string;
  /** The lake's prefix in the bucket (one per target). */
  prefix: string;
  standin: BigQueryStandin;
  project: string;
  /** The BigQuery dataset (one per target). */
  dataset: string;
  workDir: string;
}

/** The table the stand-in holds for a dataset. */
export const TABLE_KEY = (project: string, dataset: string): string =>
  `${project}.${dataset}.turnstile_readings`;

/**
 * A GCS lake (fake-gcs-server) and a BigQuery warehouse (the stand-in, which holds what its
 * load jobs really read from the lake), reached as the CLI reaches emulators.
 */
export async function gcsTarget(options: GcsTargetOptions): Promise<CrashTarget> {
  const { gcsUrl, bucket, prefix, standin, project, dataset, workDir } = options;
  await mkdir(workDir, { recursive: true });
  const objectUrl = (key: string): string =>
    `${gcsUrl}/storage/v1/b/${bucket}/o/${encodeURIComponent(`${prefix}/${key}`)}?alt=media`;
  return {
    name: 'GCS lake + BigQuery',
    dataset,
    args: [
      '--lake',
      `gs://${bucket}/${prefix}`,
      '--warehouse',
      `bigquery://${project}/${dataset}`,
      '--work-dir',
      workDir,
    ],
    env: {
      MTA_INGEST_GCS_EMULATOR: gcsUrl,
      MTA_INGEST_BIGQUERY_EMULATOR: standin.url,
      METADATA_SERVER_DETECTION: 'none',
    },
    warehouse() {
      const totals = new Map<string, WeekTotals>();
      for (const [partition, chunks] of standin.partitions.get(TABLE_KEY(project, dataset)) ?? []) {
        if (chunks.length === 0) continue;
        const date = `${partition.slice(0, 4)}-${partition.slice(4, 6)}-${partition.slice(6, 8)}`;
        totals.set(date, {
          rows: chunks.reduce((sum, c) => sum + c.rows, 0),
          entries: chunks.reduce((sum, c) => sum + (c.sums.entries ?? 0n), 0n),
          exits: chunks.reduce((sum, c) => sum + (c.sums.exits ?? 0n), 0n),
          // Every chunk after the first is a second load of the week.
          duplicates: chunks.slice(1).reduce((sum, c) => sum + c.rows, 0),
          jobIds: chunks.map((c) => c.jobId),
        });
      }
      return Promise.resolve(totals);
    },
    async lakeKeys() {
      const response = await fetch(
        `${gcsUrl}/storage/v1/b/${bucket}/o?prefix=${encodeURIComponent(`${prefix}/`)}`,
      );
      const listing = (await response.json()) as { items?: { name: string }[] };
      return (listing.items ?? []).map((item) => item.name.slice(prefix.length + 1)).sort();
    },
    async readObject(key) {
      const response = await fetch(objectUrl(key));
      if (response.status !== 200) throw new Error(`${key}: HTTP ${response.status}`);
      return Buffer.from(await response.arrayBuffer());
    },
    leftovers: () => workDirLeftovers(workDir),
  };
}

/**
 * Runs trials `parallel` at a time (each on its own target), then the `--force` trials one by
 * one (they share the loaded target). Results come back in the trials' order.
 */
export async function runTrials(
  trials: Trial[],
  options: {
    parallel: number;
    fresh: () => Promise<CrashTarget>;
    loaded: CrashTarget;
    reference: Reference;
    sourceUrl: string;
    router?: StandinRouter;
  },
): Promise<TrialResult[]> {
  const results: TrialResult[] = new Array<TrialResult>(trials.length);
  const run = async (index: number, target: CrashTarget): Promise<void> => {
    results[index] = await runTrial({ ...options, trial: trials[index]!, target });
  };
  const independent = trials.map((trial, index) => ({ trial, index })).filter(({ trial }) => !trial.force);
  let next = 0;
  await Promise.all(
    Array.from({ length: options.parallel }, async () => {
      while (next < independent.length) {
        const { index } = independent[next++]!;
        await run(index, await options.fresh());
      }
    }),
  );
  for (const [index, trial] of trials.entries()) if (trial.force) await run(index, options.loaded);
  return results;
}
