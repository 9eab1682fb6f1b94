/**
 * Bad input, property-based (fast-check), in two families:
 *
 * - command lines: bad dates, months, days, years, ranges and flag mixtures, and random strings
 *   in every value, for `run` and `plan`. Each must end with exit code 2 and exactly one line on
 *   stderr, `mta-ingest: …`, with no stack trace, nothing on stdout, nothing written, and no
 *   request to the source. Most cases call the CLI's `main` in-process (a child process costs
 *   ~0.5 s); a fixed sample of them also runs as a real child process.
 * - source lines: real lines of the real week, mutated (fields dropped, duplicated, swapped,
 *   emptied; quotes, commas, unicode, invalid UTF-8, control bytes, huge and negative numbers,
 *   truncation, CRLF), served as a small week and run through the whole pipeline. Every data
 *   line must end up exactly once, as a row or as a reject, and the week must load (exit 0).
 *
 * The generators for bad command lines are bad by construction, not by asking the code under
 * test; failures print fast-check's seed and the shrunk counterexample.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runCli } from '../support/harnesses/cli.ts';
import { inProcess, type Outcome } from '../support/harnesses/in-process-cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { filesUnder, realLines } from '../support/fixtures/week-sample.ts';
import { resolveConfig } from '../../src/config.ts';
import { runCommand } from '../../src/commands/run.ts';
import { silentLogger } from '../../src/log.ts';
import { weekKeys } from '../../src/lake/lake-layout.ts';
import type { Manifest } from '../../src/manifest/manifest.ts';
import { WEEK, NOW } from '../support/fixtures/real-week.ts';

const TODAY = '2023-06-05';
const FIRST = '2010-05-05';
/** Mutated weeks per run (~0.2 s each); PROPERTY_WEEK_RUNS=1000 for a deeper search. */
const WEEK_RUNS = Number(process.env.PROPERTY_WEEK_RUNS ?? 60);

let source: SourceServer;
let root: string;

