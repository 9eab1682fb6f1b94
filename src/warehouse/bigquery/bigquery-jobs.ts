/**
 * BigQuery load jobs: their deterministic ids, starting one (or finding it already started),
 * polling it until DONE, and reading a load record back from its metadata.
 *
 * The job id is derived from the drop date and the source's sha256: a retry or a rerun that
 * finds the job already there (409) waits for that job instead of loading twice; one that finds
 * it failed (a run whose load failed, rerun) starts the next attempt, `<id>_retry2` and so on,
 * since a job id is never reusable.
 */
import type { BigQuery, Job, JobMetadata } from '@google-cloud/bigquery';
import { StoppedError, sleepUnlessStopped, throwIfStopped, untilStopped } from '../../util/abort.ts';
import { WarehouseError, oneLine } from '../../errors.ts';
import type { IsoDate } from '../../dates/drop-dates.ts';
import type { LoadRecord, LoadRequest } from '../warehouse.ts';

const JOB_PREFIX = 'mta_ingest_load';

/**
 * Load jobs tried for one week and source before giving up. A job id can never be reused, not
 * even after the job failed, so the n-th attempt has its own id (`loadJobAttemptId`); the ids
 * stay deterministic, so two runs retrying at once still find each other's job (409).
 */
export const MAX_LOAD_JOBS = 10;

/**
 * `mta_ingest_load_<dataset>_20230603_<sha256>` (+ `_<run id>` when forced, to load again).
 * Job ids are unique per project, not per dataset: without the dataset, a second dataset in
 * the same project would find the first one's job and take it for its own load.
 */
export function jobIdFor(
  datasetId: string,
  load: Pick<LoadRequest, 'dropDate' | 'sourceSha256' | 'force' | 'runId'>,
): string {
  const base = `${weekJobPrefix(datasetId, load.dropDate)}${load.sourceSha256}`;
  return load.force ? `${base}_${load.runId.replace(/[^A-Za-z0-9_-]/g, '_')}` : base;
}

/** The id of the n-th load job for one week and source: the base id, then `<base>_retry<n>`. */
export function loadJobAttemptId(base: string, attempt: number): string {
  return attempt === 1 ? base : `${base}_retry${attempt}`;
}

/** What every load job id of one dataset's week starts with (a job id has at most 1,024 characters). */
export function weekJobPrefix(datasetId: string, dropDate: IsoDate): string {
  return `${JOB_PREFIX}_${datasetId.slice(0, 800)}_${dropDate.replaceAll('-', '')}_`;
}

/**
 * Whether an existing job finished before the week's recorded load of another job, so that the
 * partition no longer holds what it loaded. A job with no end time, or one ending in the same
 * second as that load (loadedAt has whole seconds), counts as older: loading again is safe.
 */
export function olderThan(
  metadata: JobMetadata,
  jobId: string,
  previous: LoadRequest['previousLoad'],
): boolean {
  if (previous === undefined || previous.jobId === jobId) return false;
  const ended = Number(metadata.statistics?.endTime);
  if (!Number.isFinite(ended)) return true;
  return Math.floor(ended / 1000) * 1000 <= Date.parse(previous.loadedAt);
}

/** Where jobs are started and polled, and how. */
export interface JobRunner {
  client: BigQuery;
  /** The dataset's location, where its jobs run. */
  location: string;
  /** First wait between job polls; doubles up to 10 s. */
  pollIntervalMs: number;
  /** Longest wait for a load job. */
  jobTimeoutMs: number;
  signal: AbortSignal | undefined;
}

/**
 * Starts the job `jobId`, or finds it already there (409): an earlier attempt started it, and
 * it is waited for rather than run twice. `ours` tells which.
 */
export async function startJob(
  runner: JobRunner,
  jobId: string,
  configuration: JobMetadata['configuration'],
  kind: 'load' | 'query' = 'load',
): Promise<{ job: Job; ours: boolean }> {
  const { client, location, signal } = runner;
  try {
    throwIfStopped(signal);
    const [job] = await untilStopped(client.createJob({ jobId, location, configuration }), signal);
    return { job, ours: true };
  } catch (error) {
    if (error instanceof StoppedError) throw error;
    if (statusOf(error) !== 409) {
      throw new WarehouseError(`starting BigQuery ${kind} job ${jobId} failed: ${oneLine(error)}`, {
        cause: error,
      });
    }
    return { job: client.job(jobId, { location }), ours: false };
  }
}

/**
 * Polls the job with backoff until DONE, and returns it (whether it succeeded or failed).
 * Undefined when the job is not found (404): a job found by its id (409) whose metadata BigQuery
 * no longer keeps (about six months, see the jobs.list reference) while its id stays taken.
 */
export async function waitFor(runner: JobRunner, job: Job, jobId: string): Promise<JobMetadata | undefined> {
  const deadline = Date.now() + runner.jobTimeoutMs;
  for (let delay = runner.pollIntervalMs; ; delay = Math.min(delay * 2, 10_000)) {
    let metadata: JobMetadata;
    try {
      [metadata] = (await untilStopped(job.getMetadata(), runner.signal)) as [JobMetadata, unknown];
    } catch (error) {
      if (error instanceof StoppedError) throw error;
      if (statusOf(error) === 404) return undefined;
      throw new WarehouseError(`reading BigQuery job ${jobId} failed: ${oneLine(error)}`, { cause: error });
    }
    if (metadata.status?.state === 'DONE') return metadata;
    if (Date.now() + delay > deadline)
      throw new WarehouseError(`BigQuery job ${jobId} did not finish in time`);
    await sleepUnlessStopped(delay, runner.signal);
  }
}

/** The load record a finished job stands for (the full sha256 is in its id). */
export function loadRecordOf(dropDate: IsoDate, jobId: string, metadata: JobMetadata): LoadRecord {
  const sha = /_([0-9a-f]{64})(?:_|$)/.exec(jobId)?.[1] ?? '';
  const end = Number(metadata.statistics?.endTime ?? Date.now());
  return {
    dropDate,
    sourceSha256: sha,
    rows: Number(metadata.statistics?.load?.outputRows ?? -1),
    loadedAt: new Date(end).toISOString().replace(/\.\d+Z$/, 'Z'),
    jobId,
  };
}

export function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}
