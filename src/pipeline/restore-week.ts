/**
 * `restore`: makes a version of a week that the lake keeps current again, and loads it. The
 * version the week's keys held is kept in its own folder first (WeekStore.commitCurrent), so a
 * restore loses nothing either and can itself be undone the same way.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { IsoDate } from '../dates/drop-dates.ts';
import { UsageError } from '../errors.ts';
import { WeekStore } from '../lake/week-store.ts';
import type { Manifest } from '../manifest/manifest.ts';
import { load } from './load-week.ts';
import type { RunContext, WeekResources } from './run-context.ts';

export interface RestoredWeek {
  dropDate: IsoDate;
  sha256: string;
  /** The version that was current before (now kept beside). */
  replaced: string | undefined;
  rows: number;
  manifestUri: string;
}

export async function restoreWeek(
  ctx: RunContext,
  week: WeekResources,
  date: IsoDate,
  shaPrefix: string,
): Promise<RestoredWeek> {
  const log = ctx.log.child({ dropDate: date });
  const dir = join(ctx.workDir, date);
  await mkdir(dir, { recursive: true });
  try {
    const store = new WeekStore(ctx.lake, date, log, dir);
    const before = await store.readCurrent();
    const version = pick(await store.versions(), shaPrefix, date, ctx.config.tool ?? 'mta-ingest');
    const files = await store.fetchVersion(version);
    // Restoring is the documented acceptance of a suspect version.
    const gate = version.gate && {
      ...version.gate,
      verdict: version.gate.verdict === 'suspect' ? ('accepted' as const) : version.gate.verdict,
    };
    const current = await store.commitCurrent({ ...version, gate, runId: ctx.runId }, files, before);
    const loaded = await load(ctx, log, week.warehouse, store, current, files.parquet, true, before?.load);
    log.info({ event: 'week.restored', sha256: version.source.sha256 }, 'restored');
    return {
      dropDate: date,
      sha256: version.source.sha256,
      replaced: before?.source.sha256,
      rows: loaded.rows,
      manifestUri: store.uriOf(store.keys.manifest),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function pick(versions: Manifest[], shaPrefix: string, date: IsoDate, tool: string): Manifest {
  if (!/^[0-9a-f]{6,64}$/.test(shaPrefix)) {
    throw new UsageError(
      `--sha256 ${JSON.stringify(shaPrefix)}: give at least 6 hex digits of the version's sha256`,
    );
  }
  const matches = versions.filter((v) => v.source.sha256.startsWith(shaPrefix));
  if (matches.length === 1 && matches[0]) return matches[0];
  const known = versions.map((v) => v.source.sha256.slice(0, 12)).join(', ') || 'none';
  throw new UsageError(
    matches.length === 0
      ? `${date} has no kept version ${shaPrefix} (kept: ${known}); see ${tool} versions --date ${date}`
      : `--sha256 ${shaPrefix} matches ${matches.length} versions of ${date}; give more digits`,
  );
}
