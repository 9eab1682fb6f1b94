/**
 * Run metrics: the Prometheus text rendering, the textfile and Pushgateway sinks, and the CLI's
 * `run --metrics-file --pushgateway` end to end: the real week from a loopback source server,
 * pushed to a real Pushgateway (Debian's prometheus-pushgateway) and read back from its /metrics.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/pipeline/week-result.ts';
import { renderRunMetrics } from '../../src/metrics/run-metrics.ts';
import { pushUrlFor, readLastSuccess, writeMetricsFile } from '../../src/metrics/metrics-sinks.ts';
import { metricsTargetsOf, publishRunMetrics } from '../../src/metrics/publish-metrics.ts';
import { runCli } from '../support/harnesses/cli.ts';
import { freePort } from '../support/peers/fake-gcs.ts';
import { startPushgateway, type Pushgateway } from '../support/peers/pushgateway.ts';
import { REAL_WEEK_ROWS, realWeekFile, WEEK, FILE, NOW } from '../support/fixtures/real-week.ts';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';

// ---------------------------------------------------------------------------------------------
// A small parser of the text format, written here independently of the code under test.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  samples: Sample[];
  help: Map<string, string>;
  type: Map<string, string>;
}

function parseExposition(text: string): Exposition {
  const parsed: Exposition = { samples: [], help: new Map(), type: new Map() };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? parsed.help : parsed.type).set(meta[2]!, meta[3]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = sample[2] ?? '';
    const label = /([a-zA-Z_]\w*)="((?:[^"\\]|\\[\\"n])*)"(,|$)/y;
    while (label.lastIndex < body.length) {
      const m = label.exec(body);
      if (!m) throw new Error(`bad labels in ${JSON.stringify(line)}`);
      labels[m[1]!] = m[2]!.replace(/\\([\\"n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    parsed.samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return parsed;
}

/** The one sample of `name` whose labels include `labels`; fails if there is not exactly one. */
function valueOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = exposition.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length !== 1) {
    throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}`);
  }
  return found[0]!.value;
}

const has = (exposition: Exposition, name: string): boolean =>
  exposition.samples.some((s) => s.name === name);

// ---------------------------------------------------------------------------------------------

const SUMMARY: RunSummary = {
  runId: 'run-1',
  exitCode: 1,
  weeks: [
    {
      dropDate: '2023-06-03',
      outcome: 'loaded',
      sourceUrl: 'http://127.0.0.1/turnstile_230603.txt',
      rows: 253_237,
      rejects: 2,
      bytes: 33_174_178,
      seconds: 8.2,
      timings: { fetch: 1500, convert: 4250, measure: 300, store: 120, load: 2000 },
    },
    {
      dropDate: '2023-06-10',
      outcome: 'failed',
      sourceUrl: 'http://127.0.0.1/turnstile_230610.txt',
      bytes: 0,
      seconds: 0.5,
      timings: {},
      failedStage: 'fetch',
    },
  ],
};
const ENDED = new Date('2023-06-12T16:00:00.500Z');
const EARLIER_SUCCESS = 1_685_980_800; // 2023-06-05T16:00:00Z

describe('renderRunMetrics', () => {
  it('renders every metric, with HELP and TYPE, and job on every sample of a textfile', () => {
    const text = renderRunMetrics(SUMMARY, {
      job: 'mta_ingest',
      now: ENDED,
      previousLastSuccess: EARLIER_SUCCESS,
    });
    expect(text.split('\n')).toEqual([
      '# HELP mta_ingest_week_rows Rows of the week in the warehouse (loaded or already loaded).',
      '# TYPE mta_ingest_week_rows gauge',
      'mta_ingest_week_rows{job="mta_ingest",drop_date="2023-06-03"} 253237',
      '# HELP mta_ingest_week_rejects Source lines of the week that could not be typed.',
      '# TYPE mta_ingest_week_rejects gauge',
      'mta_ingest_week_rejects{job="mta_ingest",drop_date="2023-06-03"} 2',
      '# HELP mta_ingest_week_source_bytes Source bytes fetched for the week in this run.',
      '# TYPE mta_ingest_week_source_bytes gauge',
      'mta_ingest_week_source_bytes{job="mta_ingest",drop_date="2023-06-03"} 33174178',
      'mta_ingest_week_source_bytes{job="mta_ingest",drop_date="2023-06-10"} 0',
      '# HELP mta_ingest_week_stage_seconds Seconds each stage of the week took in this run.',
      '# TYPE mta_ingest_week_stage_seconds gauge',
      'mta_ingest_week_stage_seconds{job="mta_ingest",drop_date="2023-06-03",stage="fetch"} 1.5',
      'mta_ingest_week_stage_seconds{job="mta_ingest",drop_date="2023-06-03",stage="convert"} 4.25',
      'mta_ingest_week_stage_seconds{job="mta_ingest",drop_date="2023-06-03",stage="measure"} 0.3',
      'mta_ingest_week_stage_seconds{job="mta_ingest",drop_date="2023-06-03",stage="store"} 0.12',
      'mta_ingest_week_stage_seconds{job="mta_ingest",drop_date="2023-06-03",stage="load"} 2',
      "# HELP mta_ingest_week_outcome The week's outcome in this run: 1 for it, 0 for the others.",
      '# TYPE mta_ingest_week_outcome gauge',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-03",outcome="loaded"} 1',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-03",outcome="already-loaded"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-03",outcome="not-published"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-03",outcome="suspect"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-03",outcome="failed"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-03",outcome="interrupted"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-03",outcome="skipped"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-10",outcome="loaded"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-10",outcome="already-loaded"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-10",outcome="not-published"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-10",outcome="suspect"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-10",outcome="failed"} 1',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-10",outcome="interrupted"} 0',
      'mta_ingest_week_outcome{job="mta_ingest",drop_date="2023-06-10",outcome="skipped"} 0',
      '# HELP mta_ingest_run_weeks Weeks of the last run, by outcome.',
      '# TYPE mta_ingest_run_weeks gauge',
      'mta_ingest_run_weeks{job="mta_ingest",outcome="loaded"} 1',
      'mta_ingest_run_weeks{job="mta_ingest",outcome="already-loaded"} 0',
      'mta_ingest_run_weeks{job="mta_ingest",outcome="not-published"} 0',
      'mta_ingest_run_weeks{job="mta_ingest",outcome="suspect"} 0',
      'mta_ingest_run_weeks{job="mta_ingest",outcome="failed"} 1',
      'mta_ingest_run_weeks{job="mta_ingest",outcome="interrupted"} 0',
      'mta_ingest_run_weeks{job="mta_ingest",outcome="skipped"} 0',
      '# HELP mta_ingest_run_exit_code Exit code of the last run (0 ok, 1 failed, 3 not published, 4 suspect, 130/143 stopped by a signal).',
      '# TYPE mta_ingest_run_exit_code gauge',
      'mta_ingest_run_exit_code{job="mta_ingest"} 1',
      '# HELP mta_ingest_last_run_timestamp_seconds Unix time the last run ended.',
      '# TYPE mta_ingest_last_run_timestamp_seconds gauge',
      'mta_ingest_last_run_timestamp_seconds{job="mta_ingest"} 1686585600.5',
      '# HELP mta_ingest_last_success_timestamp_seconds Unix time a run last ended with exit code 0.',
      '# TYPE mta_ingest_last_success_timestamp_seconds gauge',
      'mta_ingest_last_success_timestamp_seconds{job="mta_ingest"} 1685980800',
      '',
    ]);
  });

  it('leaves the job label out of a push body (the Pushgateway URL carries it)', () => {
    const text = renderRunMetrics(
      { ...SUMMARY, exitCode: 0, weeks: [SUMMARY.weeks[0]!] },
      { job: 'mta_ingest', now: ENDED, target: 'pushgateway' },
    );
    expect(text).not.toContain('job=');
    expect(text).toContain('\nmta_ingest_week_rows{drop_date="2023-06-03"} 253237\n');
    expect(text).toContain('\nmta_ingest_run_exit_code 0\n');
    expect(text).toContain('\nmta_ingest_last_run_timestamp_seconds 1686585600.5\n');
    // Exit code 0: the last success is now, whatever came before.
    expect(text).toContain('\nmta_ingest_last_success_timestamp_seconds 1686585600.5\n');
  });

  it('escapes backslash, double quote and line feed in label values', () => {
    const text = renderRunMetrics(
      { runId: 'r', exitCode: 0, weeks: [] },
      { job: 'we"ird\\job\nname', now: ENDED },
    );
    expect(text).toContain('mta_ingest_run_exit_code{job="we\\"ird\\\\job\\nname"} 0\n');
    // And it reads back as the same value.
    expect(valueOf(parseExposition(text), 'mta_ingest_run_exit_code', { job: 'we"ird\\job\nname' })).toBe(0);
    // No sample line is split by the line feed: the run's weeks by each of the 7 outcomes, the
    // exit code, the last run and the last success.
    expect(text.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toHaveLength(10);
  });

  it('carries the last success of an earlier run over a failed run, and omits it when there was none', () => {
    const failed = { ...SUMMARY, exitCode: 1 as const };
    const carried = parseExposition(
      renderRunMetrics(failed, { job: 'j', now: ENDED, previousLastSuccess: EARLIER_SUCCESS }),
    );
    expect(valueOf(carried, 'mta_ingest_last_success_timestamp_seconds')).toBe(EARLIER_SUCCESS);
    expect(valueOf(carried, 'mta_ingest_last_run_timestamp_seconds')).toBe(1_686_585_600.5);

    const none = renderRunMetrics(failed, { job: 'j', now: ENDED });
    expect(none).not.toContain('mta_ingest_last_success_timestamp_seconds');
    // Exit code 3 (not published) is not a success either.
    const notPublished = renderRunMetrics(
      { runId: 'r', exitCode: 3, weeks: [] },
      { job: 'j', now: ENDED, previousLastSuccess: EARLIER_SUCCESS },
    );
    expect(valueOf(parseExposition(notPublished), 'mta_ingest_last_success_timestamp_seconds')).toBe(
      EARLIER_SUCCESS,
    );
  });

  it('renders the lag as mta_ingest_weeks_behind when it was read, and leaves it out when not', () => {
    const text = renderRunMetrics(SUMMARY, { job: 'j', now: ENDED, weeksBehind: 2 });
    const parsed = parseExposition(text);
    expect(valueOf(parsed, 'mta_ingest_weeks_behind', { job: 'j' })).toBe(2);
    expect(parsed.type.get('mta_ingest_weeks_behind')).toBe('gauge');
    expect(parsed.help.get('mta_ingest_weeks_behind')).toMatch(/^Weeks the warehouse is behind/);
    const pushed = renderRunMetrics(SUMMARY, { job: 'j', now: ENDED, weeksBehind: 0, target: 'pushgateway' });
    expect(pushed).toContain('\nmta_ingest_weeks_behind 0\n');
    expect(renderRunMetrics(SUMMARY, { job: 'j', now: ENDED })).not.toContain('mta_ingest_weeks_behind');
  });

  it('gives every family HELP and TYPE gauge, once, before its samples', () => {
    const text = renderRunMetrics(SUMMARY, { job: 'j', now: ENDED, previousLastSuccess: 1 });
    const parsed = parseExposition(text);
    const names = [...new Set(parsed.samples.map((s) => s.name))];
    expect(names).toHaveLength(9);
    for (const name of names) {
      expect(parsed.type.get(name), name).toBe('gauge');
      expect(parsed.help.get(name), name).toBeTruthy();
      expect(text.split(`# TYPE ${name} `)).toHaveLength(2);
      expect(text.indexOf(`# TYPE ${name} `)).toBeLessThan(text.indexOf(`\n${name}{`));
    }
  });
});

