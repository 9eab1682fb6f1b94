/**
 * The run's configuration: flags first, then environment variables, then a named block
 * (blocks.ts), then defaults. Validated here, so a bad value is a usage error (exit 2) before
 * anything is fetched.
 */
import { tmpdir } from 'node:os';
import { UsageError } from './errors.ts';
import type { FetchPolicy } from './fetch/fetch-week.ts';
import type { ConfigBlock } from './blocks.ts';
import type { ConfigFlags } from './config-flags.ts';
import { DEFAULT_LOCK_WAIT_MS } from './warehouse/warehouse.ts';

export const DEFAULT_SOURCE_URL = 'http://web.mta.info/developers/data/nyct/turnstile';
export const DEFAULT_LAKE = './data/lake';
export const DEFAULT_WAREHOUSE = './data/warehouse.duckdb';

export interface Config {
  /** Base URL; a week's file is `<sourceUrl>/turnstile_YYMMDD.txt`. */
  sourceUrl: string;
  /** A folder path or file:// URL (later gs://bucket/prefix). */
  lake: string;
  /** A DuckDB file path or duckdb:PATH (later bigquery://project/dataset). */
  warehouse: string;
  /** Where spools and staged files go while a week is processed. */
  workDir: string;
  /** A GCS emulator's URL (fake-gcs-server): the GCS lake talks to it, with no credentials. */
  gcsEmulator: string | undefined;
  /** A BigQuery emulator's URL: the BigQuery warehouse talks to it with a fixed placeholder token. */
  bigqueryEmulator: string | undefined;
  /** Longest wait for a DuckDB warehouse file another run holds (ms). */
  lockWaitMs: number;
  fetch: FetchPolicy;
}

export type { ConfigFlags } from './config-flags.ts';

/** The environment variable behind each setting (documented in the README). */
export const ENV = {
  sourceUrl: 'MTA_INGEST_SOURCE_URL',
  lake: 'MTA_INGEST_LAKE',
  warehouse: 'MTA_INGEST_WAREHOUSE',
  workDir: 'MTA_INGEST_WORK_DIR',
  fetchTimeoutMs: 'MTA_INGEST_FETCH_TIMEOUT_MS',
  fetchAttempts: 'MTA_INGEST_FETCH_ATTEMPTS',
  fetchBackoffMs: 'MTA_INGEST_FETCH_BACKOFF_MS',
  gcsEmulator: 'MTA_INGEST_GCS_EMULATOR',
  bigqueryEmulator: 'MTA_INGEST_BIGQUERY_EMULATOR',
  lockWaitMs: 'MTA_INGEST_LOCK_WAIT_MS',
} as const;

/** Names a block (blocks.ts) to take settings from, below flags and environment variables. */
export const BLOCK_ENV = 'MTA_INGEST_BLOCK';

export function resolveConfig(
  flags: ConfigFlags,
  env: Record<string, string | undefined>,
  block: ConfigBlock = {},
): Config {
  const pick = (name: keyof typeof ENV): string | undefined =>
    flags[name] ?? nonEmpty(env[ENV[name]]) ?? block[name];
  // Messages name the setting the way the user gave it: the flag, the variable or the block.
  const named = (name: keyof typeof ENV, flag: string): string =>
    flags[name] !== undefined
      ? flag
      : nonEmpty(env[ENV[name]]) !== undefined
        ? ENV[name]
        : block[name] !== undefined
          ? `the block's ${name}`
          : flag;
  // A control character (NUL, a newline...) in any setting is a typo or an attack, never a path
  // or a URL: URL parsing would silently drop a newline, and a NUL fails deep in the file system.
  for (const name of Object.keys(ENV) as (keyof typeof ENV)[]) {
    const value = pick(name);
    if (value !== undefined && CONTROL_CHARACTER.test(value)) {
      throw new UsageError(`${named(name, SETTING_FLAGS[name])} holds a control character`);
    }
  }
  const givenUrl = pick('sourceUrl') ?? DEFAULT_SOURCE_URL;
  const sourceUrl = givenUrl.replace(/\/+$/, '');
  if (!/^https?:\/\/[^/\s]+/i.test(sourceUrl) || !URL.canParse(sourceUrl)) {
    throw new UsageError(`${named('sourceUrl', '--source-url')} ${givenUrl} is not an http(s) URL`);
  }
  return {
    sourceUrl,
    lake: pick('lake') ?? DEFAULT_LAKE,
    warehouse: pick('warehouse') ?? DEFAULT_WAREHOUSE,
    workDir: pick('workDir') ?? tmpdir(),
    gcsEmulator: emulatorUrl(named('gcsEmulator', ENV.gcsEmulator), pick('gcsEmulator')),
    bigqueryEmulator: emulatorUrl(named('bigqueryEmulator', ENV.bigqueryEmulator), pick('bigqueryEmulator')),
    lockWaitMs: wholeNumber(
      named('lockWaitMs', '--lock-wait-ms'),
      pick('lockWaitMs') ?? String(DEFAULT_LOCK_WAIT_MS),
      0,
    ),
    fetch: {
      timeoutMs: wholeNumber(
        named('fetchTimeoutMs', '--fetch-timeout-ms'),
        pick('fetchTimeoutMs') ?? '60000',
        1,
      ),
      attempts: wholeNumber(named('fetchAttempts', '--fetch-attempts'), pick('fetchAttempts') ?? '5', 1),
      backoffMs: wholeNumber(
        named('fetchBackoffMs', '--fetch-backoff-ms'),
        pick('fetchBackoffMs') ?? '1000',
        0,
      ),
    },
  };
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** How each setting is named when it came from no flag, variable or block of its own. */
const SETTING_FLAGS: Record<keyof typeof ENV, string> = {
  sourceUrl: '--source-url',
  lake: '--lake',
  warehouse: '--warehouse',
  workDir: '--work-dir',
  fetchTimeoutMs: '--fetch-timeout-ms',
  fetchAttempts: '--fetch-attempts',
  fetchBackoffMs: '--fetch-backoff-ms',
  gcsEmulator: ENV.gcsEmulator,
  bigqueryEmulator: ENV.bigqueryEmulator,
  lockWaitMs: '--lock-wait-ms',
};

function emulatorUrl(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^https?:\/\/[^/\s]+/i.test(value) || !URL.canParse(value)) {
    throw new UsageError(`${name} ${value} is not an http(s) URL`);
  }
  return value.replace(/\/+$/, '');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function wholeNumber(flag: string, value: string, min: number): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < min) {
    throw new UsageError(`${flag} ${value} is not a whole number of at least ${min}`);
  }
  return Number(value);
}
