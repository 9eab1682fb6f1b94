/**
 * What a load job does when it reaches DONE, in the BigQuery stand-in (bigquery-standin.ts). Its
 * destination dataset must exist (else notFound) in the job's own location (loadLocationError); a
 * missing table is notFound with createDisposition CREATE_NEVER, else (CREATE_IF_NEEDED, the default)
 * created from the load's schema, timePartitioning and clustering. A scripted error takes precedence.
 *
 * With `gcsUrl`, a load of PARQUET files then writes its rows: each gs:// source is read from the
 * GCS emulator (fake-gcs-server, JSON API), checked against the schema (parquetSchemaError) and
 * summarised with DuckDB per partition of the table's DAY partitioning field: rows and the sum of
 * every integer column. A load into `table$YYYYMMDD` must only hold rows of that day
 * (decoratorError); WRITE_TRUNCATE replaces the partition (or, without a decorator, the whole
 * table), WRITE_APPEND adds to it, WRITE_EMPTY fails on a partition that has rows. `partitions`
 * gets one chunk per load that put rows there (a week loaded twice shows as two chunks), the SQL
 * engine the rows themselves, and the job's outputRows is the rows read unless a script set it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { query } from '../harnesses/duckdb-query.ts';
import { tableResource } from './bigquery-standin-resources.ts';
import {
  decoratorError,
  loadLocationError,
  NULL_PARTITION,
  parquetSchemaError,
  type ParquetColumn,
  type SchemaField,
} from './bigquery-standin-rules.ts';
import type { StandinState } from './bigquery-standin-state.ts';
import {
  UNPARTITIONED,
  type PartitionChunk,
  type StandinJob,
  type TableResource,
} from './bigquery-standin-types.ts';

/**
 * Side effects of a load reaching DONE: the stand-in's own notFound checks, then
 * create-if-needed, then (with `gcsUrl`) the rows written into the table's partitions.
 */
export async function finishLoad(state: StandinState, job: StandinJob): Promise<void> {
  const load = job.configuration.load;
  const dest = load?.destinationTable;
  if (job.error || !load || !dest) return;
  const project = dest.projectId ?? job.projectId;
  const dataset = String(dest.datasetId);
  const [tableId = '', decorator] = String(dest.tableId).split('$');
  const target = state.datasets.get(`${project}.${dataset}`);
  if (!target) {
    job.error = { reason: 'notFound', message: `Not found: Dataset ${project}:${dataset}` };
    return;
  }
  const elsewhere = loadLocationError(project, dataset, target.location, job.location);
  if (elsewhere) {
    job.error = elsewhere;
    return;
  }
  const key = `${project}.${dataset}.${tableId}`;
  if (!state.tables.has(key)) {
    if (load.createDisposition === 'CREATE_NEVER') {
      job.error = { reason: 'notFound', message: `Not found: Table ${project}:${dataset}.${tableId}` };
      return;
    }
    const posted: TableResource = { tableReference: { projectId: project, datasetId: dataset, tableId } };
    if (load.schema) posted.schema = load.schema;
    if (load.timePartitioning) posted.timePartitioning = load.timePartitioning;
    if (load.rangePartitioning) posted.rangePartitioning = load.rangePartitioning;
    if (load.clustering) posted.clustering = load.clustering;
    state.tables.set(key, tableResource(state, project, dataset, tableId, posted));
  }
  if (state.options.gcsUrl !== undefined && load.sourceFormat === 'PARQUET') {
    await writeRows(state, job, key, decorator, String(load.writeDisposition ?? 'WRITE_APPEND'));
  }
}

