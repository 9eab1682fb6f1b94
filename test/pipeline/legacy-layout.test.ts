/**
 * The legacy-layout converter (files before 2014-10-18), driven as the pipeline drives it: the
 * bytes go through the real Spool, the layout is detected from the first line, and convertWeek
 * runs on the real DuckDB engine. Expected values are computed here in plain JavaScript from the
 * source text and the MTA's Remote-Booth-Station CSV, never by the converter's own SQL.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DuckDBConnection } from '@duckdb/node-api';
import { convertWeek, SUPPORTED_LAYOUTS, type ConvertResult } from '../../src/convert/convert-week.ts';
import { detectLayout, type Layout } from '../../src/convert/layout.ts';
import { loadRemoteBoothStation, REMOTE_BOOTH_STATION_CSV } from '../../src/convert/remote-booth-station.ts';
import type { IsoDate } from '../../src/dates/drop-dates.ts';
import { openDuckDBEngine, type DuckDBEngine } from '../../src/duckdb/duckdb-engine.ts';
import { Spool } from '../../src/fetch/spool.ts';
import { COLUMNS, duckdbType } from '../../src/schema/turnstile-schema.ts';
import {
  LEGACY_SAMPLE,
  REAL_WEEK_ROWS,
  SHARED_DATA,
  factsOf,
  realWeekFile,
} from '../support/fixtures/real-week.ts';

const MTA_TABLE = join(SHARED_DATA, 'remote_booth_station.csv');
const DROP_DATE = '2012-06-16' as IsoDate;
const SOURCE_FILE = 'turnstile_120616.txt';

let dir: string;
let engine: DuckDBEngine;
let db: DuckDBConnection;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-legacy-'));
  engine = await openDuckDBEngine({ tempDirectory: dir });
  db = await engine.connect();
});
afterAll(async () => {
  engine.close();
  await rm(dir, { recursive: true, force: true });
});

/** Spools `body` in 1 MiB chunks, as a download would arrive, and converts it. */
async function convert(body: Buffer | string, expectLayout: Layout = 'legacy'): Promise<ConvertResult> {
  const work = await mkdtemp(join(dir, 'week-'));
  const bytes = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const spool = new Spool(work);
  for (let at = 0; at < bytes.length; at += 1 << 20) await spool.write(bytes.subarray(at, at + (1 << 20)));
  const summary = await spool.finish();
  await summary.rawGzWritten;
  const verdict = detectLayout(summary.firstLine ?? '');
  expect(verdict.layout).toBe(expectLayout);
  return convertWeek({
    dropDate: DROP_DATE,
    sourceFile: SOURCE_FILE,
    layout: expectLayout,
    linesPath: summary.linesPath,
    unterminatedLastLine: summary.unterminatedLastLine,
    outDir: work,
    db,
  });
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await db.runAndReadAll(sql)).getRowObjectsJS();
}

const parquet = (result: ConvertResult) => `read_parquet('${result.parquetPath}')`;

async function rejectsOf(result: ConvertResult): Promise<{ source_line: bigint; reason: string }[]> {
  if (!result.rejectsPath) return [];
  return (await rows(`SELECT source_line, reason FROM read_parquet('${result.rejectsPath}')
    ORDER BY source_line, reason`)) as { source_line: bigint; reason: string }[];
}

interface Reading {
  sourceLine: number;
  controlArea: string;
  unit: string;
  scp: string;
  readingAt: string;
  description: string;
  entries: bigint;
  exits: bigint;
}

/** A legacy file read the obvious way: fields five by five after the key, MM-DD-YY as 20YY. */
function legacyReadings(text: string): Reading[] {
  const readings: Reading[] = [];
  text.split('\n').forEach((raw, index) => {
    const fields = raw.trimEnd().split(',');
    if (fields.length < 8) return;
    const [controlArea, unit, scp] = fields as [string, string, string];
    for (let at = 3; at + 5 <= fields.length; at += 5) {
      const [date, time, description, entries, exits] = fields.slice(at, at + 5) as [
        string,
        string,
        string,
        string,
        string,
      ];
      const [mm, dd, yy] = date.split('-');
      readings.push({
        sourceLine: index + 1,
        controlArea,
        unit,
        scp,
        readingAt: `20${yy}-${mm}-${dd} ${time}`,
        description,
        entries: BigInt(entries),
        exits: BigInt(exits),
      });
    }
  });
  return readings;
}

