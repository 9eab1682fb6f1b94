/**
 * `mta-ingest verify`: audits every week the lake or the warehouse holds, from the stores
 * themselves: each lake object against its manifest (present, same size, same sha256, read
 * back whole), and the warehouse's rows for the week (count and counter sums) against the
 * manifest. Drift is reported week by week (exit 5); `--repair` heals it with a plain run of
 * each drifted week, which reloads from the lake when the lake is intact and re-fetches when
 * it lost objects (week-decision.ts decides).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendOverrides } from '../backends.ts';
import type { Config } from '../config.ts';
import type { IsoDate } from '../dates/drop-dates.ts';
import { ExitCode } from '../errors.ts';
import { MANIFEST_PREFIX, dateOfManifestKey } from '../lake/lake-layout.ts';
import type { Lake } from '../lake/lake.ts';
import { WeekStore } from '../lake/week-store.ts';
import type { Logger } from '../log.ts';
import type { Manifest } from '../manifest/manifest.ts';
import { assessWeek } from '../pipeline/week-decision.ts';
import { digestFile } from '../util/digest.ts';
import { runCommand } from './run.ts';
import type { RunSummary } from '../pipeline/week-result.ts';
import { withReadOnlyBackends } from './read-only-backends.ts';

export interface VerifiedWeek {
  dropDate: IsoDate;
  /** `ok`: the lake's objects match the manifest and the warehouse holds exactly its rows. */
  state: 'ok' | 'drift';
  problems: string[];
}

export interface VerifyResult {
  weeks: VerifiedWeek[];
  /** The run that healed the drifted weeks, with `--repair`. */
  repair?: RunSummary | undefined;
  exitCode: ExitCode;
}

export interface VerifyOptions {
  config: Config;
  repair: boolean;
  now: Date;
  log: Logger;
  signal?: AbortSignal | undefined;
  overrides?: BackendOverrides | undefined;
}

export async function verifyCommand(options: VerifyOptions): Promise<VerifyResult> {
  const weeks = await audit(options);
  const drifted = weeks.filter((week) => week.state === 'drift').map((week) => week.dropDate);
  if (drifted.length === 0) return { weeks, exitCode: ExitCode.ok };
  if (!options.repair) return { weeks, exitCode: ExitCode.drift };
  const runs: RunSummary[] = [];
  for (const date of drifted) {
    if (options.signal?.aborted) break;
    runs.push(
      await runCommand({
        selection: { date },
        force: false,
        // The audit read the rows; so must the run, or a BigQuery week's record would pass it.
        readRows: true,
        config: options.config,
        now: options.now,
        log: options.log,
        signal: options.signal,
        overrides: options.overrides,
      }),
    );
  }
  const repair: RunSummary = {
    runId: runs.map((run) => run.runId).join(','),
    weeks: runs.flatMap((run) => run.weeks),
    exitCode: runs.reduce<ExitCode>(
      (worst, run) => (run.exitCode > worst ? run.exitCode : worst),
      ExitCode.ok,
    ),
  };
  return { weeks, repair, exitCode: repair.exitCode };
}

async function audit(options: VerifyOptions): Promise<VerifiedWeek[]> {
  const scratch = await mkdtemp(join(tmpdir(), 'mta-ingest-verify-'));
  try {
    return await withReadOnlyBackends(
      options.config,
      async (lake, warehouse) => {
        const weeks = new Map<IsoDate, VerifiedWeek>();
        for (const key of await lake.list(MANIFEST_PREFIX)) {
          const date = dateOfManifestKey(key);
          if (date === undefined) continue;
          if (options.signal?.aborted) break;
          const store = new WeekStore(lake, date, options.log, scratch);
          const assessed = await assessWeek(store, warehouse, date, false, true);
          const problems = [...assessed.lakeProblems, ...assessed.warehouseProblems];
          if (assessed.manifest && assessed.lakeProblems.length === 0) {
            problems.push(...(await checksums(lake, assessed.manifest, scratch)));
          }
          weeks.set(date, { dropDate: date, state: problems.length === 0 ? 'ok' : 'drift', problems });
        }
        const listed = warehouse.capabilities.listsWeeks ? await warehouse.listLoadedWeeks() : [];
        for (const record of listed) {
          if (weeks.has(record.dropDate)) continue;
          weeks.set(record.dropDate, {
            dropDate: record.dropDate,
            state: 'drift',
            problems: ['the warehouse holds the week, but the lake has no manifest of it'],
          });
        }
        return [...weeks.values()].sort((a, b) => a.dropDate.localeCompare(b.dropDate));
      },
      options.overrides,
    );
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Each object read back whole and hashed: a same-size object with other bytes is drift too. */
async function checksums(lake: Lake, manifest: Manifest, scratch: string): Promise<string[]> {
  const problems: string[] = [];
  for (const name of ['raw', 'parquet', 'rejects'] as const) {
    const object = manifest.objects[name];
    if (object === undefined) continue;
    const local = join(scratch, `${manifest.dropDate}-${name}`);
    await lake.getFile(object.key, local);
    const digest = await digestFile(local);
    await rm(local, { force: true });
    if (digest.sha256 !== object.sha256)
      problems.push(`${name} object ${object.uri} does not match its sha256`);
  }
  return problems;
}
