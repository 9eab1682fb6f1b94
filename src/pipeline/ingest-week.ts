/**
 * One week through every stage: fetch → convert → store → load → record. Each stage hands the
 * next files and the run id; the manifest records what was done, so a rerun resumes where the
 * last run stopped and never repeats what is already in place:
 *
 * - lake manifest and warehouse both hold this source version: a conditional request (or, when
 *   the server has no validators, the fetched file's sha256) confirms it is unchanged, and the
 *   week is "already loaded";
 * - the lake holds this version but the warehouse does not (a run died after storing, or a new
 *   warehouse): load from the lake, without converting again;
 * - otherwise, or with `force`: everything.
 *
 * A run killed at any point leaves nothing a rerun cannot finish: the lake's objects are
 * written whole or not at all, the manifest (the commit marker) last; the warehouse load is
 * atomic; a week loaded but not yet recorded in its manifest is recorded by the next run
 * (`record.repaired`); and what a killed writer left beside the week's objects is removed when
 * the next run begins the week. Two runs of one week at once (see `storeOrAdopt`) converge on
 * one stored version and one load.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileNameFor, type IsoDate } from '../dates/drop-dates.ts';
import { FetchError, MtaIngestError, oneLine } from '../errors.ts';
import { fetchWeek, type FetchResult } from '../fetch/fetch-week.ts';
import { convertWeek, type ConvertResult } from '../convert/convert-week.ts';
import { weekKeys, type WeekKeys } from '../lake/lake-layout.ts';
import {
  parseManifest,
  serializeManifest,
  MANIFEST_VERSION,
  type Manifest,
  type ManifestObject,
} from '../manifest/manifest.ts';
import { digestFile } from '../util/digest.ts';
import { measureWeek, strictFailure, type WeekQuality } from '../quality/week-quality.ts';
import { adviceFor } from './advice.ts';
import { TOOL } from '../tool.ts';
import type { LoadedWeek, Warehouse } from '../warehouse/warehouse.ts';
import type { RunContext, WeekResources } from './run-context.ts';

/**
 * How a week ended. `suspect`: fetched and stored beside the current version, but held back by
 * the plausibility gate (not loaded). `interrupted`: a signal stopped it mid-week (nothing
 * half-written). `skipped`: a signal stopped the run before the week began.
 */
export type WeekOutcome =
  'loaded' | 'already-loaded' | 'not-published' | 'suspect' | 'failed' | 'interrupted' | 'skipped';

export interface WeekReport {
  dropDate: IsoDate;
  outcome: WeekOutcome;
  sourceUrl: string;
  rows?: number | undefined;
  rejects?: number | undefined;
  /** Source bytes fetched in this run (0 when nothing was downloaded). */
  bytes: number;
  seconds: number;
  /** How it was done or why not, one line. */
  detail?: string | undefined;
  manifestUri?: string | undefined;
  /** Milliseconds each stage took (the stages this run did). */
  timings?: Partial<Record<WeekStage, number>> | undefined;
  /** The stage that failed, for a failed week. */
  failedStage?: WeekStage | undefined;
  /** What to do next, for a week that did not load (pipeline/advice.ts). */
  advice?: string | undefined;
}

export type WeekStage = 'fetch' | 'convert' | 'measure' | 'store' | 'load';

/** What a live display needs: a stage began, moved on, or ended. */
export interface ProgressEvent {
  dropDate: IsoDate;
  stage: WeekStage;
  state: 'start' | 'progress' | 'done';
  /** fetch: bytes received so far; store: bytes written so far. */
  bytes?: number;
  /** convert: rows converted. */
  rows?: number;
}

export interface WeekOptions {
  force: boolean;
  /** Refuse a week with rejects or duplicate readings (nothing stored or loaded). */
  strict: boolean;
  /** Whether this is the latest drop date (a missing file is then "not yet", not "never"). */
  isLatest?: boolean;
}

/** A `fetch.progress` debug event every this many bytes (a kill point inside the download). */
const FETCH_LOG_STEP = 8 * 1024 * 1024;

/**
 * The report of a week whose warehouse could not be opened (a DuckDB file another run held past
 * the wait): the week failed, and the run goes on to the next.
 */