/** The MTA's Remote-Booth-Station rows, parsed by hand (BOM, CRLF, no quoting in this file). */
function stationTable(
  path = MTA_TABLE,
): { remote: string; booth: string; station: string; line: string; division: string }[] {
  const [header, ...lines] = readFileSync(path, 'utf8')
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/);
  expect(header).toBe('Remote,Booth,Station,Line Name,Division');
  return lines
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [remote, booth, station, lineName, division] = line.split(',').map((f) => f.trim());
      return { remote: remote!, booth: booth!, station: station!, line: lineName!, division: division! };
    });
}

const SAMPLE = readFileSync(LEGACY_SAMPLE, 'latin1');

describe('the MTA legacy sample', () => {
  it('lands as exactly its 48 readings, each value as the source gives it, with the table station', async () => {
    const expected = legacyReadings(SAMPLE);
    expect(expected).toHaveLength(48);
    const table = stationTable().filter((r) => r.remote === 'R051' && r.booth === 'A002');
    expect(table).toHaveLength(1);
    const { station, line, division } = table[0]!;

    const result = await convert(SAMPLE);
    expect(result).toMatchObject({
      rows: 48,
      rejects: 0,
      rejectsPath: undefined,
      unmatchedStations: 0,
      readingsFrom: '2010-03-21 00:00:00',
      readingsTo: '2010-03-28 20:00:00',
    });

    const landed = await rows(`SELECT drop_date::VARCHAR AS drop_date, control_area, unit, scp, station,
      line_name, division, strftime(reading_at, '%Y-%m-%d %H:%M:%S') AS reading_at, description, entries,
      exits, source_file, source_line FROM ${parquet(result)} ORDER BY reading_at`);
    expect(landed).toEqual(
      expected.map((r) => ({
        drop_date: DROP_DATE,
        control_area: 'A002',
        unit: 'R051',
        scp: '02-00-00',
        station,
        line_name: line,
        division,
        reading_at: r.readingAt,
        description: r.description,
        entries: r.entries,
        exits: r.exits,
        source_file: SOURCE_FILE,
        source_line: BigInt(r.sourceLine),
      })),
    );

    const [sums] = await rows(`SELECT sum(entries) AS entries, sum(exits) AS exits,
      list(DISTINCT source_line ORDER BY source_line) AS lines FROM ${parquet(result)}`);
    expect(sums).toEqual({
      entries: expected.reduce((sum, r) => sum + r.entries, 0n),
      exits: expected.reduce((sum, r) => sum + r.exits, 0n),
      lines: [1n, 2n, 3n, 4n, 5n, 6n],
    });
  });

  it('writes exactly the table schema, in order', async () => {
    const result = await convert(SAMPLE);
    const described = await rows(`DESCRIBE SELECT * FROM ${parquet(result)}`);
    expect(described.map((c) => [c.column_name, c.column_type])).toEqual(
      COLUMNS.map((c) => [c.name, duckdbType(c.type)]),
    );
  });

  it('reads padded lines, CRLF line ends and empty trailing groups the same', async () => {
    const padded = SAMPLE.split('\n')
      .filter((l) => l !== '')
      .map((l, i) => (i % 2 === 0 ? `${l},,,,,${' '.repeat(40)}` : `${l}   `))
      .join('\r\n');
    const result = await convert(`${padded}\r\n`);
    expect(result).toMatchObject({ rows: 48, rejects: 0 });
  });

  it('is a layout convertWeek supports', () => {
    expect(SUPPORTED_LAYOUTS).toEqual(expect.arrayContaining(['modern', 'legacy']));
  });
});

