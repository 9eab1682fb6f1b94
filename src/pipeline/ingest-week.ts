/**
 * One week through every stage, numbered as in docs/design.md: 1. fetch (fetch/fetch-week.ts)
 * → 2. convert (convert/convert-week.ts) → 3. measure and gate (gate-week.ts) → 4. store
 * (lake/week-store.ts) → 5. load → 6. record (load-week.ts). This file is the orchestration.
 * What the week needs is decided first, from the stores themselves (week-decision.ts):
 *
 * - `nothing`: the current version passed the gate and the lake and warehouse hold it exactly:
 *   a conditional request (or, when the server has no validators, the body's sha256) confirms
 *   the source is unchanged, and the week is "already loaded";
 * - `load from lake`: the lake is intact, the warehouse lacks or drifted from the week: reload
 *   from the lake, without converting again;
 * - `fetch` (or `--force`): everything. A version the plausibility gate finds suspect is kept
 *   in the lake beside the current one (lake/week-store.ts) and not loaded.
 *
 * A run killed at any point leaves nothing a rerun cannot finish: the lake's objects are
 * written whole or not at all, the manifest (the commit marker) last; the warehouse load is
 * atomic; a week loaded but not yet recorded in its manifest is recorded by the next run
 * (`record.repaired`); and what a killed writer left beside the week's objects is removed when
 * the next run begins the week. Two runs of one week at once converge on one stored version and
 * one load (WeekStore.commitCurrent adopts the other run's identical commit).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileNameFor, sourceUrlFor, type IsoDate } from '../dates/drop-dates.ts';
import { FetchError, MtaIngestError, failureKindOf, oneLine } from '../errors.ts';
import { fetchWeek, type FetchResult } from '../fetch/fetch-week.ts';
import { convertWeek } from '../convert/convert-week.ts';
import { VERSIONS_PREFIX, WeekStore } from '../lake/week-store.ts';
import type { Manifest } from '../manifest/manifest.ts';
import { adviceFor } from './advice.ts';
import { assessWeek } from './week-decision.ts';
import { gateWeek } from './gate-week.ts';
import { load, loadFromLake } from './load-week.ts';
import { draftOf } from './version-draft.ts';
import type { RunContext, WeekResources } from './run-context.ts';
import type { WeekOptions, WeekOutcome, WeekResult, WeekStage } from './week-result.ts';

import { reasonOf, throwIfStopped } from '../util/abort.ts';

export type { ProgressEvent, WeekOptions, WeekOutcome, WeekResult, WeekStage } from './week-result.ts';

/** A `fetch.progress` debug event every this many bytes (a kill point inside the download). */
const FETCH_LOG_STEP = 8 * 1024 * 1024;

