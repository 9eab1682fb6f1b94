/**
 * The BigQuery stand-in's routes (bigquery-standin.ts), below /bigquery/v2/projects/{p}:
 *   POST   /datasets                      insert (409 if it exists; location defaults to US)
 *   GET    /datasets/{d}                  get (404 unless created)
 *   PATCH  /datasets/{d}                  update (merges top-level fields; If-Match checked)
 *   DELETE /datasets/{d}?deleteContents=  delete (400 resourceInUse if it has tables and not deleteContents)
 *   POST   /datasets/{d}/tables           insert (404 if the dataset is missing, 409 if the table exists;
 *                                         400 invalid if its view.query does not transpile and bind)
 *   GET    /datasets/{d}/tables/{t}       get
 *   PATCH  /datasets/{d}/tables/{t}       update (merges top-level fields; If-Match checked; view checked)
 *   DELETE /datasets/{d}/tables/{t}       delete
 *   POST   /jobs                          insert (400 without jobReference.jobId or configuration,
 *                                         409 duplicate if the jobId exists); answers in the first state
 *   GET    /jobs/{jobId}?location=L       get: the n-th GET answers states[n-1] (the last one repeats);
 *                                         404 if unknown, expired, or not visible from L
 *   POST   /queries                       jobs.query: runs the statement at once (a DONE job, generated id)
 *                                         and answers schema, rows, totalRows, pageToken, totalBytesProcessed
 *   GET    /queries/{jobId}?location=&maxResults=&pageToken=&startIndex=&formatOptions.useInt64Timestamp=
 *                                         jobs.getQueryResults: a poll like GET /jobs (jobComplete false
 *                                         until DONE), then the rows paged; 404 as GET /jobs
 * Anything else is a 404 with a JSON error body; without `Bearer <expectedToken>` (when set), a 401.
 * Datasets and tables: bigquery-standin-resources.ts; jobs and queries: bigquery-standin-jobs.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorBody, HttpError, notFound, readRequest, send } from './bigquery-standin-http.ts';
import { getJob, getQueryResults, insertJob, runJobsQuery } from './bigquery-standin-jobs.ts';
import {
  deleteDataset,
  deleteTable,
  insertDataset,
  insertTable,
  patchDataset,
  patchTable,
  requireDataset,
  requireTable,
} from './bigquery-standin-resources.ts';
import { SqlError } from './bigquery-standin-results.ts';
import type { StandinState } from './bigquery-standin-state.ts';
import type { StandinRequest } from './bigquery-standin-types.ts';

const PREFIX = '/bigquery/v2/projects/';

/** Returns [status, body]; an undefined body means no content. */
async function route(
  state: StandinState,
  req: IncomingMessage,
  record: StandinRequest,
): Promise<[number, object | undefined]> {
  const { method, body, query } = record;
  if (!record.path.startsWith(PREFIX)) throw notFound(`Not found: ${method} ${record.path}`);
  const [project, kind, id, sub, subId, ...rest] = record.path.slice(PREFIX.length).split('/');
  if (project && kind === 'datasets' && rest.length === 0) {
    if (id === undefined && method === 'POST') return [200, insertDataset(state, project, body)];
    if (id && sub === undefined) {
      if (method === 'GET') return [200, requireDataset(state, project, id).resource];
      if (method === 'PATCH' || method === 'PUT') return [200, patchDataset(state, req, project, id, body)];
      if (method === 'DELETE') {
        await deleteDataset(state, project, id, query);
        return [204, undefined];
      }
    }
    if (id && sub === 'tables') {
      if (subId === undefined && method === 'POST') return [200, await insertTable(state, project, id, body)];
      if (subId) {
        if (method === 'GET') return [200, requireTable(state, project, id, subId)];
        if (method === 'PATCH' || method === 'PUT')
          return [200, await patchTable(state, req, project, id, subId, body)];
        if (method === 'DELETE') {
          await deleteTable(state, project, id, subId);
          return [204, undefined];
        }
      }
    }
  }
  if (project && kind === 'jobs' && sub === undefined) {
    if (id === undefined && method === 'POST') return [200, await insertJob(state, project, body)];
    if (id && method === 'GET') return [200, await getJob(state, project, id, query)];
  }
  if (project && kind === 'queries' && sub === undefined) {
    if (id === undefined && method === 'POST') return [200, await runJobsQuery(state, project, body)];
    if (id && method === 'GET') return [200, await getQueryResults(state, project, id, query)];
  }
  throw notFound(`Not found: ${method} ${record.path}`);
}

/**
 * One request: recorded, authenticated, routed, then `beforeResponse` (after it took effect), then
 * answered; an HttpError or SqlError is answered in BigQuery's error shape.
 */
export async function handle(state: StandinState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { record, parsed } = await readRequest(req);
  state.requests.push(record);

  const { expectedToken } = state.options;
  if (expectedToken !== undefined && record.authorization !== `Bearer ${expectedToken}`) {
    const message =
      record.authorization === undefined
        ? 'Request is missing required authentication credential.'
        : 'Request had invalid authentication credentials.';
    return send(res, 401, errorBody(401, 'authError', message));
  }
  if (!parsed) return send(res, 400, errorBody(400, 'parseError', 'Parse Error'));
  let status: number;
  let payload: object | undefined;
  try {
    [status, payload] = await route(state, req, record);
  } catch (err) {
    if (!(err instanceof HttpError) && !(err instanceof SqlError)) throw err;
    [status, payload] = [err.code, errorBody(err.code, err.reason, err.message)];
  }
  await state.hook?.(record, status);
  send(res, status, payload);
}