export function warehouseUnavailable(
  ctx: RunContext,
  date: IsoDate,
  error: unknown,
  options: Pick<WeekOptions, 'isLatest'>,
): WeekReport {
  ctx.log.error(
    { event: 'week.failed', dropDate: date, stage: 'load', error: oneLine(error) },
    'week failed',
  );
  const week: WeekReport = {
    dropDate: date,
    outcome: 'failed',
    sourceUrl: sourceUrlFor(ctx.config.sourceUrl, date),
    bytes: 0,
    seconds: 0,
    detail: oneLine(error),
    failedStage: 'load',
  };
  return { ...week, advice: adviceFor(week, options.isLatest ?? false) };
}

export function sourceUrlFor(sourceUrl: string, date: IsoDate): string {
  return `${sourceUrl}/${fileNameFor(date)}`;
}

export async function ingestWeek(
  ctx: RunContext,
  week: WeekResources,
  date: IsoDate,
  options: WeekOptions,
): Promise<WeekReport> {
  const started = performance.now();
  const url = sourceUrlFor(ctx.config.sourceUrl, date);
  const log = ctx.log.child({ dropDate: date });
  // The stages below log through this week's logger, so every event names its drop date.
  const weekCtx: RunContext = { ...ctx, log };
  const dir = join(ctx.workDir, date);
  let fetched: FetchResult | undefined;
  const timings: Partial<Record<WeekStage, number>> = {};
  let stage: WeekStage = 'fetch';
  /** Marks a stage's start and returns the function that marks its end. */
  const begin = (next: WeekStage): (() => number) => {
    stage = next;
    ctx.progress?.({ dropDate: date, stage: next, state: 'start' });
    const started = performance.now();
    return () => {
      const ms = performance.now() - started;
      timings[next] = Math.round(ms);
      ctx.progress?.({ dropDate: date, stage: next, state: 'done' });
      return ms;
    };
  };
  const report = (outcome: WeekOutcome, fields: Partial<WeekReport> = {}): WeekReport => {
    const week: WeekReport = {
      dropDate: date,
      outcome,
      sourceUrl: url,
      bytes: 0,
      seconds: (performance.now() - started) / 1000,
      timings,
      ...fields,
    };
    return { ...week, advice: adviceFor(week, options.isLatest ?? false) };
  };
  try {
    await mkdir(dir, { recursive: true });
    const keys = weekKeys(date);
    const swept = await ctx.lake.removeStaleTemporaries?.([
      keys.raw,
      keys.parquet,
      keys.rejects,
      keys.manifest,
    ]);
    if (swept)
      log.info({ event: 'lake.swept', temporaries: swept }, 'removed what a killed run left in the lake');
    const manifestText = await ctx.lake.getText(keys.manifest);
    const manifest =
      manifestText === undefined ? undefined : parseManifest(manifestText, ctx.lake.uriOf(keys.manifest));
    const loaded = await week.warehouse.loadedWeek(date, manifest?.load);
    const inWarehouse =
      manifest !== undefined &&
      loaded?.sourceSha256 === manifest.source.sha256 &&
      loaded.rows === manifest.rows;
    const confirm = inWarehouse && !options.force;

    log.info({ event: 'fetch.start', url, conditional: confirm }, 'fetching');
    let loggedBytes = 0;
    const fetchDone = begin('fetch');
    fetched = await fetchWeek({
      url,
      spoolDir: dir,
      policy: ctx.config.fetch,
      etag: confirm ? manifest.source.etag : undefined,
      lastModified: confirm ? manifest.source.lastModified : undefined,
      log,
      signal: ctx.signal,
      onBytes: (bytes) => {
        ctx.progress?.({ dropDate: date, stage: 'fetch', state: 'progress', bytes });
        if (bytes >= loggedBytes + FETCH_LOG_STEP) {
          loggedBytes = bytes;
          log.debug({ event: 'fetch.progress', bytes }, 'fetching');
        }
      },
    });
    if (fetched.outcome === 'fetched') {
      ctx.progress?.({ dropDate: date, stage: 'fetch', state: 'progress', bytes: fetched.bytes });
    }
    const fetchMs = fetchDone();
    log.info({ event: 'fetch.done', outcome: fetched.outcome, ms: Math.round(fetchMs) }, 'fetched');

    const unchanged = fetched.outcome === 'not-modified' || sameSource(fetched, manifest);
    if (confirm && manifest && unchanged) {
      const recordedHere = manifest.load?.warehouse === week.warehouse.description;
      if (manifest.load === undefined || (recordedHere && manifest.load.jobId !== loaded.jobId)) {
        // Loaded, but a run died before recording it in the manifest: record it now. (A record
        // of another warehouse sharing this lake is left alone: it is that warehouse's state.)
        await recordLoad(weekCtx, week.warehouse, keys, manifest, loaded);
        log.info({ event: 'record.repaired', jobId: loaded.jobId }, 'recorded a load the manifest lacked');
      }
      return report('already-loaded', {
        rows: manifest.rows,
        rejects: manifest.rejects,
        bytes: fetched.outcome === 'fetched' ? fetched.bytes : 0,
        detail: `source unchanged (sha256 ${manifest.source.sha256.slice(0, 12)})`,
        manifestUri: ctx.lake.uriOf(keys.manifest),
      });
    }
    if (fetched.outcome === 'not-published') {
      return report('not-published', { detail: `HTTP ${fetched.status} for ${url}` });
    }
    if (fetched.outcome === 'not-modified') {
      throw new FetchError(
        `${url}: the server answered 304 Not Modified to a request that was not conditional`,
      );
    }

    if (!options.force && manifest && sameSource(fetched, manifest)) {
      const loadDone = begin('load');
      const resumed = await loadFromLake(weekCtx, week.warehouse, keys, manifest, dir);
      loadDone();
      if (resumed) {
        return report('loaded', {
          rows: manifest.rows,
          rejects: manifest.rejects,
          bytes: fetched.bytes,
          detail: 'loaded from the lake (the source was already stored)',
          manifestUri: ctx.lake.uriOf(keys.manifest),
        });
      }
    }

    log.info({ event: 'convert.start', layout: fetched.layout, lines: fetched.lines }, 'converting');
    const convertDone = begin('convert');
    const converted = await convertWeek({
      dropDate: date,
      sourceFile: fileNameFor(date),
      layout: fetched.layout,
      linesPath: fetched.linesPath,
      unterminatedLastLine: fetched.unterminatedLastLine,
      outDir: dir,
      db: await week.converter(),
    });
    const convertMs = convertDone();
    ctx.progress?.({ dropDate: date, stage: 'convert', state: 'progress', rows: converted.rows });
    log.info(
      { event: 'convert.done', rows: converted.rows, rejects: converted.rejects, ms: Math.round(convertMs) },
      'converted',
    );

    const measureDone = begin('measure');
    const quality = await measureWeek(await week.converter(), converted.parquetPath, date, {
      rejects: converted.rejects,
      unmatchedStations: converted.unmatchedStations ?? 0,
    });
    measureDone();
    log.info({ event: 'quality', ...quality }, 'measured');
    const refused = options.strict ? strictFailure(quality) : undefined;
    if (refused) {
      return report('failed', {
        rows: converted.rows,
        rejects: converted.rejects,
        bytes: fetched.bytes,
        detail: refused,
      });
    }

    const storeStarted = performance.now();
    const storeDone = begin('store');
    const source = fetched;
    const stored = await storeOrAdopt(weekCtx, keys, source.sha256, manifest, () =>
      store(weekCtx, date, keys, source, converted, quality, { fetchMs, convertMs, storeStarted }),
    );
    storeDone();
    const loadDone = begin('load');
    await load(weekCtx, week.warehouse, keys, stored, converted.parquetPath, options.force, manifest?.load);
    loadDone();
    log.info({ event: 'week.done', rows: converted.rows, rejects: converted.rejects }, 'loaded');
    return report('loaded', {
      rows: converted.rows,
      rejects: converted.rejects,
      bytes: fetched.bytes,
      detail: options.force && inWarehouse ? 'reloaded (--force)' : undefined,
      manifestUri: ctx.lake.uriOf(keys.manifest),
    });
  } catch (error) {
    const message = oneLine(error);
    log.error(
      { event: 'week.failed', error: message, stage: error instanceof MtaIngestError ? error.name : 'Error' },
      'week failed',
    );
    return report('failed', { detail: message, failedStage: stage });
  } finally {
    if (fetched?.outcome === 'fetched') await fetched.rawGzWritten.catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

function sameSource(fetched: FetchResult, manifest: Manifest | undefined): boolean {
  return fetched.outcome === 'fetched' && fetched.sha256 === manifest?.source.sha256;
}

/**
 * Stage 3, store: raw (gzip), Parquet and rejects, then the manifest, the week's commit
 * marker. A rejects object from an earlier version of the week is removed once the new
 * manifest no longer names it.
 */
async function store(
  ctx: RunContext,
  date: IsoDate,
  keys: WeekKeys,
  fetched: Extract<FetchResult, { outcome: 'fetched' }>,
  converted: ConvertResult,
  quality: WeekQuality,
  timing: { fetchMs: number; convertMs: number; storeStarted: number },
): Promise<Manifest> {
  let written = 0;
  /** One object; `store.object` names it (raw, parquet, rejects) once it is whole in the lake. */
  const put = async (
    object: 'raw' | 'parquet' | 'rejects',
    path: string,
    contentType: string,
  ): Promise<ManifestObject> => {
    const key = keys[object];
    const digest = await digestFile(path);
    const stored = await ctx.lake.putFile(key, path, contentType);
    written += digest.bytes;
    ctx.progress?.({ dropDate: date, stage: 'store', state: 'progress', bytes: written });
    ctx.log.info({ event: 'store.object', object, key, bytes: digest.bytes }, 'stored');
    return { ...stored, ...digest };
  };
  await fetched.rawGzWritten;
  const raw = await put('raw', fetched.rawGzPath, 'application/gzip');
  const parquet = await put('parquet', converted.parquetPath, 'application/vnd.apache.parquet');
  const rejects = converted.rejectsPath
    ? await put('rejects', converted.rejectsPath, 'application/vnd.apache.parquet')
    : undefined;
  const manifest: Manifest = {
    manifestVersion: MANIFEST_VERSION,
    dropDate: date,
    sourceFile: fileNameFor(date),
    source: {
      url: fetched.url,
      bytes: fetched.bytes,
      sha256: fetched.sha256,
      etag: fetched.etag,
      lastModified: fetched.lastModified,
      layout: fetched.layout,
      lines: fetched.lines,
      blankLines: fetched.blankLines,
    },
    rows: converted.rows,
    rejects: converted.rejects,
    readings: { from: converted.readingsFrom, to: converted.readingsTo },
    quality,
    objects: { raw, parquet, rejects },
    runId: ctx.runId,
    writtenAt: new Date().toISOString(),
    tool: TOOL,
    timings: {
      fetchMs: Math.round(timing.fetchMs),
      convertMs: Math.round(timing.convertMs),
      storeMs: Math.round(performance.now() - timing.storeStarted),
    },
  };
  await ctx.lake.putText(keys.manifest, serializeManifest(manifest), 'application/json');
  if (!rejects) await ctx.lake.delete(keys.rejects);
  ctx.log.info({ event: 'store.manifest', key: keys.manifest }, 'manifest written');
  return manifest;
}

/** Stage 4, load, then the manifest rewritten with the load's record. */
async function load(
  ctx: RunContext,
  warehouse: Warehouse,
  keys: WeekKeys,
  manifest: Manifest,
  parquetPath: string | undefined,
  force: boolean,
  previousLoad: Manifest['load'],
): Promise<Manifest> {
  const loadStarted = performance.now();
  ctx.log.info({ event: 'load.start', warehouse: warehouse.description }, 'loading');
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
  ctx.log.info({ event: 'load.done', jobId: loaded.jobId, ms: loadMs }, 'loaded');
  return recordLoad(ctx, warehouse, keys, { ...manifest, timings: { ...manifest.timings, loadMs } }, loaded);
}

/** Attempts at the record step's manifest write when another run's write got in between. */
const RECORD_ATTEMPTS = 3;

/**
 * Stage 5, record: the manifest rewritten with the load's record. Another run may have written
 * the week's manifest since this one read it: when that names another source version, it is
 * not overwritten (that run records its own load); when it names this version, a write that
 * lost the race to it is simply made again.
 */
async function recordLoad(
  ctx: RunContext,
  warehouse: Warehouse,
  keys: WeekKeys,
  manifest: Manifest,
  loaded: LoadedWeek,
): Promise<Manifest> {
  const recorded: Manifest = {
    ...manifest,
    load: {
      warehouse: warehouse.description,
      jobId: loaded.jobId,
      rows: loaded.rows,
      loadedAt: loaded.loadedAt,
    },
  };
  for (let attempt = 1; ; attempt += 1) {
    const current = await readManifest(ctx, keys);
    if (current && current.source.sha256 !== manifest.source.sha256) {
      ctx.log.warn(
        { event: 'record.superseded', sha256: current.source.sha256 },
        'another run stored a newer source version of this week meanwhile; its run records its own load',
      );
      return recorded;
    }
    try {
      await ctx.lake.putText(keys.manifest, serializeManifest(recorded), 'application/json');
      ctx.log.info({ event: 'record.done', key: keys.manifest, jobId: loaded.jobId }, 'load recorded');
      return recorded;
    } catch (error) {
      if (attempt >= RECORD_ATTEMPTS) throw error;
      ctx.log.warn(
        { event: 'record.retry', attempt, error: oneLine(error) },
        'the manifest changed while it was written; writing it again',
      );
    }
  }
}

async function readManifest(ctx: RunContext, keys: WeekKeys): Promise<Manifest | undefined> {
  const text = await ctx.lake.getText(keys.manifest);
  return text === undefined ? undefined : parseManifest(text, ctx.lake.uriOf(keys.manifest));
}

/**
 * Stage 3 with another run of the same week at the same time (a retry overlapping a slow run;
 * a scheduler and a person). Where the warehouse does not serialise runs (a DuckDB file does:
 * see duckdb/lock.ts), both store. The same source converts to byte-identical objects (the
 * engine keeps row order), so whichever run's write lands, the objects are the same, and the
 * lake's generation preconditions see a write racing an identical one as already done. If a
 * write still fails and the lake's manifest now commits this same source version, the other
 * run has stored the week: this run adopts its manifest and goes on to the load, whose job id
 * is the same for both (one load). Any other failure is the week's.
 */
async function storeOrAdopt(
  ctx: RunContext,
  keys: WeekKeys,
  sha256: string,
  /** The manifest as this run read it at the week's start: not another run's work. */
  before: Manifest | undefined,
  store: () => Promise<Manifest>,
): Promise<Manifest> {
  try {
    return await store();
  } catch (error) {
    const committed = await readManifest(ctx, keys).catch(() => undefined);
    const byAnotherRun =
      committed?.source.sha256 === sha256 &&
      (committed.runId !== before?.runId || committed.writtenAt !== before.writtenAt);
    if (!committed || !byAnotherRun) throw error;
    ctx.log.info(
      { event: 'store.adopted', adoptedRunId: committed.runId, error: oneLine(error) },
      'another run stored this source version meanwhile; loading from its manifest',
    );
    return committed;
  }
}

/**
 * The lake already holds this source version: load it from there. The Parquet is checked
 * against the manifest first; a mismatch (a run died between writing a new Parquet and its
 * manifest) means the lake cannot be trusted for this week, and it is rebuilt from the source.
 */
async function loadFromLake(
  ctx: RunContext,
  warehouse: Warehouse,
  keys: WeekKeys,
  manifest: Manifest,
  dir: string,
): Promise<boolean> {
  let parquetPath: string | undefined;
  if (warehouse.capabilities.loadsFrom === 'local-file') {
    parquetPath = join(dir, 'from-lake.parquet');
    await ctx.lake.getFile(manifest.objects.parquet.key, parquetPath);
    const digest = await digestFile(parquetPath);
    if (digest.sha256 !== manifest.objects.parquet.sha256) {
      ctx.log.warn(
        { event: 'lake.mismatch', key: keys.parquet },
        'lake Parquet does not match its manifest; rebuilding',
      );
      return false;
    }
  }
  await load(ctx, warehouse, keys, manifest, parquetPath, false, manifest.load);
  return true;
}
