/**
 * The BigQuery stand-in's query routes, in BigQuery's REST shapes (API v2): jobs.query
 * (`POST /projects/{p}/queries`), query jobs (jobs.insert with configuration.query) and
 * jobs.getQueryResults (`GET /projects/{p}/queries/{jobId}`). The stand-in (bigquery-standin.ts)
 * keeps the jobs; this module reads their configuration and writes the answers.
 * https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/query,
 * https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/getQueryResults,
 * https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#JobConfigurationQuery
 */
import { answerRows, SqlError } from './bigquery-standin-results.ts';
import type { QueryOutcome, QueryParameter, QueryRequest } from './bigquery-standin-sql.ts';

/** configuration.query as posted (the fields the stand-in reads). */
export interface QueryConfiguration {
  query?: unknown;
  useLegacySql?: unknown;
  defaultDataset?: { projectId?: string; datasetId?: string };
  queryParameters?: QueryParameter[];
  parameterMode?: string;
  destinationTable?: unknown;
}

/** Refuses (400 invalid) what the stand-in does not run: legacy SQL, no query, a destination table. */
export function checkQueryConfiguration(config: QueryConfiguration): void {
  if (typeof config.query !== 'string' || config.query === '')
    throw new SqlError(400, 'invalid', 'Required parameter is missing: query');
  // jobs.insert and jobs.query default to legacy SQL; the client always sends useLegacySql: false.
  if (config.useLegacySql !== false)
    throw new SqlError(400, 'invalid', 'The stand-in runs GoogleSQL only: set useLegacySql to false');
  if (config.destinationTable !== undefined)
    throw new SqlError(400, 'invalid', 'The stand-in does not write query results to a destinationTable');
  const mode = config.parameterMode?.toUpperCase();
  const params = config.queryParameters ?? [];
  if (mode === 'NAMED' && params.some((p) => !p.name))
    throw new SqlError(400, 'invalid', 'Named query parameters must all have a name');
  if (mode === 'POSITIONAL' && params.some((p) => p.name))
    throw new SqlError(400, 'invalid', 'Positional query parameters must not have a name');
}

/** What the engine runs for a query configuration of a job in `project` and `location`. */
export function queryRequest(config: QueryConfiguration, project: string, location: string): QueryRequest {
  const request: QueryRequest = {
    sql: String(config.query),
    params: config.queryParameters ?? [],
    defaultProject: config.defaultDataset?.projectId ?? project,
    location,
  };
  if (config.defaultDataset?.datasetId) request.defaultDataset = config.defaultDataset.datasetId;
  return request;
}

/** The `query` configuration that jobs.query's request body amounts to (stored on its job). */
export function configurationOfQueryRequest(body: Record<string, unknown>): QueryConfiguration {
  const config: QueryConfiguration = { query: body.query, useLegacySql: body.useLegacySql };
  if (body.defaultDataset !== undefined)
    config.defaultDataset = body.defaultDataset as QueryConfiguration['defaultDataset'];
  if (body.queryParameters !== undefined) config.queryParameters = body.queryParameters as QueryParameter[];
  if (typeof body.parameterMode === 'string') config.parameterMode = body.parameterMode;
  return config;
}

/** An error of a failed query as a job's errorResult (reason invalidQuery, or notFound). */
export function jobErrorOf(error: unknown): { reason: string; message: string } {
  if (error instanceof SqlError) return { reason: error.reason, message: error.message };
  throw error;
}

/** An errorResult again as the HTTP error jobs.query and getQueryResults answer. */
export function httpErrorOf(error: { reason: string; message: string }): SqlError {
  return new SqlError(error.reason === 'notFound' ? 404 : 400, error.reason, error.message);
}

/** statistics of a DONE query job: top-level totalBytesProcessed and statistics.query. */
export function queryStatistics(outcome: QueryOutcome): Record<string, unknown> {
  const bytes = String(outcome.totalBytesProcessed);
  return {
    totalBytesProcessed: bytes,
    query: {
      totalBytesProcessed: bytes,
      totalBytesBilled: bytes,
      statementType: outcome.statementType,
      cacheHit: false,
      ...(outcome.numDmlAffectedRows !== undefined && {
        numDmlAffectedRows: String(outcome.numDmlAffectedRows),
      }),
    },
  };
}

export interface PageOptions {
  maxResults?: unknown;
  pageToken?: unknown;
  startIndex?: unknown;
  useInt64Timestamp: boolean;
}

const TOKEN_PREFIX = 'standin-offset:';

/** The rows from an offset (pageToken, else startIndex, else 0), at most maxResults of them. */
function page(outcome: QueryOutcome, options: PageOptions): Record<string, unknown> {
  let offset = 0;
  if (typeof options.pageToken === 'string' && options.pageToken !== '') {
    const decoded = Buffer.from(options.pageToken, 'base64url').toString('utf8');
    if (!decoded.startsWith(TOKEN_PREFIX)) throw new SqlError(400, 'invalid', 'Invalid page token');
    offset = Number(decoded.slice(TOKEN_PREFIX.length));
  } else if (options.startIndex !== undefined && options.startIndex !== '') {
    offset = Number(options.startIndex);
  }
  const limit =
    options.maxResults === undefined || options.maxResults === '' ? Infinity : Number(options.maxResults);
  if (!Number.isInteger(offset) || offset < 0 || Number.isNaN(limit) || limit < 0)
    throw new SqlError(400, 'invalid', 'Invalid maxResults, startIndex or pageToken');
  const end = Math.min(outcome.rows.length, offset + limit);
  const rows = answerRows(outcome.rows.slice(offset, end), outcome.fields ?? [], options.useInt64Timestamp);
  return {
    ...(outcome.fields && { schema: { fields: outcome.fields } }),
    totalRows: String(outcome.rows.length),
    ...(rows.length > 0 && { rows }),
    ...(end < outcome.rows.length && {
      pageToken: Buffer.from(`${TOKEN_PREFIX}${end}`).toString('base64url'),
    }),
  };
}

export interface JobRef {
  projectId: string;
  jobId: string;
  location: string;
}

/** The answer of jobs.query (kind bigquery#queryResponse) or getQueryResults (…#getQueryResultsResponse). */
export function queryResponse(
  kind: 'bigquery#queryResponse' | 'bigquery#getQueryResultsResponse',
  jobReference: JobRef,
  outcome: QueryOutcome | undefined,
  options: PageOptions,
): Record<string, unknown> {
  if (!outcome) return { kind, jobReference, jobComplete: false };
  return {
    kind,
    jobReference,
    ...page(outcome, options),
    totalBytesProcessed: String(outcome.totalBytesProcessed),
    jobComplete: true,
    cacheHit: false,
    ...(outcome.numDmlAffectedRows !== undefined && {
      numDmlAffectedRows: String(outcome.numDmlAffectedRows),
    }),
  };
}