describe('the sinks', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mta-ingest-metrics-'));
    return () => rm(dir, { recursive: true, force: true });
  });

  it('writes the file atomically, leaving no temporary file, and reads the last success back', async () => {
    const path = join(dir, 'mta_ingest.prom');
    expect(await readLastSuccess(path)).toBeUndefined();
    await writeMetricsFile(path, 'old\n');
    const text = renderRunMetrics(SUMMARY, { job: 'a', now: ENDED, previousLastSuccess: EARLIER_SUCCESS });
    await writeMetricsFile(path, text);
    expect(await readFile(path, 'utf8')).toBe(text);
    expect(await readdir(dir)).toEqual(['mta_ingest.prom']);
    expect(await readLastSuccess(path)).toBe(EARLIER_SUCCESS);
    expect(await readLastSuccess(path, 'a')).toBe(EARLIER_SUCCESS);
    expect(await readLastSuccess(path, 'another job')).toBeUndefined();
    await writeFile(path, 'not metrics at all\n');
    expect(await readLastSuccess(path)).toBeUndefined();
  });

  it('a file that cannot be written is one line, and leaves no temporary file', async () => {
    const path = join(dir, 'missing-folder', 'x.prom');
    const problems = await publishRunMetrics(SUMMARY, { file: path, job: 'j' }, ENDED);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^cannot write .*missing-folder\/x\.prom: ENOENT/);
    expect(problems[0]).not.toContain('\n');
    expect(await readdir(dir)).toEqual([]);
  });

  it('builds the push URL from the job, base64 for a job with a slash', () => {
    expect(pushUrlFor('http://pgw:9091/', 'mta_ingest')).toBe('http://pgw:9091/metrics/job/mta_ingest');
    expect(pushUrlFor('http://pgw:9091', 'a b')).toBe('http://pgw:9091/metrics/job/a%20b');
    expect(pushUrlFor('http://pgw:9091', 'a/b')).toBe('http://pgw:9091/metrics/job@base64/YS9i');
  });

  it('refuses a pushgateway that is not an http(s) URL before the run (usage error)', () => {
    expect(() => metricsTargetsOf({ pushgateway: 'localhost:9091' }, {})).toThrow(/--pushgateway .* http/);
    expect(() => metricsTargetsOf({}, { MTA_INGEST_PUSHGATEWAY: 'ftp://x' })).toThrow(
      /MTA_INGEST_PUSHGATEWAY/,
    );
    expect(
      metricsTargetsOf({}, { MTA_INGEST_PUSHGATEWAY: 'http://pgw:9091/', MTA_INGEST_METRICS_FILE: 'm.prom' }),
    ).toEqual({ file: 'm.prom', pushgateway: 'http://pgw:9091', job: 'mta_ingest' });
  });
});