/** A load's rows into the table's partitions, per its write disposition (see the header). */
async function writeRows(
  state: StandinState,
  job: StandinJob,
  tableKey: string,
  decorator: string | undefined,
  disposition: string,
): Promise<void> {
  const table = state.tables.get(tableKey);
  const field = table?.timePartitioning?.field;
  const sourceUris = job.configuration.load?.sourceUris ?? [];
  // The Parquet files must fit the provided schema, else the destination table's (parquetSchemaError).
  const provided = job.configuration.load?.schema?.fields;
  const ref = table?.tableReference;
  const schema = {
    fields: (provided ?? table?.schema?.fields ?? []) as SchemaField[],
    provided: provided !== undefined,
    table: `${ref?.projectId}:${ref?.datasetId}.${ref?.tableId}`,
  };
  let read: Map<string, PartitionChunk>;
  try {
    read = await readSources(state.options.gcsUrl ?? '', sourceUris, field, job.jobId, schema);
  } catch (error) {
    job.error = { reason: 'invalid', message: error instanceof Error ? error.message : String(error) };
    return;
  }
  if (decorator !== undefined) {
    const outside = decoratorError(decorator, read.keys());
    if (outside) {
      job.error = outside;
      return;
    }
  }
  const current = state.partitions.get(tableKey) ?? new Map<string, PartitionChunk[]>();
  const targets = decorator !== undefined ? [decorator] : [...new Set([...current.keys(), ...read.keys()])];
  if (disposition === 'WRITE_EMPTY' && targets.some((p) => (current.get(p)?.length ?? 0) > 0)) {
    job.error = { reason: 'duplicate', message: `Already Exists: Table ${tableKey} is not empty` };
    return;
  }
  try {
    // The rows themselves, into the SQL engine's copy of the table (the same disposition).
    await state.sql.loadFromGcs(state.options.gcsUrl ?? '', tableKey, sourceUris, decorator, disposition);
  } catch (error) {
    job.error = { reason: 'invalid', message: error instanceof Error ? error.message : String(error) };
    return;
  }
  if (disposition === 'WRITE_TRUNCATE') for (const partition of targets) current.delete(partition);
  for (const [partition, chunk] of read) current.set(partition, [...(current.get(partition) ?? []), chunk]);
  state.partitions.set(tableKey, current);
  if (job.outputRows === undefined) {
    job.outputRows = [...read.values()].reduce((sum, chunk) => sum + chunk.rows, 0);
  }
}

/**
 * Reads a load's gs:// Parquet sources from the GCS emulator and sums them per partition of
 * `field` (YYYYMMDD), with DuckDB on temporary copies.
 */
async function readSources(
  gcsUrl: string,
  sourceUris: string[],
  field: string | undefined,
  jobId: string,
  schema?: { fields: SchemaField[]; provided: boolean; table: string },
): Promise<Map<string, PartitionChunk>> {
  const dir = await mkdtemp(join(tmpdir(), 'bq-standin-load-'));
  try {
    const paths: string[] = [];
    for (const [index, uri] of sourceUris.entries()) {
      const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
      if (!match) throw new Error(`Invalid source URI ${uri}`);
      const response = await fetch(
        `${gcsUrl}/storage/v1/b/${encodeURIComponent(match[1]!)}/o/${encodeURIComponent(match[2]!)}?alt=media`,
      );
      if (response.status !== 200) throw new Error(`Not found: URI ${uri} (${response.status})`);
      const path = join(dir, `source-${index}.parquet`);
      await writeFile(path, Buffer.from(await response.arrayBuffer()));
      paths.push(path);
      if (schema && schema.fields.length > 0) {
        // Each file's Parquet types and repetitions against the load's schema (parquetSchemaError).
        const leaves = await query(
          `SELECT name, type, repetition_type, logical_type, converted_type FROM parquet_schema('${path.replaceAll("'", "''")}') WHERE coalesce(num_children, 0) = 0`,
        );
        const refused = parquetSchemaError(
          uri,
          leaves as unknown as ParquetColumn[],
          schema.fields,
          schema.provided,
          schema.table,
        );
        if (refused) throw new Error(refused.message);
      }
    }
    const files = `read_parquet([${paths.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ')}])`;
    const columns = await query(`DESCRIBE SELECT * FROM ${files}`);
    const integers = columns
      .filter((c) =>
        /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT)$/.test(
          String(c.column_type),
        ),
      )
      .map((c) => String(c.column_name));
    const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;
    const partition =
      field === undefined
        ? `'${UNPARTITIONED}'`
        : // A NULL partitioning value puts the row in the __NULL__ partition (decoratorError).
          `coalesce(strftime(CAST(${quote(field)} AS DATE), '%Y%m%d'), '${NULL_PARTITION}')`;
    const sums = integers.map((name, i) => `CAST(sum(${quote(name)}) AS VARCHAR) AS s${i}`);
    const rows = await query(
      `SELECT ${partition} AS partition, count(*) AS n${sums.map((s) => `, ${s}`).join('')} FROM ${files} GROUP BY 1`,
    );
    const read = new Map<string, PartitionChunk>();
    for (const row of rows) {
      const chunk: PartitionChunk = { jobId, sourceUris: [...sourceUris], rows: Number(row.n), sums: {} };
      integers.forEach((name, i) => {
        const sum = row[`s${i}`];
        chunk.sums[name] = typeof sum === 'string' ? BigInt(sum) : 0n;
      });
      read.set(String(row.partition), chunk);
    }
    return read;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
