/**
 * Stages 5 and 6, load and record: a stored version into the warehouse, then the load's record
 * into the week's manifest. Used by a run, by a reload from the lake, and by `restore`.
 */
import { join } from 'node:path';
import type { WeekStore } from '../lake/week-store.ts';
import type { Manifest } from '../manifest/manifest.ts';
import { digestFile } from '../util/digest.ts';
import type { Warehouse } from '../warehouse/warehouse.ts';
import type { RunContext } from './run-context.ts';

/** Stage 5, load, then stage 6, record: the manifest rewritten with the load's record. */
export async function load(
  ctx: RunContext,
  log: RunContext['log'],
  warehouse: Warehouse,
  store: WeekStore,
  manifest: Manifest,
  parquetPath: string | undefined,
  force: boolean,
  previousLoad: Manifest['load'],
): Promise<Manifest> {
  const loadStarted = performance.now();
  log.info({ event: 'load.start', warehouse: warehouse.description }, 'loading');
  const loaded = await warehouse.loadWeek({
    dropDate: manifest.dropDate,
    sourceSha256: manifest.source.sha256,
    rows: manifest.rows,
    parquetPath,
    parquetUri: manifest.objects.parquet.uri,
    runId: ctx.runId,
    force,
    previousLoad,
  });
  const loadMs = Math.round(performance.now() - loadStarted);
  log.info({ event: 'load.done', jobId: loaded.jobId, ms: loadMs }, 'loaded');
  return store.recordLoad(
    { ...manifest, timings: { ...manifest.timings, loadMs } },
    loaded,
    warehouse.description,
  );
}

/**
 * The lake already holds this source version: load it from there. The Parquet is checked
 * against the manifest first; a mismatch (a run died between writing a new Parquet and its
 * manifest) means the lake cannot be trusted for this week, and it is rebuilt from the source.
 */
export async function loadFromLake(
  ctx: RunContext,
  log: RunContext['log'],
  warehouse: Warehouse,
  store: WeekStore,
  manifest: Manifest,
  dir: string,
  /**
   * The warehouse records this very version as loaded, yet its rows differ (verify found drift):
   * the load must run anew, not take the earlier load job of this version as done.
   */
  replace = false,
): Promise<boolean> {
  let parquetPath: string | undefined;
  if (warehouse.capabilities.loadsFrom === 'local-file') {
    parquetPath = join(dir, 'from-lake.parquet');
    await ctx.lake.getFile(manifest.objects.parquet.key, parquetPath);
    const digest = await digestFile(parquetPath);
    if (digest.sha256 !== manifest.objects.parquet.sha256) {
      log.warn(
        { event: 'lake.mismatch', key: store.keys.parquet },
        'lake Parquet does not match its manifest; rebuilding',
      );
      return false;
    }
  }
  // Not forced: a load job of this very version that already exists (BigQuery: a run died
  // before recording it) is found by its id and waited for, not run twice; unless the rows
  // drifted since that load (`replace`). A DuckDB load always replaces the week's rows.
  await load(ctx, log, warehouse, store, manifest, parquetPath, replace, manifest.load);
  return true;
}
