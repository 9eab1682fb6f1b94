/**
 * How the DuckDB warehouse file is laid out after week-by-week loads (docs/performance.md): each
 * week is checkpointed into row groups of its own (DuckDB's checkpoint would otherwise merge the
 * week before's partial last row group with the new week's, rewriting both: 0.4 to 0.6 s a
 * week), while a reload, which deletes the week's earlier rows, still has them compacted away
 * (which matters in a file an earlier version wrote, where weeks share row groups).
 * Real DuckDB files, read back with a DuckDB of the test's own (pragma_storage_info).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDuckDBEngine, type DuckDBEngine } from '../../src/duckdb/duckdb-engine.ts';
import { TABLE_NAME, duckdbCreateTable, duckdbSelectList } from '../../src/schema/turnstile-schema.ts';
import { DuckDBWarehouse } from '../../src/warehouse/duckdb/duckdb-warehouse.ts';
import { query } from '../support/harnesses/duckdb-query.ts';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mta-ingest-duckdb-warehouse-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A week's Parquet in the table's schema: `rows` readings of made-up turnstiles. */
async function weekParquet(dropDate: string, rows: number): Promise<string> {
  const path = join(work, `${dropDate}-${rows}.parquet`);
  const select = duckdbSelectList({
    drop_date: `DATE '${dropDate}'`,
    control_area: `'A' || (i % 700)`,
    unit: `'R' || (i % 400)`,
    scp: `'00-00-' || (i % 7)`,
    station: `'STATION'`,
    line_name: `'1'`,
    division: `'IRT'`,
    reading_at: `TIMESTAMP '${dropDate}' - INTERVAL 7 DAY + to_seconds(i % 600000)`,
    description: `'REGULAR'`,
    entries: 'i',
    exits: 'i * 2',
    source_file: `'turnstile.txt'`,
    source_line: 'i + 2',
  });
  const engine = await openDuckDBEngine({ tempDirectory: join(work, 'spill') });
  try {
    const db = await engine.connect();
    await db.run(`COPY (SELECT ${select} FROM range(${rows}) r(i)) TO '${path}' (FORMAT parquet)`);
  } finally {
    engine.close();
  }
  return path;
}

/** The warehouse file attached to an engine of its own, as a run opens it for a week. */
async function openWarehouse(
  file: string,
): Promise<{ warehouse: DuckDBWarehouse; engine: () => DuckDBEngine }> {
  let engine: DuckDBEngine | undefined;
  const warehouse = await DuckDBWarehouse.open(file, {
    engine: async () => (engine = await openDuckDBEngine({ tempDirectory: join(work, 'spill') })),
  });
  return { warehouse, engine: () => engine! };
}

/** Loads each week in its own engine and attach, as a run does (one week at a time). */
async function loadWeeks(file: string, weeks: { dropDate: string; rows: number }[]): Promise<void> {
  for (const week of weeks) {
    const { warehouse, engine } = await openWarehouse(file);
    try {
      await warehouse.loadWeek({
        dropDate: week.dropDate,
        sourceSha256: `${week.dropDate}-${week.rows}`.padEnd(64, '0'),
        rows: week.rows,
        parquetPath: await weekParquet(week.dropDate, week.rows),
        parquetUri: 'unused',
        runId: 'test',
        force: false,
      });
    } finally {
      await warehouse.close();
      engine().close();
    }
  }
}

/** The drop_date column's row groups in the file: rows, and the least and greatest date. */
async function dropDateRowGroups(file: string): Promise<{ rows: number; min: string; max: string }[]> {
  const segments = await query(
    `SELECT row_group_id, count, stats FROM pragma_storage_info('turnstile_readings')
     WHERE column_name = 'drop_date' AND segment_type <> 'VALIDITY' ORDER BY row_group_id`,
    file,
  );
  return segments.map((segment) => {
    const stats = String(segment.stats);
    return {
      rows: Number(segment.count),
      min: /Min: ([\d-]+)/.exec(stats)?.[1] ?? '?',
      max: /Max: ([\d-]+)/.exec(stats)?.[1] ?? '?',
    };
  });
}

describe('the DuckDB warehouse file, week by week', () => {
  // 130,000 rows: one full row group of 122,880 and a partial one, the case the merge rewrote.
  const weeks = ['2023-05-20', '2023-05-27', '2023-06-03'].map((dropDate) => ({ dropDate, rows: 130_000 }));

  it('keeps every week in row groups of its own', async () => {
    const file = join(work, 'weeks.duckdb');
    await loadWeeks(file, weeks);
    const groups = await dropDateRowGroups(file);
    expect(groups.length).toBeGreaterThanOrEqual(6);
    expect(groups.filter((g) => g.min !== g.max)).toEqual([]);
    const perWeek = await query(
      'SELECT drop_date::VARCHAR AS d, count(*)::INTEGER AS n FROM turnstile_readings GROUP BY 1 ORDER BY 1',
      file,
    );
    expect(perWeek).toEqual(weeks.map((w) => ({ d: w.dropDate, n: w.rows })));
  });

  it('stores text as dictionaries without trying FSST on every segment', async () => {
    const file = join(work, 'text.duckdb');
    const { warehouse, engine } = await openWarehouse(file);
    try {
      const db = await engine().connect();
      const setting = await db.runAndReadAll(`SELECT current_setting('disabled_compression_methods')`);
      expect(String(setting.getRows()[0]?.[0]).toLowerCase()).toBe('fsst');
    } finally {
      await warehouse.close();
      engine().close();
    }
    await loadWeeks(file, [weeks[0]!]);
    const text = await query(
      `SELECT DISTINCT compression FROM pragma_storage_info('turnstile_readings')
       WHERE column_name IN ('control_area', 'unit', 'scp', 'station', 'source_file')
         AND segment_type = 'VARCHAR' ORDER BY 1`,
      file,
    );
    const methods = text.map((row) => String(row.compression));
    expect(methods).toContain('Dictionary');
    expect(methods.filter((method) => method !== 'Dictionary' && method !== 'Constant')).toEqual([]);
  });

  it('compacts the rows a reload replaced, in a file whose weeks share row groups', async () => {
    // As earlier versions left it: each week loaded, then checkpointed with DuckDB's defaults,
    // which merged the weeks' partial row groups (so the middle week shares row groups).
    const file = join(work, 'reload.duckdb');
    for (const week of weeks) {
      const engine = await openDuckDBEngine({ tempDirectory: join(work, 'spill') });
      try {
        const db = await engine.connect();
        await db.run(`ATTACH '${file}' AS w; USE w; ${duckdbCreateTable()}`);
        await db.run(
          `INSERT INTO ${TABLE_NAME} SELECT * FROM '${await weekParquet(week.dropDate, week.rows)}'`,
        );
        await db.run('USE memory; DETACH w');
      } finally {
        engine.close();
      }
    }
    expect((await dropDateRowGroups(file)).filter((g) => g.min !== g.max).length).toBeGreaterThan(0);
    // The middle week again, smaller: its 130,000 earlier rows are deleted by the same load.
    await loadWeeks(file, [{ dropDate: '2023-05-27', rows: 60_000 }]);
    const stored = (await dropDateRowGroups(file)).reduce((sum, g) => sum + g.rows, 0);
    // What the row groups hold is what the table holds: no deleted row is kept in them.
    const [{ n }] = (await query('SELECT count(*)::INTEGER AS n FROM turnstile_readings', file)) as [
      { n: number },
    ];
    expect(n).toBe(130_000 + 60_000 + 130_000);
    expect(stored).toBe(n);
  });
});