describe('the real week 2023-06-03 regrouped into the legacy layout', () => {
  it('lands the same readings as the modern file: count, sums and multiset', async () => {
    const modernPath = await realWeekFile();
    const modernText = await readFile(modernPath, 'latin1');
    const facts = await factsOf(modernPath);

    // Group rows by turnstile in file order, 8 readings a line, as the MTA wrote legacy files.
    const byTurnstile = new Map<string, string[]>();
    for (const line of modernText.split('\n').slice(1)) {
      if (line.trim() === '') continue;
      const f = line.trimEnd().split(',');
      const [mm, dd, yyyy] = f[6]!.split('/');
      const key = `${f[0]},${f[1]},${f[2]}`;
      const group = `${mm}-${dd}-${yyyy!.slice(2)},${f[7]},${f[8]},${f[9]},${f[10]}`;
      const groups = byTurnstile.get(key) ?? [];
      groups.push(group);
      byTurnstile.set(key, groups);
    }
    const legacyLines: string[] = [];
    for (const [key, groups] of byTurnstile) {
      for (let at = 0; at < groups.length; at += 8)
        legacyLines.push([key, ...groups.slice(at, at + 8)].join(','));
    }
    const legacyText = `${legacyLines.join('\n')}\n`;

    const modern = await convert(Buffer.from(modernText, 'latin1'), 'modern');
    const legacy = await convert(legacyText);
    expect(modern).toMatchObject({ rows: REAL_WEEK_ROWS, rejects: 0, unmatchedStations: 0 });
    expect(legacy).toMatchObject({ rows: REAL_WEEK_ROWS, rejects: 0 });
    expect(legacy.readingsFrom).toBe(modern.readingsFrom);
    expect(legacy.readingsTo).toBe(modern.readingsTo);

    const [sums] = await rows(`SELECT sum(entries) AS entries, sum(exits) AS exits FROM ${parquet(legacy)}`);
    expect(sums).toEqual({ entries: facts.entries, exits: facts.exits });

    const projection = 'control_area, unit, scp, reading_at, entries, exits';
    for (const [a, b] of [
      [legacy, modern],
      [modern, legacy],
    ] as const) {
      const [difference] = await rows(`SELECT count(*) AS n FROM (
        SELECT ${projection} FROM ${parquet(a)} EXCEPT ALL SELECT ${projection} FROM ${parquet(b)})`);
      expect(difference).toEqual({ n: 0n });
    }

    // Unmatched readings, counted in JS from the MTA table: 2023 pairs the 2014 table lacks.
    const known = new Set(stationTable().map((r) => `${r.remote}|${r.booth}`));
    let unmatched = 0;
    for (const [key, groups] of byTurnstile) {
      const [controlArea, unit] = key.split(',');
      if (!known.has(`${unit}|${controlArea}`)) unmatched += groups.length;
    }
    expect(unmatched).toBeGreaterThan(0);
    expect(legacy.unmatchedStations).toBe(unmatched);
    const [nulls] = await rows(`SELECT count(*) AS n FROM ${parquet(legacy)} WHERE station IS NULL`);
    expect(nulls).toEqual({ n: BigInt(unmatched) });
  });
});