// ---------------------------------------------------------------------------------------------

const JOB = 'mta_ingest';

describe('run --metrics-file --pushgateway, the real week, a real Pushgateway', () => {
  let source: SourceServer;
  let gateway: Pushgateway;
  let realWeek: string;
  let dir: string;

  beforeAll(async () => {
    realWeek = await realWeekFile();
    source = await startSourceServer({ files: [{ name: FILE, path: realWeek }] });
    gateway = await startPushgateway();
  });
  afterAll(async () => {
    await source?.close();
    await gateway?.stop();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mta-ingest-metrics-run-'));
    source.fault(FILE, undefined);
    return () => rm(dir, { recursive: true, force: true });
  });

  const run = (...args: string[]) =>
    runCli(
      [
        'run',
        '--date',
        WEEK,
        '--source-url',
        source.baseUrl,
        '--lake',
        join(dir, 'lake'),
        '--warehouse',
        join(dir, 'wh.duckdb'),
        ...args,
      ],
      { env: { MTA_INGEST_NOW: NOW, MTA_INGEST_WORK_DIR: dir } },
    );
  const metricsFile = () => join(dir, 'mta_ingest.prom');
  const readFileMetrics = async () => parseExposition(await readFile(metricsFile(), 'utf8'));
  /** The gateway's samples of this tool, with the labels the gateway adds. */
  const readGateway = async () => {
    const all = parseExposition(await gateway.scrape());
    return { ...all, samples: all.samples.filter((s) => s.name.startsWith('mta_ingest_')) };
  };
  const metricsLines = (stderr: string) =>
    stderr.split('\n').filter((l) => l.startsWith('mta-ingest: metrics:'));

  it('writes and pushes a good run, then a failed run keeps the earlier last success in both', async () => {
    const before = Date.now() / 1000;
    const good = await run('--metrics-file', metricsFile(), '--pushgateway', gateway.url);
    const after = Date.now() / 1000;
    expect(good.code, good.stderr).toBe(0);
    expect(metricsLines(good.stderr)).toEqual([]);

    const file = await readFileMetrics();
    const week = { job: JOB, drop_date: WEEK };
    expect(valueOf(file, 'mta_ingest_week_rows', week)).toBe(REAL_WEEK_ROWS);
    expect(valueOf(file, 'mta_ingest_week_rejects', week)).toBe(0);
    expect(valueOf(file, 'mta_ingest_week_source_bytes', week)).toBe(33_174_178);
    for (const stage of ['fetch', 'convert', 'store', 'load']) {
      const seconds = valueOf(file, 'mta_ingest_week_stage_seconds', { ...week, stage });
      expect(seconds, stage).toBeGreaterThanOrEqual(0);
      expect(seconds, stage).toBeLessThan(120);
    }
    expect(valueOf(file, 'mta_ingest_week_outcome', { ...week, outcome: 'loaded' })).toBe(1);
    expect(valueOf(file, 'mta_ingest_week_outcome', { ...week, outcome: 'failed' })).toBe(0);
    expect(valueOf(file, 'mta_ingest_run_weeks', { job: JOB, outcome: 'loaded' })).toBe(1);
    expect(valueOf(file, 'mta_ingest_run_weeks', { job: JOB, outcome: 'failed' })).toBe(0);
    expect(valueOf(file, 'mta_ingest_run_exit_code', { job: JOB })).toBe(0);
    const success = valueOf(file, 'mta_ingest_last_success_timestamp_seconds', { job: JOB });
    // The wall clock when the run ended, not MTA_INGEST_NOW.
    expect(success).toBeGreaterThanOrEqual(Math.floor(before));
    expect(success).toBeLessThanOrEqual(after + 1);
    expect(valueOf(file, 'mta_ingest_last_run_timestamp_seconds', { job: JOB })).toBe(success);
    // Every sample of the textfile has the job label.
    expect(file.samples.every((s) => s.labels.job === JOB)).toBe(true);

    // The gateway serves the same samples, with the job from the URL (and an empty instance).
    const pushed = await readGateway();
    const key = (s: Sample) => JSON.stringify([s.name, Object.entries(s.labels).sort()]);
    const withGrouping = (s: Sample): Sample => ({ ...s, labels: { ...s.labels, instance: '' } });
    expect(new Map(pushed.samples.map((s) => [key(s), s.value]))).toEqual(
      new Map(file.samples.map((s) => [key(withGrouping(s)), s.value])),
    );
    expect(pushed.type.get('mta_ingest_week_rows')).toBe('gauge');
    expect(valueOf(pushed, 'mta_ingest_week_rows', week)).toBe(REAL_WEEK_ROWS);
    expect(valueOf(pushed, 'mta_ingest_last_success_timestamp_seconds', { job: JOB })).toBe(success);

    // Now the source fails: the week fails, the run exits 1.
    source.fault(FILE, { kind: 'status', status: 500 });
    const failed = await run(
      '--fetch-attempts',
      '1',
      '--metrics-file',
      metricsFile(),
      '--pushgateway',
      gateway.url,
    );
    expect(failed.code, failed.stderr).toBe(1);
    expect(metricsLines(failed.stderr)).toEqual([]);

    for (const [where, metrics] of [
      ['file', await readFileMetrics()],
      ['gateway', await readGateway()],
    ] as const) {
      expect(valueOf(metrics, 'mta_ingest_week_outcome', { ...week, outcome: 'failed' }), where).toBe(1);
      expect(valueOf(metrics, 'mta_ingest_week_outcome', { ...week, outcome: 'loaded' }), where).toBe(0);
      expect(valueOf(metrics, 'mta_ingest_run_weeks', { job: JOB, outcome: 'failed' }), where).toBe(1);
      expect(valueOf(metrics, 'mta_ingest_run_exit_code', { job: JOB }), where).toBe(1);
      expect(valueOf(metrics, 'mta_ingest_last_run_timestamp_seconds', { job: JOB }), where).toBeGreaterThan(
        success,
      );
      // The earlier success, unchanged.
      expect(valueOf(metrics, 'mta_ingest_last_success_timestamp_seconds', { job: JOB }), where).toBe(
        success,
      );
    }
    // The failed week did not measure anything this run: no rows in the (whole, replaced) file.
    expect(has(await readFileMetrics(), 'mta_ingest_week_rows')).toBe(false);
  });

  it('writes and pushes how many weeks the warehouse is behind after the run (mta_ingest_weeks_behind)', async () => {
    const at = (now: string, ...args: string[]) =>
      runCli(
        [
          'run',
          '--date',
          WEEK,
          '--source-url',
          source.baseUrl,
          '--lake',
          join(dir, 'lake'),
          '--warehouse',
          join(dir, 'wh.duckdb'),
          ...args,
        ],
        { env: { MTA_INGEST_NOW: now, MTA_INGEST_WORK_DIR: dir } },
      );
    const targets = ['--metrics-file', metricsFile(), '--pushgateway', gateway.url];
    // Loaded on the Monday after its Saturday: up to date.
    const fresh = await at(NOW, ...targets);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(valueOf(await readFileMetrics(), 'mta_ingest_weeks_behind', { job: JOB })).toBe(0);
    expect(valueOf(await readGateway(), 'mta_ingest_weeks_behind', { job: JOB })).toBe(0);
    // Two Saturdays later (2023-06-10 and 2023-06-17 due), the same week is all there is.
    const later = await at('2023-06-18T16:00:00Z', ...targets);
    expect(later.code, later.stderr).toBe(0);
    expect(metricsLines(later.stderr)).toEqual([]);
    for (const [where, metrics] of [
      ['file', await readFileMetrics()],
      ['gateway', await readGateway()],
    ] as const) {
      expect(valueOf(metrics, 'mta_ingest_weeks_behind', { job: JOB }), where).toBe(2);
      expect(valueOf(metrics, 'mta_ingest_run_exit_code', { job: JOB }), where).toBe(0);
    }
  });

  it('a Pushgateway that is down: one metrics line on stderr, the exit code unchanged, the file written', async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const result = await run('--metrics-file', metricsFile(), '--pushgateway', down);
    expect(result.code, result.stderr).toBe(0);
    const lines = metricsLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^mta-ingest: metrics: push to ${down}/metrics/job/mta_ingest failed: .*ECONNREFUSED`),
    );
    expect(valueOf(await readFileMetrics(), 'mta_ingest_run_exit_code', { job: JOB })).toBe(0);

    // A failed run stays a failed run (1), not a metrics problem.
    source.fault(FILE, { kind: 'status', status: 500 });
    const failed = await run('--fetch-attempts', '1', '--pushgateway', down);
    expect(failed.code).toBe(1);
    expect(metricsLines(failed.stderr)).toHaveLength(1);
  });

  it('a bad --pushgateway is a usage error before any request', async () => {
    source.requests.length = 0;
    const result = await run('--pushgateway', 'not a url');
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^mta-ingest: --pushgateway not a url/),
    ]);
    expect(source.requests).toHaveLength(0);
  });
});
