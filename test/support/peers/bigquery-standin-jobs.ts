/**
 * The BigQuery stand-in's jobs (bigquery-standin.ts): jobs.insert, jobs.get, jobs.query and
 * jobs.getQueryResults. A job plays a script (queued by `script`, else the default): the insert
 * answers states[0], the n-th poll states[n-1] (the last one repeats). A job reaches DONE only when
 * it is polled, or by `finishAll` (BigQuery finishing jobs nobody is watching, e.g. after the client
 * was killed); its DONE side effects run once: a load's (bigquery-standin-loads.ts), or a query's.
 * A query job (configuration.query, GoogleSQL only; it takes only a script of kind 'query') runs its
 * statement on the SQL engine when it reaches DONE and reports statistics.query {statementType,
 * totalBytesProcessed, numDmlAffectedRows}, or fails DONE with errorResult invalidQuery/notFound.
 * A job is 404 once past its retention (jobExpired; its id stays taken) or seen from another
 * location (jobVisibleAt); its creationTime and endTime are the stand-in's clock.
 */
import { randomBytes } from 'node:crypto';
import { duplicate, invalid, isObject, nonEmpty, notFound, objectBody } from './bigquery-standin-http.ts';
import { finishLoad } from './bigquery-standin-loads.ts';
import {
  checkQueryConfiguration,
  configurationOfQueryRequest,
  httpErrorOf,
  jobErrorOf,
  queryRequest,
  queryResponse,
  queryStatistics,
  type QueryConfiguration,
} from './bigquery-standin-queries.ts';
import { canonicalLocation, jobExpired, jobVisibleAt } from './bigquery-standin-rules.ts';
import type { StandinState } from './bigquery-standin-state.ts';
import type { JobConfiguration, JobResource, JobState, StandinJob } from './bigquery-standin-types.ts';

const DEFAULT_STATES: JobState[] = ['PENDING', 'RUNNING', 'DONE'];

const stateOf = (job: StandinJob, index: number): JobState =>
  job.states[Math.min(index, job.states.length - 1)] ?? 'DONE';

/** A query job reaching DONE runs its statement: results kept, or the error as its errorResult. */
async function finishQuery(state: StandinState, job: StandinJob): Promise<void> {
  const config = job.configuration.query as QueryConfiguration | undefined;
  if (job.error || !config) return;
  try {
    state.results.set(job.jobId, await state.sql.run(queryRequest(config, job.projectId, job.location)));
  } catch (error) {
    job.error = jobErrorOf(error);
  }
}

/** The job resource as observed in this state, applying DONE side effects the first time. */
async function observe(state: StandinState, job: StandinJob, jobState: JobState): Promise<JobResource> {
  if (jobState === 'DONE') {
    let done = state.finished.get(job.jobId);
    if (!done) {
      job.endTime ??= state.now();
      done = job.configuration.query ? finishQuery(state, job) : finishLoad(state, job);
      state.finished.set(job.jobId, done);
    }
    await done;
  }
  const resource: JobResource = {
    kind: 'bigquery#job',
    id: `${job.projectId}:${job.location}.${job.jobId}`,
    jobReference: { projectId: job.projectId, jobId: job.jobId, location: job.location },
    configuration: job.configuration,
    status: { state: jobState },
    statistics: {
      creationTime: String(job.creationTime ?? state.now()),
      ...(jobState === 'DONE' && job.endTime !== undefined && { endTime: String(job.endTime) }),
    },
  };
  if (jobState !== 'DONE') return resource;
  if (job.error) {
    resource.status = { state: jobState, errorResult: { ...job.error }, errors: [{ ...job.error }] };
  } else if (job.configuration.query) {
    const outcome = state.results.get(job.jobId);
    if (outcome) resource.statistics = { ...resource.statistics, ...queryStatistics(outcome) };
  } else {
    const sourceUris = job.configuration.load?.sourceUris;
    resource.statistics = {
      ...resource.statistics,
      load: {
        outputRows: String(job.outputRows ?? 0),
        inputFiles: String(sourceUris?.length ?? 1),
      },
    };
  }
  return resource;
}

