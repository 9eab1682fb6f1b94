/**
 * The Google Cloud peers the backend suites share: the real week served on 127.0.0.1,
 * fake-gcs-server, and the BigQuery stand-in holding what its loads read from fake-gcs; with
 * the real clients pointed at them (a fixed bearer token: no credentials, no metadata server).
 */
import { BigQuery, type common } from '@google-cloud/bigquery';
import { Storage } from '@google-cloud/storage';
// google-auth-library is the client's own auth library (via @google-cloud/common), so its
// OAuth2Client is the class the client accepts as authClient.
import { OAuth2Client } from 'google-auth-library';
import { startSourceServer, type SourceServer } from '../peers/source-server.ts';
import { startFakeGcs, type FakeGcs } from '../peers/fake-gcs.ts';
import { startBigQueryStandin, type BigQueryStandin } from '../peers/bigquery-standin.ts';
import { realWeekFile } from '../fixtures/real-week.ts';
import type { BackendOverrides } from '../../../src/backends.ts';

/** A BigQuery client of `projectId` at `url` that sends `Bearer <token>`. */
export function tokenClient(url: string, projectId: string, token: string): BigQuery {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: token, expiry_date: Date.now() + 3600_000 });
  return new BigQuery({ projectId, apiEndpoint: url, authClient });
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<common.ApiError> {
  try {
    await promise;
  } catch (err) {
    return err as common.ApiError;
  }
  throw new Error('expected the promise to reject');
}

export interface CloudPeers {
  source: SourceServer;
  gcs: FakeGcs;
  standin: BigQueryStandin;
  /** The BigQuery client the worker is given (and the test may query with). */
  bigquery: BigQuery;
  /** What the worker is given instead of clients built from credentials. */
  overrides: BackendOverrides;
  close(): Promise<void>;
}

export async function startCloudPeers(options: {
  project: string;
  buckets: string[];
  /** Every bucket's location (fake-gcs-server gives all its buckets one). */
  location: string;
}): Promise<CloudPeers> {
  process.env.METADATA_SERVER_DETECTION = 'none';
  const source = await startSourceServer({
    files: [{ name: 'turnstile_230603.txt', path: await realWeekFile() }],
  });
  const gcs = await startFakeGcs({ buckets: options.buckets, location: options.location });
  // With gcsUrl the stand-in holds what its load jobs read from the lake, and runs SQL on it.
  const standin = await startBigQueryStandin({ expectedToken: 'test-token', gcsUrl: gcs.url });
  const bigquery = tokenClient(standin.url, options.project, 'test-token');
  return {
    source,
    gcs,
    standin,
    bigquery,
    overrides: {
      storage: new Storage({
        apiEndpoint: gcs.url,
        projectId: options.project,
        useAuthWithCustomEndpoint: false,
      }),
      bigquery,
      bigqueryPollIntervalMs: 5,
    },
    close: async () => {
      await Promise.all([source.close(), gcs.stop(), standin.close()]);
    },
  };
}