describe('groups that cannot be typed', () => {
  /** The sample with field `at` (0-based, in the whole line) of line `n` replaced or removed. */
  function mangled(edits: { line: number; at: number; value?: string }[]): string {
    const lines = SAMPLE.split('\n');
    for (const { line, at, value } of edits) {
      const fields = lines[line - 1]!.split(',');
      if (value === undefined) fields.splice(at, 1);
      else fields[at] = value;
      lines[line - 1] = fields.join(',');
    }
    return lines.join('\n');
  }
  const field = (group: number, name: 'DATE' | 'DESC' | 'ENTRIES' | 'EXITS') =>
    3 + (group - 1) * 5 + ['DATE', 'TIME', 'DESC', 'ENTRIES', 'EXITS'].indexOf(name);

  it('rejects exactly the mangled groups, by line and group position, and loads the rest of their lines', async () => {
    const text = mangled([
      { line: 2, at: field(2, 'DATE'), value: '13-45-10' }, // impossible date
      { line: 3, at: field(5, 'EXITS'), value: '-000918171' }, // negative counter
      { line: 4, at: field(4, 'DESC') }, // group 4 loses a field: 4 of 5
    ]);
    const result = await convert(text);
    expect(result).toMatchObject({ rows: 45, rejects: 3 });
    expect(await rejectsOf(result)).toEqual([
      { source_line: 2n, reason: 'group 2: DATE is not a valid date (MM-DD-YY): "13-45-10"' },
      {
        source_line: 3n,
        reason: 'group 5: EXITS is not a valid counter (a whole number, not negative): "-000918171"',
      },
      { source_line: 4n, reason: 'group 4 is cut short: 4 of 5 fields (DATE,TIME,DESC,ENTRIES,EXITS)' },
    ]);
    const [reject] = await rows(
      `SELECT line FROM read_parquet('${result.rejectsPath}') WHERE source_line = 4`,
    );
    expect(reject!.line).toBe(text.split('\n')[3]);

    // Every other group of those lines loads, with its own values: the groups after the short
    // one (5-8 of line 4) included.
    const expected = legacyReadings(SAMPLE).filter(
      (r, i) => ![1 * 8 + 1, 2 * 8 + 4, 3 * 8 + 3].includes(i), // line 2 group 2, line 3 group 5, line 4 group 4
    );
    const landed =
      await rows(`SELECT source_line, strftime(reading_at, '%Y-%m-%d %H:%M:%S') AS at, entries, exits
      FROM ${parquet(result)} ORDER BY reading_at`);
    expect(landed).toEqual(
      expected.map((r) => ({
        source_line: BigInt(r.sourceLine),
        at: r.readingAt,
        entries: r.entries,
        exits: r.exits,
      })),
    );
  });

  it('names a bad time or a letter in a counter, and every failing field of a group', async () => {
    const text = mangled([
      { line: 1, at: field(1, 'DATE') + 1, value: '25:00:00' },
      { line: 5, at: field(8, 'ENTRIES'), value: '0026X8155' },
      { line: 5, at: field(8, 'EXITS'), value: '' },
    ]);
    const result = await convert(text);
    expect(result).toMatchObject({ rows: 46, rejects: 2 });
    expect(await rejectsOf(result)).toEqual([
      { source_line: 1n, reason: 'group 1: TIME is not a valid time (HH:MM:SS): "25:00:00"' },
      {
        source_line: 5n,
        reason:
          'group 8: ENTRIES is not a valid counter (a whole number, not negative): "0026X8155"; ' +
          'EXITS is not a valid counter (a whole number, not negative): ""',
      },
    ]);
  });

  it('makes a line without a usable key one reject, and accounts for every non-empty group', async () => {
    const lines = SAMPLE.split('\n').filter((l) => l !== '');
    const text = [
      lines[0], // 1: 8 readings
      'A002,R051', // 2: too few fields
      'A002,R051,02-00-00', // 3: a key and nothing else
      'A002,R051,02-00-00,,,,,', // 4: a key and one empty group
      'R051,02-00-00,03-21-10,00:00:00,REGULAR,002670738,000917107', // 5: C/A missing
      ',R051,02-00-00,03-21-10,00:00:00,REGULAR,002670738,000917107', // 6: C/A empty
      lines[1], // 7: 8 readings
    ].join('\n');
    const result = await convert(`${text}\n`);
    expect(result).toMatchObject({ rows: 16, rejects: 5 });
    expect(await rejectsOf(result)).toEqual([
      {
        source_line: 2n,
        reason: 'expected C/A,UNIT,SCP then groups of DATE,TIME,DESC,ENTRIES,EXITS, found 2 fields',
      },
      { source_line: 3n, reason: 'no readings after C/A,UNIT,SCP' },
      { source_line: 4n, reason: 'no readings after C/A,UNIT,SCP' },
      { source_line: 5n, reason: 'the field after C/A,UNIT,SCP is not a date (MM-DD-YY): "00:00:00"' },
      { source_line: 6n, reason: 'C/A, UNIT or SCP is empty' },
    ]);
  });
});