beforeAll(async () => {
  source = await startSourceServer();
  root = await mkdtemp(join(tmpdir(), 'mta-ingest-properties-'));
});
afterAll(async () => {
  await source.close();
  await rm(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------- command lines

/** Calendar arithmetic of the test's own, in UTC days (independent of src/dates). */
const DAY_MS = 86_400_000;
const dayOf = (iso: string): number => Date.parse(`${iso}T00:00:00Z`) / DAY_MS;
const isoOf = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10);
const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** A real calendar date in [min, max]. */
const dateBetween = (min: string, max: string): fc.Arbitrary<string> =>
  fc.integer({ min: dayOf(min), max: dayOf(max) }).map(isoOf);

/** Any text at all, control characters and astral code points included. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: 'grapheme', maxLength: 24 }),
  fc.constantFrom('', ' ', '\n', '\r\n', '\u0000', '\u001b[31m', '../../etc/passwd', "'; DROP TABLE x; --"),
);

/** Not strictly YYYY-MM-DD. */
const malformedDate = fc
  .oneof(
    anyText,
    fc
      .tuple(fc.integer({ min: 0, max: 99_999 }), fc.nat(99), fc.nat(99))
      .map(([y, m, d]) => `${y}-${m}-${d}`),
    dateBetween(FIRST, TODAY).map((d) => d.replaceAll('-', '/')),
    dateBetween(FIRST, TODAY).map((d) => ` ${d}`),
    dateBetween(FIRST, TODAY).map((d) => `${d}T00:00:00Z`),
    dateBetween(FIRST, TODAY).map((d) => `+${d}`),
  )
  .filter((value) => !/^\d{4}-\d{2}-\d{2}$/.test(value));

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeap = (y: number): boolean => y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);

/** YYYY-MM-DD in shape, but no such day: month 00 or 13+, day 00 or past the month's end. */
const impossibleDate = fc
  .tuple(
    fc.integer({ min: 2010, max: 2023 }),
    fc.integer({ min: 0, max: 99 }),
    fc.integer({ min: 0, max: 99 }),
  )
  .filter(([y, m, d]) => {
    if (m < 1 || m > 12 || d < 1) return true;
    const last = m === 2 && !isLeap(y) ? 28 : (DAYS_IN_MONTH[m - 1] ?? 0);
    return d > last;
  })
  .map(([y, m, d]) => `${y}-${pad(m)}-${pad(d)}`);

const futureDate = dateBetween('2023-06-06', '9999-12-31');
const beforeFirstDate = dateBetween('0001-01-01', '2010-05-04');
/** On the calendar, published era, but not a Saturday (and not the first file's Wednesday). */
const notADropDate = dateBetween(FIRST, TODAY).filter(
  (d) => d !== FIRST && new Date(`${d}T00:00:00Z`).getUTCDay() !== 6,
);
const badDate = fc.oneof(malformedDate, impossibleDate, futureDate, beforeFirstDate, notADropDate);

/** A --year that is not a published year up to today (2010..2023). */
const badYear = fc.oneof(
  anyText,
  fc.integer({ min: -99_999, max: 2009 }).map(String),
  fc.integer({ min: 2024, max: 99_999 }).map(String),
  fc.constantFrom('2023.0', '+2023', ' 2023', '2k23', '0x7e7', '02023'),
);
/** A --month that is not 1..12 (as 1 or 01). */
const badMonth = fc
  .oneof(anyText, fc.integer({ min: -99, max: 999 }).map(String), fc.constantFrom('6.0', '+6', 'June', '0x6'))
  .filter((m) => !/^(0?[1-9]|1[0-2])$/.test(m));
/** A --day of June 2023 that is not its one drop date so far (the 3rd). */
const badJuneDay = fc
  .oneof(anyText, fc.integer({ min: -99, max: 999 }).map(String))
  .filter((d) => !/^0?3$/.test(d));

type Flags = [string, string][];

/** Flag lists that are refused whatever their values are: the flags do not go together. */
const someOf = (names: string[], value: fc.Arbitrary<string>): fc.Arbitrary<Flags> =>
  fc
    .shuffledSubarray(names, { minLength: 1 })
    .chain((picked) => fc.tuple(...picked.map((name) => value.map((v): [string, string] => [name, v]))));
const anyValue = fc.oneof(anyText, dateBetween(FIRST, TODAY), fc.constantFrom('2023', '6', '3'));

const BAD_SELECTIONS: Record<string, fc.Arbitrary<Flags>> = {
  '--date, bad': badDate.map((d) => [['--date', d]]),
  // A range may start on any day, even before the first file: only these are wrong.
  '--from, bad': fc.oneof(malformedDate, impossibleDate, futureDate).map((d) => [['--from', d]]),
  '--from ok, --to bad': fc
    .tuple(dateBetween(FIRST, '2023-06-03'), fc.oneof(malformedDate, impossibleDate, futureDate))
    .map(([from, to]) => [
      ['--from', from],
      ['--to', to],
    ]),
  '--from after --to': fc
    .tuple(dateBetween(FIRST, TODAY), dateBetween(FIRST, TODAY))
    .filter(([a, b]) => a > b)
    .map(([from, to]) => [
      ['--from', from],
      ['--to', to],
    ]),
  'a range with no Saturday in it': dateBetween('2010-05-06', TODAY)
    .filter((d) => new Date(`${d}T00:00:00Z`).getUTCDay() === 0)
    .chain((sunday) =>
      fc.integer({ min: 0, max: 5 }).map((days): Flags => [
        ['--from', sunday],
        ['--to', isoOf(dayOf(sunday) + days)],
      ]),
    ),
  '--year, bad': badYear.map((y) => [['--year', y]]),
  '--year --month, bad month': badMonth.map((m) => [
    ['--year', '2023'],
    ['--month', m],
  ]),
  '--year --month, in the future': fc.integer({ min: 7, max: 12 }).map((m) => [
    ['--year', '2023'],
    ['--month', String(m)],
  ]),
  '--year --month --day, bad day': badJuneDay.map((d) => [
    ['--year', '2023'],
    ['--month', '6'],
    ['--day', d],
  ]),
  '--date with any other selection flag': fc
    .tuple(anyValue, someOf(['--year', '--month', '--day', '--from', '--to'], anyValue))
    .map(([date, others]) => [['--date', date], ...others]),
  '--year/--month/--day with --from/--to': fc
    .tuple(someOf(['--year', '--month', '--day'], anyValue), someOf(['--from', '--to'], anyValue))
    .map(([calendar, range]) => [...calendar, ...range]),
  '--to without --from': anyValue.map((to) => [['--to', to]]),
  '--month/--day without --year': someOf(['--month', '--day'], anyValue).filter((flags) =>
    flags.some(([name]) => name === '--month'),
  ),
  '--day without --month': anyValue.map((day) => [
    ['--year', '2023'],
    ['--day', day],
  ]),
};

/** Bad values of the other settings: each refused before any request. */
const BAD_SETTINGS: Record<string, fc.Arbitrary<Flags>> = {
  '--source-url, not an http(s) URL': anyText
    .filter((u) => !/^https?:\/\/[^/\s]+/i.test(u))
    .map((u) => [['--source-url', u]]),
  '--fetch-attempts, not a whole number >= 1': anyText
    .filter((v) => !/^\d{1,9}$/.test(v) || Number(v) < 1)
    .map((v) => [['--fetch-attempts', v]]),
  '--fetch-timeout-ms, not a whole number >= 1': anyText
    .filter((v) => !/^\d{1,9}$/.test(v) || Number(v) < 1)
    .map((v) => [['--fetch-timeout-ms', v]]),
  '--log-level, not a level': anyText
    .filter((v) => !['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(v))
    .map((v) => [['--log-level', v]]),
  '--log-format, not a format': anyText
    .filter((v) => !['text', 'json'].includes(v))
    .map((v) => [['--log-format', v]]),
  'an unknown option': fc
    .stringMatching(/^--[a-z][a-z-]{0,15}$/)
    .filter(
      (name) =>
        !/^--(date|year|month|day|from|to|week-of|missing|catch-up-weeks|source-url|lake|warehouse|work-dir|block|fetch-(timeout-ms|attempts|backoff-ms)|log-(level|format)|force|strict|quiet|json|metrics-(file|job)|pushgateway|help|version)$/.test(
          name,
        ),
    )
    .map((name) => [[name, 'x']]),
  'a stray argument': fc
    .string({ minLength: 1, maxLength: 12 })
    .filter((s) => !s.startsWith('-'))
    .map((s) => [['', s]]),
};

/** One case: a command, flags in some order, and which family it comes from. */
interface ArgvCase {
  family: string;
  argv: string[];
}

function argvCase(family: string, flags: fc.Arbitrary<Flags>): fc.Arbitrary<ArgvCase> {
  return fc.tuple(fc.constantFrom('run', 'plan'), flags).map(([command, pairs]) => ({
    family,
    argv: [command, ...pairs.flatMap(([name, value]) => (name === '' ? [value] : [name, value]))],
  }));
}

const BAD_COMMAND_LINES = fc.oneof(
  ...Object.entries({ ...BAD_SELECTIONS, ...BAD_SETTINGS }).map(([family, flags]) => argvCase(family, flags)),
);

/** Where a case would write: settings that point into a folder of its own. */
function targetArgs(dir: string): string[] {
  return ['--source-url', source.baseUrl, '--lake', join(dir, 'lake'), '--warehouse', join(dir, 'wh.duckdb')];
}

/** Exactly one line, ours, printable: no stack frame, no control character, no second line. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must not appear
const ONE_LINE = /^mta-ingest: [^\u0000-\u001f\u007f\u0085\u2028\u2029]+\n$/u;

function expectRefused(c: ArgvCase, outcome: Outcome): void {
  const shown = `${c.family}: ${JSON.stringify(c.argv)}\nstderr: ${JSON.stringify(outcome.stderr)}`;
  expect(outcome.code, shown).toBe(2);
  expect(outcome.stderr, shown).toMatch(ONE_LINE);
  expect(outcome.stderr, shown).not.toMatch(/^\s+at /m);
  expect(outcome.stdout, shown).toBe('');
}

describe('bad command lines', () => {
  const env = { MTA_INGEST_NOW: NOW, METADATA_SERVER_DETECTION: 'none' };
  // Flags given last win in commander, so the targets go first: a case's own --source-url stays.
  const casesRun = { count: 0 };

  it('each family, in-process: exit 2, one line, no request, nothing written', async () => {
    const dir = join(root, 'in-process');
    const target = targetArgs(dir);
    await fc.assert(
      fc.asyncProperty(BAD_COMMAND_LINES, async (c) => {
        casesRun.count += 1;
        const [command, ...rest] = c.argv;
        expectRefused(
          c,
          await inProcess([command!, ...target, ...rest], { ...env, MTA_INGEST_WORK_DIR: dir }),
        );
      }),
      { numRuns: 1_500 },
    );
    expect(source.requests).toEqual([]);
    expect(await filesUnder(dir)).toEqual([]);
    expect(casesRun.count).toBeGreaterThanOrEqual(1_500);
  });

  it('every family is refused from a real child process too (a fixed sample of 20)', async () => {
    const dir = join(root, 'child');
    const target = targetArgs(dir);
    const families = Object.entries({ ...BAD_SELECTIONS, ...BAD_SETTINGS });
    const sample = fc
      .sample(fc.tuple(...families.map(([family, flags]) => argvCase(family, flags))), {
        numRuns: 1,
        seed: 6,
      })[0]!
      .concat(fc.sample(BAD_COMMAND_LINES, { numRuns: 20 - families.length, seed: 7 }))
      // execFile cannot pass a NUL byte in an argument; the in-process runs cover those.
      .filter((c) => !c.argv.some((arg) => arg.includes('\u0000')));
    expect(sample.length).toBeGreaterThanOrEqual(18);
    for (let i = 0; i < sample.length; i += 5) {
      await Promise.all(
        sample.slice(i, i + 5).map(async (c) => {
          const [command, ...rest] = c.argv;
          expectRefused(
            c,
            await runCli([command!, ...target, ...rest], { env: { ...env, MTA_INGEST_WORK_DIR: dir } }),
          );
        }),
      );
    }
    expect(source.requests).toEqual([]);
    expect(await filesUnder(dir)).toEqual([]);
  });
});

// ---------------------------------------------------------------- source lines

/** A mutation of one line's bytes (latin1 string: one char per byte). */
type Mutation = (line: string) => string;

const fieldsOf = (line: string): string[] => line.split(',');
const at = (n: number, length: number): number => (length === 0 ? 0 : n % length);

/** Each mutation, from a generator of its parameters. */
const MUTATIONS: fc.Arbitrary<Mutation>[] = [
  fc.nat().map(
    (i) => (line) =>
      fieldsOf(line)
        .filter((_, k, all) => k !== at(i, all.length))
        .join(','),
  ),
  fc.nat().map((i) => (line) => {
    const fields = fieldsOf(line);
    const k = at(i, fields.length);
    return [...fields.slice(0, k + 1), ...fields.slice(k)].join(',');
  }),
  fc.tuple(fc.nat(), fc.nat()).map(([i, j]) => (line) => {
    const fields = fieldsOf(line);
    const [a, b] = [at(i, fields.length), at(j, fields.length)];
    [fields[a], fields[b]] = [fields[b]!, fields[a]!];
    return fields.join(',');
  }),
  fc.tuple(fc.nat(), fc.constantFrom('', ' ', '   ')).map(([i, blank]) => (line) => {
    const fields = fieldsOf(line);
    fields[at(i, fields.length)] = blank;
    return fields.join(',');
  }),
  // Inserted text: quotes, commas, unicode (as UTF-8 bytes), control bytes, invalid UTF-8.
  fc
    .tuple(
      fc.nat(),
      fc.oneof(
        fc.constantFrom(
          '"',
          "'",
          ',',
          '""',
          '\\',
          '\t',
          '\r',
          '\u0000',
          '\u001b',
          '\u00ff',
          '\u00c3',
          '\u0080',
        ),
        fc
          .string({ unit: 'grapheme', minLength: 1, maxLength: 6 })
          .map((s) => Buffer.from(s, 'utf8').toString('latin1')),
      ),
    )
    .map(([i, text]) => (line) => {
      const k = at(i, line.length + 1);
      return line.slice(0, k) + text + line.slice(k);
    }),
  // Counters: huge, negative, signed, decimal, exponent.
  fc
    .tuple(
      fc.constantFrom(9, 10),
      fc.oneof(
        fc.bigInt({ min: 10n ** 18n, max: 10n ** 30n }).map(String),
        fc.bigInt({ min: -(10n ** 12n), max: -1n }).map(String),
        fc.constantFrom('+0000000001', '1.5', '1e9', '0x10', '18446744073709551615', '18446744073709551616'),
      ),
    )
    .map(([k, value]) => (line) => {
      const fields = fieldsOf(line);
      if (fields.length > k) fields[k] = value;
      return fields.join(',');
    }),
  fc.nat().map((i) => (line) => line.slice(0, at(i, line.length + 1))),
  fc.constant((line: string) => line.trimEnd()),
];

const mutation = fc.oneof(...MUTATIONS);

interface MutatedWeek {
  /** The served bytes (latin1 string). */
  body: string;
  /** 1-based line numbers (the header is 1) of the lines holding data (not blank). */
  dataLines: number[];
}

/** Line ends: LF, CRLF; and blank lines slipped in between. */
const week = (pool: string[]): fc.Arbitrary<MutatedWeek> =>
  fc
    .record({
      lines: fc.array(
        fc.record({
          index: fc.nat(pool.length - 1),
          mutations: fc.array(mutation, { maxLength: 3 }),
          end: fc.constantFrom('\n', '\n', '\n', '\r\n'),
          blankAfter: fc.constantFrom(undefined, undefined, undefined, undefined, '', '   ', '\r'),
        }),
        { minLength: 1, maxLength: 25 },
      ),
      lastNewline: fc.boolean(),
      header: fc.constantFrom('\n', '\r\n'),
    })
    .map(({ lines, lastNewline, header }) => {
      const out: string[] = [];
      for (const line of lines) {
        out.push(line.mutations.reduce((text, m) => m(text), pool[line.index]!) + line.end);
        if (line.blankAfter !== undefined) out.push(`${line.blankAfter}\n`);
      }
      let body = pool[0]! + header + out.join('');
      if (!lastNewline) body = body.replace(/\r?\n$/, '');
      return { body, dataLines: dataLinesOf(body) };
    });

/** The test's own count: split on LF, skip the header, skip lines of only spaces, tabs and CR. */
function dataLinesOf(body: string): number[] {
  const lines = body.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.flatMap((line, i) => (i > 0 && !/^[ \t\r]*$/.test(line) ? [i + 1] : []));
}

describe('mutated source lines', () => {
  const FILE = 'turnstile_230603.txt';
  let pool: string[];
  let serial = 0;

  beforeAll(async () => {
    const sample = await realLines(3_000);
    pool = [sample.header, ...sample.lines];
  });

  it(
    'every data line ends up once, as a row or a reject, and the week loads (exit 0)',
    async () => {
      const keys = weekKeys(WEEK);
      await fc.assert(
        fc.asyncProperty(
          fc.constant(null).chain(() => week(pool)),
          async ({ body, dataLines }) => {
            serial += 1;
            const dir = join(root, `week-${serial}`);
            await mkdir(dir);
            source.serve({ name: FILE, content: Buffer.from(body, 'latin1') });
            const summary = await runCommand({
              selection: { date: WEEK },
              force: false,
              config: resolveConfig(
                {
                  sourceUrl: source.baseUrl,
                  lake: join(dir, 'lake'),
                  warehouse: join(dir, 'wh.duckdb'),
                  workDir: dir,
                },
                {},
              ),
              now: new Date(NOW),
              log: silentLogger,
              // 3,000 real lines are a deliberately partial week: accepted past the gate.
              accept: 'all',
            });
            const shown = JSON.stringify(body);
            expect(summary.weeks[0], shown).toMatchObject({ outcome: 'loaded' });
            expect(summary.exitCode, shown).toBe(0);

            const manifest = JSON.parse(await readFile(join(dir, 'lake', keys.manifest), 'utf8')) as Manifest;
            const rows = await query(
              `SELECT source_line FROM read_parquet('${join(dir, 'lake', keys.parquet)}') ORDER BY 1`,
            );
            const rejects =
              manifest.rejects === 0
                ? []
                : await query(
                    `SELECT source_line FROM read_parquet('${join(dir, 'lake', keys.rejects)}') ORDER BY 1`,
                  );
            expect(manifest.rows + manifest.rejects, shown).toBe(dataLines.length);
            expect([rows.length, rejects.length], shown).toEqual([manifest.rows, manifest.rejects]);
            const landed = [...rows, ...rejects].map((r) => Number(r.source_line)).sort((a, b) => a - b);
            expect(landed, shown).toEqual(dataLines);
            const [loaded] = await query(
              `SELECT count(*) AS n FROM turnstile_readings WHERE drop_date = DATE '${WEEK}'`,
              join(dir, 'wh.duckdb'),
            );
            expect(Number(loaded!.n), shown).toBe(manifest.rows);
            await rm(dir, { recursive: true, force: true });
          },
        ),
        { numRuns: WEEK_RUNS },
      );
      expect(serial).toBeGreaterThanOrEqual(WEEK_RUNS);
    },
    30_000 + WEEK_RUNS * 1_000,
  );
});
