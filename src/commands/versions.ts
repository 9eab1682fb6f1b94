/**
 * `mta-ingest versions` lists the versions of a week that the lake keeps (current, superseded,
 * suspect), and `mta-ingest restore` makes one of them current again and loads it.
 */
import type { BackendOverrides } from '../backends.ts';
import type { Config } from '../config.ts';
import { resolveDropDates, type IsoDate } from '../dates/drop-dates.ts';
import { UsageError } from '../errors.ts';
import { WeekStore } from '../lake/week-store.ts';
import type { Logger } from '../log.ts';
import { restoreWeek, type RestoredWeek } from '../pipeline/restore-week.ts';
import { newRunId, openRunContext } from '../pipeline/run-context.ts';
import { withReadOnlyBackends } from './read-only-backends.ts';
import { tmpdir } from 'node:os';

export interface KeptVersion {
  sha256: string;
  bytes: number;
  rows: number;
  rejects: number;
  fetchedAt: string;
  /** `current`: under the week's keys (and loaded); `suspect`: held back by the gate. */
  status: 'current' | 'superseded' | 'suspect';
  /** The gate's reasons, for a version it found suspect. */
  reasons: string[];
  uri: string;
}

export interface VersionsOptions {
  date: string | undefined;
  config: Config;
  now: Date;
  log: Logger;
  overrides?: BackendOverrides | undefined;
}

export async function versionsCommand(options: VersionsOptions): Promise<KeptVersion[]> {
  const date = oneDate(options.date, options.now);
  return withReadOnlyBackends(
    options.config,
    async (lake) => {
      const store = new WeekStore(lake, date, options.log, tmpdir());
      const current = await store.readCurrent();
      return (await store.versions()).map((version) => {
        const sha256 = version.source.sha256;
        const suspect = version.gate?.verdict === 'suspect';
        return {
          sha256,
          bytes: version.source.bytes,
          rows: version.rows,
          rejects: version.rejects,
          fetchedAt: version.writtenAt,
          status: current?.source.sha256 === sha256 ? 'current' : suspect ? 'suspect' : 'superseded',
          reasons: version.gate?.reasons ?? [],
          uri: lake.uriOf(version.versionPrefix ?? ''),
        };
      });
    },
    options.overrides,
  );
}

export async function restoreCommand(
  options: VersionsOptions & { version: string | undefined; signal?: AbortSignal | undefined },
): Promise<RestoredWeek> {
  const date = oneDate(options.date, options.now);
  if (options.version === undefined)
    throw new UsageError(
      `restore needs --sha256 PREFIX (see ${options.config.tool ?? 'mta-ingest'} versions)`,
    );
  const ctx = await openRunContext(
    options.config,
    options.log,
    newRunId(options.now),
    options.signal,
    options.overrides,
  );
  try {
    return await ctx.withWeek((week) => restoreWeek(ctx, week, date, options.version ?? ''));
  } finally {
    await ctx.close();
  }
}

function oneDate(date: string | undefined, now: Date): IsoDate {
  if (date === undefined) throw new UsageError('--date is required: the drop date whose versions to use');
  const [only] = resolveDropDates({ date }, now);
  if (only === undefined) throw new UsageError(`--date ${date} is not a drop date`);
  return only;
}