describe('a legacy file that ends without a newline', () => {
  const lines = SAMPLE.split('\n').filter((l) => l !== '');
  const body = lines.join('\n'); // the last line complete, but no final newline

  it('loads a complete last line', async () => {
    expect(await convert(body)).toMatchObject({ rows: 48, rejects: 0 });
  });

  for (const [where, cutBy, reason] of [
    [
      'inside EXITS',
      3,
      /group 8: the file ends inside this group \(no newline, EXITS shorter than ENTRIES\)/,
    ],
    ['inside TIME', 32, /group 8: the file ends inside this group \(no newline, 2 of 5 fields\)/],
    ['just after a comma', 45, /group 8: the file ends inside this group \(no newline, 1 of 5 fields\)/],
  ] as const) {
    it(`makes a last group cut ${where} a reject and keeps the line's other groups`, async () => {
      const result = await convert(body.slice(0, body.length - cutBy));
      expect(result).toMatchObject({ rows: 47, rejects: 1 });
      const rejects = await rejectsOf(result);
      expect(rejects).toEqual([{ source_line: 6n, reason: expect.stringMatching(reason) as string }]);
    });
  }
});

describe('stations from the Remote-Booth-Station table', () => {
  it('leaves station NULL for a pair the table lacks, and counts those readings', async () => {
    const lines = SAMPLE.split('\n');
    lines[0] = lines[0]!.replace(/^A002,R051,/, 'Z999,R051,'); // unknown booth
    lines[2] = lines[2]!.replace(/^A002,R051,/, 'A002,R052,'); // known booth, other remote
    const table = stationTable();
    expect(table.some((r) => r.booth === 'Z999')).toBe(false);
    expect(table.some((r) => r.remote === 'R052' && r.booth === 'A002')).toBe(false);

    const result = await convert(lines.join('\n'));
    expect(result).toMatchObject({ rows: 48, rejects: 0, unmatchedStations: 16 });
    const byLine = await rows(`SELECT source_line, count(*) AS n, count(station) AS station,
      count(line_name) AS line_name, count(division) AS division
      FROM ${parquet(result)} GROUP BY source_line ORDER BY source_line`);
    expect(byLine.map((r) => [r.source_line, r.n, r.station, r.line_name, r.division])).toEqual([
      [1n, 8n, 0n, 0n, 0n],
      [2n, 8n, 8n, 8n, 8n],
      [3n, 8n, 0n, 0n, 0n],
      [4n, 8n, 8n, 8n, 8n],
      [5n, 8n, 8n, 8n, 8n],
      [6n, 8n, 8n, 8n, 8n],
    ]);
  });

  it('ships the MTA table unchanged, with no duplicate (Remote, Booth) pair', () => {
    expect(readFileSync(REMOTE_BOOTH_STATION_CSV)).toEqual(readFileSync(MTA_TABLE));
    const table = stationTable(REMOTE_BOOTH_STATION_CSV);
    expect(table).toHaveLength(768);
    expect(new Set(table.map((r) => `${r.remote}|${r.booth}`)).size).toBe(table.length);
  });

  it('keeps one row per pair whatever a table repeats, the same one in any order', async () => {
    const rowsOf = [
      'R051,A002,ZZ STATION,Z,IRT',
      ' R051 , A002 ,AA STATION,A,BMT',
      'R001,A060,WHITEHALL ST,R1,BMT',
    ];
    for (const [i, order] of [rowsOf, [...rowsOf].reverse()].entries()) {
      const path = join(dir, `stations-${i}.csv`);
      await writeFile(path, `\uFEFFRemote,Booth,Station,Line Name,Division\r\n${order.join('\r\n')}\r\n`);
      await loadRemoteBoothStation(db, `stations_test_${i}`, path);
      expect(await rows(`SELECT * FROM stations_test_${i} ORDER BY remote`)).toEqual([
        { remote: 'R001', booth: 'A060', station: 'WHITEHALL ST', line_name: 'R1', division: 'BMT' },
        { remote: 'R051', booth: 'A002', station: 'AA STATION', line_name: 'A', division: 'BMT' },
      ]);
      await db.run(`DROP TABLE stations_test_${i}`);
    }
  });
});