export async function insertJob(state: StandinState, project: string, body: unknown): Promise<JobResource> {
  const posted = objectBody<JobResource>(body);
  const ref = posted.jobReference;
  const jobId = ref?.jobId;
  if (!nonEmpty(jobId)) throw invalid('Required parameter is missing: jobReference.jobId');
  if (ref?.projectId !== undefined && ref.projectId !== project)
    throw invalid(`jobReference.projectId ${ref.projectId} does not match the project ${project}`);
  const configuration = posted.configuration;
  if (!isObject(configuration)) throw invalid('Required parameter is missing: configuration');
  if (configuration.query) checkQueryConfiguration(configuration.query);
  const existing = state.jobs.get(jobId);
  if (existing) throw duplicate(`Already Exists: Job ${existing.projectId}:${existing.location}.${jobId}`);
  const kind = configuration.query ? 'query' : 'load';
  const queued = state.scripts.findIndex((s) => (s.kind ?? 'load') === kind);
  const script =
    (queued >= 0 ? state.scripts.splice(queued, 1)[0] : undefined) ??
    (typeof state.defaults === 'function' ? state.defaults(configuration) : state.defaults) ??
    {};
  const scripted =
    typeof script.outputRows === 'function' ? script.outputRows(configuration) : script.outputRows;
  const job: StandinJob = {
    jobId,
    projectId: project,
    // BigQuery's canonical form of jobReference.location (default US): see canonicalLocation.
    location: canonicalLocation(nonEmpty(ref?.location) ? ref.location : 'US'),
    configuration,
    states: script.states && script.states.length > 0 ? [...script.states] : [...DEFAULT_STATES],
    polls: 0,
    creationTime: state.now(),
    // With table contents, an unscripted count is the rows the load reads (set once DONE).
    outputRows: scripted ?? (state.options.gcsUrl !== undefined ? undefined : 0),
  };
  if (script.error) job.error = { ...script.error };
  state.jobs.set(jobId, job);
  return observe(state, job, stateOf(job, 0));
}

/**
 * The job that a call about one job (jobs.get, and any route about a job) finds, or 404 notFound:
 * unknown, of another project, seen from another `location` or without one for a job outside
 * US/EU (jobVisibleAt), or past its retention (jobExpired; its id stays taken for inserts).
 */
function requireJob(
  state: StandinState,
  project: string,
  jobId: string,
  query: Record<string, string>,
): StandinJob {
  const job = state.jobs.get(jobId);
  const location = query.location;
  if (
    !job ||
    job.projectId !== project ||
    !jobVisibleAt(job.location, location) ||
    jobExpired(job.creationTime ?? state.now(), state.now(), state.retentionMs)
  )
    throw notFound(`Not found: Job ${project}:${location !== undefined ? `${location}.` : ''}${jobId}`);
  return job;
}

export function getJob(
  state: StandinState,
  project: string,
  jobId: string,
  query: Record<string, string>,
): Promise<JobResource> {
  const job = requireJob(state, project, jobId, query);
  job.polls += 1;
  return observe(state, job, stateOf(job, job.polls - 1));
}

/** jobs.query: runs the statement at once (a DONE job with a generated id) and answers its first page. */
export async function runJobsQuery(state: StandinState, project: string, body: unknown): Promise<object> {
  const posted = objectBody<Record<string, unknown>>(body);
  const configuration = configurationOfQueryRequest(posted);
  checkQueryConfiguration(configuration);
  if (posted.dryRun === true) throw invalid('The stand-in does not dry-run queries');
  const jobId = `job_${randomBytes(12).toString('base64url')}`;
  const job: StandinJob = {
    jobId,
    projectId: project,
    location: canonicalLocation(nonEmpty(posted.location) ? posted.location : 'US'),
    configuration: { query: configuration } as JobConfiguration,
    states: ['DONE'],
    polls: 0,
    creationTime: state.now(),
  };
  state.jobs.set(jobId, job);
  await observe(state, job, 'DONE');
  if (job.error) throw httpErrorOf(job.error);
  const format = posted.formatOptions as { useInt64Timestamp?: unknown } | undefined;
  return queryResponse(
    'bigquery#queryResponse',
    { projectId: project, jobId, location: job.location },
    state.results.get(jobId),
    {
      maxResults: posted.maxResults,
      useInt64Timestamp: format?.useInt64Timestamp === true,
    },
  );
}

/** jobs.getQueryResults: a poll of the job (its scripted states, like jobs.get); rows once DONE. */
export async function getQueryResults(
  state: StandinState,
  project: string,
  jobId: string,
  query: Record<string, string>,
): Promise<object> {
  const job = requireJob(state, project, jobId, query);
  job.polls += 1;
  const resource = await observe(state, job, stateOf(job, job.polls - 1));
  const ref = { projectId: project, jobId, location: job.location };
  const kind = 'bigquery#getQueryResultsResponse';
  if (resource.status?.state !== 'DONE')
    return queryResponse(kind, ref, undefined, { useInt64Timestamp: false });
  if (job.error) throw httpErrorOf(job.error);
  return queryResponse(
    kind,
    ref,
    state.results.get(jobId) ?? { statementType: '', rows: [], totalBytesProcessed: 0 },
    {
      maxResults: query.maxResults,
      pageToken: query.pageToken,
      startIndex: query.startIndex,
      useInt64Timestamp: query['formatOptions.useInt64Timestamp'] === 'true',
    },
  );
}

/** Brings every job that is not DONE to DONE, with its effects (BigQuery finishing unwatched jobs). */
export async function finishAll(state: StandinState): Promise<void> {
  for (const job of state.jobs.values()) {
    if (state.finished.has(job.jobId)) continue;
    job.states = ['DONE'];
    await observe(state, job, 'DONE');
  }
}