export async function ingestWeek(
  ctx: RunContext,
  week: WeekResources,
  date: IsoDate,
  options: WeekOptions,
): Promise<WeekResult> {
  const started = performance.now();
  const url = sourceUrlFor(ctx.config.sourceUrl, date);
  const log = ctx.log.child({ dropDate: date });
  const dir = join(ctx.workDir, date);
  let fetched: FetchResult | undefined;
  const timings: Partial<Record<WeekStage, number>> = {};
  let stage: WeekStage = 'fetch';
  /** Marks a stage's start and returns the function that marks its end. */
  const begin = (next: WeekStage): (() => number) => {
    stage = next;
    // A stage never begins once the run is stopped (the catch below reports the week interrupted).
    throwIfStopped(ctx.signal);
    ctx.progress?.({ dropDate: date, stage: next, state: 'start' });
    const started = performance.now();
    return () => {
      const ms = performance.now() - started;
      timings[next] = Math.round(ms);
      ctx.progress?.({ dropDate: date, stage: next, state: 'done' });
      return ms;
    };
  };
  const report = (outcome: WeekOutcome, fields: Partial<WeekResult> = {}): WeekResult => {
    const week: WeekResult = {
      dropDate: date,
      outcome,
      sourceUrl: url,
      bytes: 0,
      // To the millisecond, as the stage timings: no float noise in JSON or metrics.
      seconds: Math.round(performance.now() - started) / 1000,
      timings,
      ...fields,
    };
    return { ...week, advice: adviceFor(week, options.isLatest ?? false, ctx.config.tool) };
  };
  try {
    await mkdir(dir, { recursive: true });
    const store = new WeekStore(ctx.lake, date, log, dir);
    const { keys } = store;
    await sweepTemporaries(ctx, store, log);
    const assessed = await assessWeek(store, week.warehouse, date, options.force, options.readRows);
    const { manifest, loaded } = assessed;
    for (const problem of [
      ...assessed.lakeProblems,
      ...(assessed.trusted ? assessed.warehouseProblems : []),
    ]) {
      log.warn({ event: 'week.drift', problem }, 'the stores differ from the manifest; healing');
    }
    // Validators (a 304, an unchanged sha256) only confirm a version that passed the gate and
    // that the stores hold whole: a cut body's ETag must never lock the cut in.
    const confirm = assessed.need === 'nothing';

    // 1. Fetch.
    log.info({ event: 'fetch.start', url, conditional: confirm }, 'fetching');
    let loggedBytes = 0;
    const fetchDone = begin('fetch');
    fetched = await fetchWeek({
      url,
      spoolDir: dir,
      policy: ctx.config.fetch,
      etag: confirm ? manifest?.source.etag : undefined,
      lastModified: confirm ? manifest?.source.lastModified : undefined,
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
    if (confirm && manifest && loaded && unchanged) {
      const recordedHere = manifest.load?.warehouse === week.warehouse.description;
      if (manifest.load === undefined || (recordedHere && manifest.load.jobId !== loaded.jobId)) {
        // Loaded, but a run died before recording it in the manifest: record it now. (A record
        // of another warehouse sharing this lake is left alone: it is that warehouse's state.)
        await store.recordLoad(manifest, loaded, week.warehouse.description);
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

    // Stored already: 5. load (and 6. record) from the lake, without converting again.
    if (assessed.need === 'load from lake' && manifest && sameSource(fetched, manifest)) {
      const loadDone = begin('load');
      const drifted = loaded?.sourceSha256 === manifest.source.sha256;
      const resumed = await loadFromLake(ctx, log, week.warehouse, store, manifest, dir, drifted);
      loadDone();
      if (resumed) {
        return report('loaded', {
          rows: manifest.rows,
          rejects: manifest.rejects,
          bytes: fetched.bytes,
          detail: loaded
            ? 'reloaded from the lake (the warehouse had drifted)'
            : 'loaded from the lake (the source was already stored)',
          manifestUri: ctx.lake.uriOf(keys.manifest),
        });
      }
    }

    // 2. Convert.
    log.info({ event: 'convert.start', layout: fetched.layout, lines: fetched.lines }, 'converting');
    const convertDone = begin('convert');
    const converted = await convertWeek({
      dropDate: date,
      sourceFile: fileNameFor(date),
      layout: fetched.layout,
      linesPath: fetched.linesPath,
      unterminatedLastLine: fetched.unterminatedLastLine,
      spoolRejects: fetched.overlongLines,
      outDir: dir,
      db: await week.converter(),
    });
    const convertMs = convertDone();
    ctx.progress?.({ dropDate: date, stage: 'convert', state: 'progress', rows: converted.rows });
    log.info(
      { event: 'convert.done', rows: converted.rows, rejects: converted.rejects, ms: Math.round(convertMs) },
      'converted',
    );

    // 3. Measure and gate.
    const measureDone = begin('measure');
    const { quality, gate, refused } = await gateWeek(
      ctx.lake,
      await week.converter(),
      date,
      converted,
      manifest,
      options,
    );
    measureDone();
    log.info({ event: 'quality', ...quality }, 'measured');
    log.info(
      { event: 'gate', verdict: gate.verdict, reasons: gate.reasons, reference: gate.reference },
      'gate',
    );
    if (refused) {
      return report('failed', {
        rows: converted.rows,
        rejects: converted.rejects,
        bytes: fetched.bytes,
        detail: refused,
      });
    }

    // 4. Store: a suspect version is kept beside the current one, and goes no further.
    const storeStarted = performance.now();
    const storeDone = begin('store');
    await fetched.rawGzWritten;
    const files = { raw: fetched.rawGzPath, parquet: converted.parquetPath, rejects: converted.rejectsPath };
    const onBytes = (bytes: number): void =>
      ctx.progress?.({ dropDate: date, stage: 'store', state: 'progress', bytes });
    const version = await store.putVersion(
      draftOf(ctx.runId, date, fetched, converted, quality, gate, { fetchMs, convertMs, storeStarted }),
      files,
      onBytes,
    );
    if (gate.verdict === 'suspect') {
      await store.recordSuspect(version, manifest, gate.reasons);
      storeDone();
      log.warn({ event: 'week.suspect', reasons: gate.reasons }, 'held back as suspect');
      return report('suspect', {
        rows: converted.rows,
        rejects: converted.rejects,
        bytes: fetched.bytes,
        detail: `${gate.reasons.join('; ')}; kept in the lake at ${ctx.lake.uriOf(version.versionPrefix ?? '')}, not loaded`,
        manifestUri: manifest ? ctx.lake.uriOf(keys.manifest) : undefined,
      });
    }
    const stored = await store.commitCurrent(version, files, manifest, onBytes);
    storeDone();
    // 5. Load, and 6. record the load in the manifest.
    const loadDone = begin('load');
    await load(ctx, log, week.warehouse, store, stored, converted.parquetPath, options.force, manifest?.load);
    loadDone();
    log.info({ event: 'week.done', rows: converted.rows, rejects: converted.rejects }, 'loaded');
    const replaced = manifest !== undefined && manifest.source.sha256 !== stored.source.sha256;
    return report('loaded', {
      rows: converted.rows,
      rejects: converted.rejects,
      bytes: fetched.bytes,
      detail:
        gate.verdict === 'accepted'
          ? `accepted past the gate: ${gate.reasons.join('; ')}`
          : options.force && loaded
            ? 'reloaded (--force)'
            : replaced
              ? `a new source version replaced ${manifest.source.sha256.slice(0, 12)} (kept in the lake)`
              : undefined,
      manifestUri: ctx.lake.uriOf(keys.manifest),
    });
  } catch (error) {
    if (ctx.signal?.aborted) {
      // Stopped by a signal: whatever the stage threw, nothing is half-written (atomic lake
      // writes, a rolled-back load), and the week's line says where it stopped.
      log.warn({ event: 'week.interrupted', stage, error: oneLine(error) }, 'week interrupted');
      return report('interrupted', { detail: `${reasonOf(ctx.signal)} during ${stage}`, failedStage: stage });
    }
    const message = oneLine(error);
    log.error(
      { event: 'week.failed', error: message, stage: error instanceof MtaIngestError ? error.name : 'Error' },
      'week failed',
    );
    return report('failed', { detail: message, failedStage: stage, failure: failureKindOf(error) });
  } finally {
    if (fetched?.outcome === 'fetched') await fetched.rawGzWritten.catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Removes what a killed writer left beside the week's objects, in a lake whose writes can. */
async function sweepTemporaries(ctx: RunContext, store: WeekStore, log: RunContext['log']): Promise<void> {
  if (!ctx.lake.capabilities.leavesTemporaries) return;
  const { keys, date } = store;
  const swept = await ctx.lake.removeStaleTemporaries([
    keys.raw,
    keys.parquet,
    keys.rejects,
    keys.manifest,
    `${VERSIONS_PREFIX}drop_date=${date}/`,
  ]);
  if (swept > 0)
    log.info({ event: 'lake.swept', temporaries: swept }, 'removed what a killed run left in the lake');
}

function sameSource(fetched: FetchResult, manifest: Manifest | undefined): boolean {
  return fetched.outcome === 'fetched' && fetched.sha256 === manifest?.source.sha256;
}
