/**
 * The BigQuery stand-in's SQL engine (bigquery-standin.ts): an in-memory DuckDB that holds the
 * actual rows of every stand-in table, and runs BigQuery SQL transpiled to DuckDB's by sqlglot
 * (bigquery_sql.py, one long-lived child per engine, started on first use).
 *
 * Names: BigQuery's `project.dataset.table` is DuckDB's `"project"."dataset"."table"`: each project
 * is an attached in-memory catalog and each dataset a schema in it, so the transpiled SQL (which
 * keeps the three parts, quoted) resolves as written. (A project named like one of DuckDB's own
 * catalogs, `memory`, `system` or `temp`, would clash; tests use other names.)
 *
 * The engine follows the stand-in's `tables` map lazily (`sync`, before every use): tables that
 * appeared are created from their schema, views (re)created from `view.query`, deleted ones dropped,
 * a patched table gains its new columns (column types: bigquery-standin-ddl.ts). The session runs
 * in UTC. One statement sequence runs at a time (`serial`), so a load's DELETE and INSERT, or a
 * query's bytes and rows, see one state.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { TableResource } from './bigquery-standin-types.ts';
import {
  bigQueryType,
  restFields,
  cell,
  SqlError,
  type RestField,
  type RestRow,
} from './bigquery-standin-results.ts';
import { bytesSql } from './bigquery-standin-bytes.ts';
import { createTranspiler, type Read } from './bigquery-standin-transpiler.ts';
import { columnDefinitions, literal, qualified, quote } from './bigquery-standin-ddl.ts';

export interface QueryParameter {
  name?: string;
  parameterType?: { type?: string; arrayType?: { type?: string } };
  parameterValue?: { value?: unknown; arrayValues?: { value?: unknown }[] };
}

export interface QueryRequest {
  sql: string;
  params?: QueryParameter[];
  defaultProject: string;
  defaultDataset?: string;
  location: string;
}

export interface QueryOutcome {
  statementType: string;
  /** Result schema and rows (SELECT); none for DML. */
  fields?: RestField[];
  rows: RestRow[];
  numDmlAffectedRows?: number;
  totalBytesProcessed: number;
}

/** What the transpiler is told of each table (key project.dataset.table). */
type Catalog = Record<string, { columns: Record<string, string>; partitionField?: string; view?: string }>;

export interface SqlEngine {
  /** Refuses (400 invalid) a table resource whose view query does not transpile or bind. */
  checkView(key: string, resource: unknown): Promise<void>;
  /** Brings the engine's tables and views in line with the stand-in's `tables` map. */
  sync(): Promise<void>;
  /** A load's Parquet files into a table (after the stand-in's own checks passed). */
  load(key: string, paths: string[], decorator: string | undefined, disposition: string): Promise<void>;
  /** Downloads gs:// sources from the GCS emulator, then `load`s them. */
  loadFromGcs(
    gcsUrl: string,
    key: string,
    uris: string[],
    decorator: string | undefined,
    disposition: string,
  ): Promise<void>;
  run(request: QueryRequest): Promise<QueryOutcome>;
  close(): Promise<void>;
}

