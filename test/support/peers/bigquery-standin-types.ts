/**
 * The BigQuery stand-in's (bigquery-standin.ts) types: the REST resources as the client types them,
 * the jobs, requests and scripts it keeps, and its options. Every module of the stand-in imports
 * them from here; bigquery-standin.ts re-exports them for the tests.
 */
import type { DatasetResponse, JobMetadata, TableResponse } from '@google-cloud/bigquery';

/** REST resources, typed as the client types them (the `bigquery` namespace of its types.d.ts). */
export type DatasetResource = DatasetResponse[1];
export type TableResource = TableResponse[1];
export type JobResource = JobMetadata;
export type JobConfiguration = NonNullable<JobMetadata['configuration']>;

export type JobState = 'PENDING' | 'RUNNING' | 'DONE';

export interface StandinJob {
  jobId: string;
  projectId: string;
  location: string;
  /** The `configuration` as posted. */
  configuration: JobConfiguration;
  /** The state answered by the insert (states[0]) and then by the n-th GET (states[n-1], clamped). */
  states: JobState[];
  /** How many GETs the job has had. */
  polls: number;
  /** Scripted, or the stand-in's own notFound for a missing destination; reported once DONE. */
  error?: { reason: string; message: string };
  /** Reported in statistics.load.outputRows once DONE without error. */
  outputRows?: number;
  /** When the job was inserted, and when it was first seen DONE (ms since the epoch), as BigQuery reports them. */
  creationTime?: number;
  endTime?: number;
}

export interface StandinRequest {
  method: string;
  /** Decoded path, without the query string. */
  path: string;
  query: Record<string, string>;
  /** Parsed JSON, the raw text if it is not JSON, undefined if empty. */
  body: unknown;
  authorization?: string;
}

export interface JobScript {
  /** The kind of job the script is for (default 'load'): a query job takes only a 'query' script. */
  kind?: 'load' | 'query';
  states?: JobState[];
  outputRows?: number | ((config: JobConfiguration) => number);
  error?: { reason: string; message: string };
}

/** What one load put in one partition. */
export interface PartitionChunk {
  jobId: string;
  sourceUris: string[];
  rows: number;
  /** Sums of the source's integer columns over the chunk's rows, by column name. */
  sums: Record<string, bigint>;
}

/** The partition key of rows with no partitioning field (an unpartitioned table). */
export const UNPARTITIONED = '__UNPARTITIONED__';

export interface StandinOptions {
  /** Answer 401 unless requests carry `Bearer <expectedToken>`. */
  expectedToken?: string;
  /** The GCS emulator that load jobs read their gs:// sources from; without it, loads hold no rows. */
  gcsUrl?: string;
  /**
   * How jobs behave when no script is queued (default: states PENDING, RUNNING, DONE); a function
   * decides per job, from its configuration.
   */
  defaultScript?: DefaultScript;
  /** The stand-in's clock (ms since the epoch; default Date.now), shifted by `advanceClock`. */
  now?: () => number;
  /** How long a job's metadata is kept (default 180 days: "a six month period after creation"). */
  jobRetentionMs?: number;
}

export type DefaultScript = JobScript | ((configuration: JobConfiguration) => JobScript);

/** Runs after a request took effect, before its answer is sent (it may kill the client). */
export type BeforeResponse = (request: StandinRequest, status: number) => void | Promise<void>;
