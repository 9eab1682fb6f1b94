/**
 * A stand-in for the BigQuery REST API (v2), for tests: no BigQuery emulator installs here, so the
 * warehouse backend's tests drive the real `@google-cloud/bigquery` client against this real HTTP
 * server on 127.0.0.1 (random port). It keeps datasets, tables and jobs in memory, checks the
 * requests the way BigQuery does (404 notFound, 409 duplicate, 400 invalid, optional 401), and
 * plays scripted job states so polling, duplicate job ids and failed loads can be exercised.
 *
 * Give the client `apiEndpoint: standin.url`: it then sends to `${url}/bigquery/v2/projects/{p}/...`
 * (make sure BIGQUERY_EMULATOR_HOST is unset: it would replace that base URL wholesale).
 *
 * The modules (bigquery-standin-*.ts), each with its own header:
 *   types       the resources, jobs, scripts, options (re-exported here)
 *   state       what it holds in memory: requests, datasets, tables, jobs, partitions, the clock
 *   routes      the route table, and one request from arrival to answer (401, beforeResponse)
 *   http        errors in BigQuery's shape, request parsing, If-Match, send
 *   resources   datasets and tables: insert/get/patch/delete
 *   jobs        jobs.insert/get, jobs.query, getQueryResults: scripts, states, DONE, finishAll
 *   loads       what a load does when DONE: notFound, create-if-needed, rows into partitions
 *   rules       what it enforces as BigQuery documents it, with citations (job retention,
 *               canonical locations, load location, decorated loads, Parquet schemas)
 *   queries     query jobs' configuration and answers; results: rows in REST form, SqlError
 *   sql         an in-memory DuckDB with every table's rows and views, BigQuery SQL transpiled by
 *               sqlglot (transpiler, bigquery_sql.py), ddl for column types, bytes for
 *               totalBytesProcessed (on-demand sizes of the referenced columns and partitions)
 *
 * What a test reads: `requests`, `datasets`, `tables`, `jobs`, and (with `gcsUrl`) `partitions`,
 * a summary of what loads put in each table, so that "loaded once" and "equals a clean run" are
 * checks on its state, not on the worker's word. What a test drives: `script` (how the next job
 * behaves), `finishAll`, `advanceClock`, and `beforeResponse`, which runs after a request has taken
 * effect and before it is answered: a test can kill the client there (a crash right after a job
 * insert, or while polling).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorBody, send } from './bigquery-standin-http.ts';
import { finishAll } from './bigquery-standin-jobs.ts';
import { handle } from './bigquery-standin-routes.ts';
import { createStandinState, type StandinState } from './bigquery-standin-state.ts';
import type { BeforeResponse, DefaultScript, JobScript, StandinOptions } from './bigquery-standin-types.ts';

export {
  UNPARTITIONED,
  type BeforeResponse,
  type DatasetResource,
  type DefaultScript,
  type JobConfiguration,
  type JobResource,
  type JobScript,
  type JobState,
  type PartitionChunk,
  type StandinJob,
  type StandinOptions,
  type StandinRequest,
  type TableResource,
} from './bigquery-standin-types.ts';

/** What a test reads (the state's maps, described in bigquery-standin-state.ts) and drives. */
export interface BigQueryStandin extends Pick<
  StandinState,
  'requests' | 'datasets' | 'tables' | 'jobs' | 'partitions'
> {
  /** http://127.0.0.1:PORT (give this to the client as apiEndpoint). */
  readonly url: string;
  /** Replace how jobs behave when no script is queued (the `defaultScript` option). */
  defaultScript(next: DefaultScript | undefined): void;
  /** Set (or clear) the hook that runs before each answer. */
  beforeResponse(hook: BeforeResponse | undefined): void;
  /** Brings every job that is not DONE to DONE, with its effects (BigQuery finishing unwatched jobs). */
  finishAll(): Promise<void>;
  /**
   * How the next job inserted behaves (each call queues one script; each insert consumes the first
   * queued script of its kind, `kind` 'load' by default or 'query', so a load's script is not taken
   * by a query job the worker sends before it).
   * `states` default ['PENDING','RUNNING','DONE'] (one per GET); `outputRows` = a number or a function
   * of the job configuration (default 0); `error` makes the job end DONE with status.errorResult.
   */
  script(next: JobScript): void;
  /** Moves the stand-in's clock forward by `ms` (job creationTime/endTime, job retention). */
  advanceClock(ms: number): void;
  close(): Promise<void>;
}

export async function startBigQueryStandin(options: StandinOptions = {}): Promise<BigQueryStandin> {
  const state = createStandinState(options);
  const server = createServer((req, res) => {
    handle(state, req, res).catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else send(res, 500, errorBody(500, 'internalError', err instanceof Error ? err.message : String(err)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests: state.requests,
    datasets: state.datasets,
    tables: state.tables,
    jobs: state.jobs,
    partitions: state.partitions,
    beforeResponse: (next) => void (state.hook = next),
    defaultScript: (next) => void (state.defaults = next),
    finishAll: () => finishAll(state),
    script: (next) => void state.scripts.push(next),
    advanceClock: (ms) => void (state.clockOffset += ms),
    close: async () => {
      await new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // The client keeps connections alive (forever: true); close() alone would wait for them.
        server.closeAllConnections();
      });
      await state.sql.close();
    },
  };
}