export function createSqlEngine(tables: Map<string, TableResource>): SqlEngine {
  let connection: Promise<DuckDBConnection> | undefined;
  let instance: DuckDBInstance | undefined;
  const { transpile, close: closeTranspiler } = createTranspiler();
  /** What each engine object was built from. */
  const built = new Map<string, TableResource>();
  const catalogs = new Set<string>();
  let queue: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it: one statement sequence at a time. */
  function serial<T>(task: () => Promise<T>): Promise<T> {
    const result = queue.then(task, task);
    queue = result.catch(() => undefined);
    return result;
  }

  function db(): Promise<DuckDBConnection> {
    connection ??= (async () => {
      instance = await DuckDBInstance.create(':memory:');
      const c = await instance.connect();
      await c.run(`SET TimeZone = 'UTC'`);
      return c;
    })();
    return connection;
  }

  /** The tables as the transpiler sees them: columns (BigQuery types), partitioning field, view query. */
  async function catalog(): Promise<Catalog> {
    const c = await db();
    const columns = (
      await c.runAndReadAll(
        `SELECT database_name, schema_name, table_name, column_name, data_type FROM duckdb_columns() WHERE NOT internal`,
      )
    ).getRowObjectsJS();
    const out: Catalog = {};
    for (const [key, resource] of tables) {
      const entry: (typeof out)[string] = { columns: {} };
      const field = resource.timePartitioning?.field;
      if (field) entry.partitionField = field;
      if (resource.view?.query) entry.view = resource.view.query;
      out[key] = entry;
    }
    for (const row of columns as Record<string, string>[]) {
      const entry = out[`${row.database_name}.${row.schema_name}.${row.table_name}`];
      if (entry && entry.view === undefined && row.column_name)
        entry.columns[row.column_name] = bigQueryType(String(row.data_type));
    }
    // Declared types where the schema has them (BIGNUMERIC and NUMERIC are both DECIMAL here).
    for (const [key, resource] of tables)
      for (const f of resource.schema?.fields ?? [])
        if (f.name && out[key]?.columns[f.name]) out[key].columns[f.name] = String(f.type);
    return out;
  }

  async function ensureSchema(c: DuckDBConnection, key: string): Promise<void> {
    const [project = '', dataset = ''] = key.split('.');
    if (!catalogs.has(project)) {
      await c.run(`ATTACH IF NOT EXISTS ':memory:' AS ${quote(project)}`);
      catalogs.add(project);
    }
    await c.run(`CREATE SCHEMA IF NOT EXISTS ${quote(project)}.${quote(dataset)}`);
  }

  async function viewSql(key: string, query: string): Promise<string> {
    const [project = '', dataset = ''] = key.split('.');
    const location = 'US';
    const t = await transpile({
      sql: query,
      defaultProject: project,
      defaultDataset: dataset,
      location,
      tables: await catalog(),
    });
    if (t.statementType !== 'SELECT') throw new SqlError(400, 'invalid', 'A view query must be a SELECT');
    return t.sql;
  }

  async function syncNow(): Promise<void> {
    const c = await db();
    for (const [key, was] of built) {
      const now = tables.get(key);
      if (now === was) continue;
      const wasView = was.view !== undefined;
      if (now && !wasView && !now.view && now.creationTime === was.creationTime) {
        // Patched: add the columns it gained and drop NOT NULL where REQUIRED was relaxed; keep the rows.
        const before = new Map((was.schema?.fields ?? []).map((f) => [f.name, f]));
        const added = (now.schema?.fields ?? []).filter((f) => !before.has(f.name));
        for (const d of columnDefinitions({ schema: { fields: added } })) {
          await c.run(
            `ALTER TABLE ${qualified(key)} ADD COLUMN IF NOT EXISTS ${d.replace(/ NOT NULL$/, '')}`,
          );
        }
        for (const f of now.schema?.fields ?? []) {
          if (before.get(f.name)?.mode === 'REQUIRED' && f.mode !== 'REQUIRED')
            await c.run(`ALTER TABLE ${qualified(key)} ALTER COLUMN ${quote(String(f.name))} DROP NOT NULL`);
        }
        built.set(key, now);
        continue;
      }
      await c.run(`DROP ${wasView ? 'VIEW' : 'TABLE'} IF EXISTS ${qualified(key)}`);
      built.delete(key);
    }
    const pending = [...tables].filter(([key]) => !built.has(key));
    for (const [key, resource] of pending.filter(([, r]) => !r.view)) {
      await ensureSchema(c, key);
      const columns = columnDefinitions(resource);
      // A table without a schema yet (created by a load without one) gets its columns from its first load.
      if (columns.length > 0) await c.run(`CREATE TABLE ${qualified(key)} (${columns.join(', ')})`);
      built.set(key, resource);
    }
    for (const [key, resource] of pending.filter(([, r]) => r.view?.query)) {
      await ensureSchema(c, key);
      try {
        await c.run(`CREATE VIEW ${qualified(key)} AS ${await viewSql(key, String(resource.view?.query))}`);
      } catch {
        // Its tables are gone: querying it fails, as in BigQuery.
      }
      built.set(key, resource);
    }
  }

  async function checkView(key: string, resource: unknown): Promise<void> {
    const view = (resource as TableResource | undefined)?.view;
    if (!view) return;
    if (view.useLegacySql !== false && view.useLegacySql !== undefined)
      throw new SqlError(400, 'invalid', 'The stand-in only takes views in GoogleSQL (useLegacySql: false)');
    if (typeof view.query !== 'string') throw new SqlError(400, 'invalid', 'A view needs view.query');
    await serial(async () => {
      await syncNow();
      const c = await db();
      await ensureSchema(c, key);
      const [project = '', dataset = ''] = key.split('.');
      let sql: string;
      try {
        sql = await viewSql(key, view.query as string);
      } catch (error) {
        throw new SqlError(400, 'invalid', (error as Error).message);
      }
      await c.run('BEGIN TRANSACTION');
      try {
        await c.run(
          `CREATE VIEW ${quote(project)}.${quote(dataset)}.${quote('__standin_view_check')} AS ${sql}`,
        );
      } catch (error) {
        throw new SqlError(400, 'invalid', `Invalid view query: ${(error as Error).message}`);
      } finally {
        await c.run('ROLLBACK');
      }
    });
  }

  async function load(
    key: string,
    paths: string[],
    decorator: string | undefined,
    disposition: string,
  ): Promise<void> {
    await serial(async () => {
      await syncNow();
      const c = await db();
      const files = `read_parquet([${paths.map(literal).join(', ')}])`;
      if (
        !(
          await c.runAndReadAll(
            `SELECT 1 FROM duckdb_tables() WHERE database_name || '.' || schema_name || '.' || table_name = ${literal(key)}`,
          )
        ).getRows().length
      ) {
        await ensureSchema(c, key);
        await c.run(`CREATE TABLE ${qualified(key)} AS SELECT * FROM ${files} LIMIT 0`);
      }
      const field = tables.get(key)?.timePartitioning?.field;
      await c.run('BEGIN TRANSACTION');
      try {
        if (disposition === 'WRITE_TRUNCATE') {
          // The decorator's partition (YYYYMMDD, or __NULL__: a NULL partitioning value), else the whole table.
          const day = decorator ? /^(\d{4})(\d{2})(\d{2})$/.exec(decorator) : null;
          let where = '';
          if (field && day)
            where = ` WHERE CAST(${quote(field)} AS DATE) = DATE '${day[1]}-${day[2]}-${day[3]}'`;
          else if (field && decorator === '__NULL__') where = ` WHERE ${quote(field)} IS NULL`;
          await c.run(`DELETE FROM ${qualified(key)}${where}`);
        }
        await c.run(`INSERT INTO ${qualified(key)} BY NAME SELECT * FROM ${files}`);
        await c.run('COMMIT');
      } catch (error) {
        await c.run('ROLLBACK');
        throw error;
      }
    });
  }

  async function loadFromGcs(
    gcsUrl: string,
    key: string,
    uris: string[],
    decorator: string | undefined,
    disposition: string,
  ): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'bq-standin-rows-'));
    try {
      const paths: string[] = [];
      for (const [index, uri] of uris.entries()) {
        const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
        if (!match) throw new Error(`Invalid source URI ${uri}`);
        const response = await fetch(
          `${gcsUrl}/storage/v1/b/${encodeURIComponent(match[1]!)}/o/${encodeURIComponent(match[2]!)}?alt=media`,
        );
        if (response.status !== 200) throw new Error(`Not found: URI ${uri} (${response.status})`);
        paths.push(join(dir, `source-${index}.parquet`));
        await writeFile(paths.at(-1)!, Buffer.from(await response.arrayBuffer()));
      }
      await load(key, paths, decorator, disposition);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Bytes processed by the reads (bigquery-standin-bytes.ts). */
  async function bytesOf(c: DuckDBConnection, reads: Read[], types: Catalog): Promise<number> {
    let total = 0;
    for (const read of reads) {
      const field = tables.get(read.table)?.timePartitioning?.field;
      const sql = bytesSql(read, qualified(read.table), types[read.table]?.columns ?? {}, field);
      if (sql !== undefined) total += Number((await c.runAndReadAll(sql)).getRows()[0]?.[0] ?? 0);
    }
    return total;
  }

  function run(request: QueryRequest): Promise<QueryOutcome> {
    return serial(async () => {
      await syncNow();
      const c = await db();
      const types = await catalog();
      const t = await transpile({
        sql: request.sql,
        params: request.params ?? [],
        defaultProject: request.defaultProject,
        defaultDataset: request.defaultDataset,
        location: request.location,
        tables: types,
      });
      if (!['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE'].includes(t.statementType))
        throw new SqlError(
          400,
          'invalidQuery',
          `The stand-in does not run ${t.statementType} statements (tables and views are made through the tables API)`,
        );
      const totalBytesProcessed = await bytesOf(c, t.reads, types);
      let reader;
      try {
        reader = await c.runAndReadAll(t.sql);
      } catch (error) {
        throw new SqlError(400, 'invalidQuery', (error as Error).message);
      }
      if (t.statementType !== 'SELECT')
        return {
          statementType: t.statementType,
          rows: [],
          numDmlAffectedRows: reader.rowsChanged,
          totalBytesProcessed,
        };
      const fields = restFields(reader.columnNames(), reader.columnTypes());
      const rows = reader.getRows().map((row) => ({ f: row.map((v, i) => ({ v: cell(v, fields[i]!) })) }));
      return { statementType: 'SELECT', fields, rows, totalBytesProcessed };
    });
  }

  return {
    checkView,
    // Before the engine's first use there is nothing to follow: its start syncs everything.
    sync: () => (connection ? serial(syncNow) : Promise.resolve()),
    load,
    loadFromGcs,
    run,
    async close() {
      closeTranspiler();
      await queue;
      if (connection) (await connection).closeSync();
      instance?.closeSync();
    },
  };
}
