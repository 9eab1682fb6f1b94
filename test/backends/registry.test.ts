/**
 * The backend registry (src/backends/registry.ts): which backend a URI names, the refusal of
 * one no backend takes, the capabilities each declares (and its adapter carries), and the
 * refusal of a lake a staging warehouse cannot load from, before anything is opened.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { openLake, openWarehouse, warehouseCapabilities } from '../../src/backends.ts';
import {
  LAKE_BACKENDS,
  WAREHOUSE_BACKENDS,
  checkLoadsFrom,
  lakeBackendFor,
  localPathOf,
  warehouseBackendFor,
} from '../../src/backends/registry.ts';
import { lazyEngine } from '../../src/duckdb/duckdb-engine.ts';
import { MemoryLake } from '../support/fakes/memory-lake.ts';

const scratch = await mkdtemp(join(tmpdir(), 'mta-registry-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('the backend a URI names', () => {
  it('a lake: a folder path or file:// URL is the local folder, gs:// is Cloud Storage', () => {
    expect(lakeBackendFor('./data/lake').name).toBe('local folder');
    expect(lakeBackendFor('file:///data/lake').name).toBe('local folder');
    expect(lakeBackendFor('gs://bucket/prefix').name).toBe('Cloud Storage');
  });

  it('a warehouse: a file path or duckdb:PATH is DuckDB, bigquery:// is BigQuery', () => {
    expect(warehouseBackendFor('warehouse.duckdb').name).toBe('DuckDB');
    expect(warehouseBackendFor('duckdb:./w.duckdb').name).toBe('DuckDB');
    expect(warehouseBackendFor('bigquery://my-project/turnstiles').name).toBe('BigQuery');
  });

  it('refuses a scheme no backend takes, naming where the URI came from and every form', () => {
    expect(() => lakeBackendFor('ftp://x', 'MTA_INGEST_LAKE')).toThrow(
      new UsageError('MTA_INGEST_LAKE ftp://x: expected a folder path, a file:// URL or gs://bucket/prefix'),
    );
    expect(() => warehouseBackendFor('postgres://db')).toThrow(
      new UsageError(
        '--warehouse postgres://db: expected a DuckDB file path (or duckdb:PATH) or bigquery://project/dataset',
      ),
    );
    expect(() => warehouseBackendFor('duckdb:')).toThrow(UsageError);
  });

  it('parses its URI without opening anything', () => {
    expect(lakeBackendFor('gs://bkt/p/').parse('gs://bkt/p/')).toEqual({ bucket: 'bkt', prefix: 'p/' });
    expect(
      warehouseBackendFor('bigquery://my-project/d?location=eu').parse('bigquery://my-project/d?location=eu'),
    ).toEqual({
      projectId: 'my-project',
      datasetId: 'd',
      location: 'EU',
    });
    expect(warehouseBackendFor('duckdb://w.duckdb').parse('duckdb://w.duckdb')).toEqual({ path: 'w.duckdb' });
  });
});

describe('the local path a run checks before it fetches', () => {
  it('is the folder or DuckDB file; a cloud backend, or a URI no backend takes, has none', () => {
    expect(localPathOf('lake', 'file:///data/lake')).toBe('/data/lake');
    expect(localPathOf('lake', './lake')).toBe('./lake');
    expect(localPathOf('lake', 'gs://bkt/p')).toBeUndefined();
    expect(localPathOf('lake', 'ftp://x')).toBeUndefined();
    expect(localPathOf('warehouse', 'duckdb:w.duckdb')).toBe('w.duckdb');
    expect(localPathOf('warehouse', 'bigquery://my-project/d')).toBeUndefined();
    expect(localPathOf('warehouse', 'duckdb:')).toBeUndefined();
  });
});

describe('declared capabilities', () => {
  it('every backend declares one distinct way of naming it', () => {
    expect(LAKE_BACKENDS.map((b) => b.capabilities.scheme)).toEqual(['file', 'gs']);
    expect(WAREHOUSE_BACKENDS.map((b) => b.name)).toEqual(['DuckDB', 'BigQuery']);
  });

  it('DuckDB is held by one process and answers here; BigQuery is a staging destination of gs:// lakes', () => {
    expect(warehouseCapabilities('w.duckdb')).toMatchObject({
      loadsFrom: 'local-file',
      lakeSchemes: 'any',
      loadState: 'same-transaction',
      exclusivePerProcess: true,
      listsWeeks: true,
      answersQueries: true,
      readsWeekFacts: true,
    });
    expect(warehouseCapabilities('bigquery://my-project/d')).toMatchObject({
      loadsFrom: 'lake-uri',
      lakeSchemes: ['gs'],
      loadState: 'after-load',
      exclusivePerProcess: false,
      listsWeeks: true,
      answersQueries: true,
      readsWeekFacts: false,
    });
  });

  it("an opened adapter carries its backend's declared capabilities", async () => {
    const lake = await openLake(join(scratch, 'lake'));
    expect(lake.capabilities).toBe(lakeBackendFor(lake.uri).capabilities);
    expect(lake.capabilities.leavesTemporaries).toBe(true);
    expect(await lake.location()).toBeUndefined();
    const engine = lazyEngine({ tempDirectory: join(scratch, 'spill') });
    try {
      const file = join(scratch, 'w.duckdb');
      const warehouse = await openWarehouse(file, { engine, lake });
      try {
        expect(warehouse.capabilities).toBe(warehouseCapabilities(file));
      } finally {
        await warehouse.close();
      }
    } finally {
      engine.opened()?.close();
    }
  });
});

describe('a lake the warehouse cannot load from', () => {
  it('is refused for BigQuery before the warehouse is opened (no client, no request)', async () => {
    const lake = await openLake(join(scratch, 'lake'));
    const engine = lazyEngine({ tempDirectory: join(scratch, 'spill') });
    await expect(openWarehouse('bigquery://my-project/d', { engine, lake })).rejects.toThrow(
      new UsageError(`the BigQuery warehouse loads from Cloud Storage: use a gs:// lake, not ${lake.uri}`),
    );
    expect(engine.opened()).toBeUndefined();
  });

  it('is no concern of a read-only open, nor of a warehouse that loads from any lake', () => {
    const lake = new MemoryLake();
    expect(() => checkLoadsFrom(warehouseBackendFor('w.duckdb'), lake)).not.toThrow();
    expect(() => checkLoadsFrom(warehouseBackendFor('bigquery://my-project/d'), lake)).toThrow(
      /loads from Cloud Storage: use a gs:\/\/ lake, not mem:\/\/lake/,
    );
  });
});
