/**
 * The run's configuration: flags first, then environment variables, then a named block
 * (blocks.ts), then defaults, for every setting of the table (settings/settings-table.ts).
 * Validated here, lake and warehouse URIs included, so a bad value is a usage error (exit 2)
 * before anything is fetched, and the message names where the value came from.
 */
import { tmpdir } from 'node:os';
import { UsageError } from './errors.ts';
import type { FetchPolicy } from './fetch/fetch-week.ts';
import type { ConfigBlock } from './blocks.ts';
import type { ConfigFlags } from './config-flags.ts';
import {
  BLOCK_SETTING,
  MAX_WHOLE_NUMBER,
  SETTINGS,
  settingNamed,
  type Setting,
  type SettingName,
  type SettingRow,
} from './settings/settings-table.ts';
import { checkLakeUri, checkWarehouseUri } from './settings/backend-uris.ts';

const defaultOf = (name: SettingName): string => String(settingNamed(name).default);
export const DEFAULT_SOURCE_URL = defaultOf('sourceUrl');
export const DEFAULT_LAKE = defaultOf('lake');
export const DEFAULT_WAREHOUSE = defaultOf('warehouse');

export interface Config {
  /** Base URL; a week's file is `<sourceUrl>/turnstile_YYMMDD.txt`. */
  sourceUrl: string;
  /** A folder path, a file:// URL or gs://bucket/prefix. */
  lake: string;
  /** A DuckDB file path, duckdb:PATH or bigquery://project/dataset. */
  warehouse: string;
  /** Where spools and staged files go while a week is processed. */
  workDir: string;
  /** A GCS emulator's URL (fake-gcs-server): the GCS lake talks to it, with no credentials. */
  gcsEmulator: string | undefined;
  /** A BigQuery emulator's URL: the BigQuery warehouse talks to it with a fixed placeholder token. */
  bigqueryEmulator: string | undefined;
  /** Longest wait for a DuckDB warehouse file another run holds (ms). */
  lockWaitMs: number;
  /** A run with no date selection looks for missing weeks among this many latest drop dates. */
  catchUpWeeks: number;
  fetch: FetchPolicy;
  /**
   * How the user types this tool again, for the commands hints print (`npx mta-ingest` after an
   * npm ci install): set by the command line (cli/invocation.ts); `mta-ingest` where unset.
   */
  tool?: string | undefined;
}

export type { ConfigFlags } from './config-flags.ts';

/** The environment variable behind each setting, from the settings table. */
export const ENV = Object.fromEntries(SETTINGS.map((setting) => [setting.name, setting.env])) as Record<
  SettingName,
  string
>;

/** Names a block (blocks.ts) to take settings from, below flags and environment variables. */
export const BLOCK_ENV = BLOCK_SETTING.env;

/**
 * `blockOrigin` says which block the block's values came from (e.g. `block gcp
 * (blocks/gcp.json)`), for messages; without it they say "the block's".
 */
export function resolveConfig(
  flags: ConfigFlags,
  env: Record<string, string | undefined>,
  block: ConfigBlock = {},
  blockOrigin?: string,
): Config {
  const values = {} as Record<SettingName, string | undefined>;
  const named = {} as Record<SettingName, string>;
  for (const setting of SETTINGS) {
    const { value, from } = pick(setting, flags, env, block, blockOrigin);
    named[setting.name] = from;
    // A control character (NUL, a newline...) in any setting is a typo or an attack, never a path
    // or a URL: URL parsing would silently drop a newline, and a NUL fails deep in the file system.
    if (value !== undefined && CONTROL_CHARACTER.test(value)) {
      throw new UsageError(`${from} holds a control character`);
    }
    values[setting.name] = value ?? (setting.default === undefined ? undefined : String(setting.default));
  }
  const whole = (name: SettingName): number => wholeNumber(named[name], values[name]!, settingNamed(name));
  return {
    sourceUrl: httpUrl(named.sourceUrl, values.sourceUrl)!,
    lake: checkLakeUri(named.lake, values.lake!),
    warehouse: checkWarehouseUri(named.warehouse, values.warehouse!),
    workDir: values.workDir ?? tmpdir(),
    gcsEmulator: httpUrl(named.gcsEmulator, values.gcsEmulator),
    bigqueryEmulator: httpUrl(named.bigqueryEmulator, values.bigqueryEmulator),
    lockWaitMs: whole('lockWaitMs'),
    catchUpWeeks: whole('catchUpWeeks'),
    fetch: {
      timeoutMs: whole('fetchTimeoutMs'),
      attempts: whole('fetchAttempts'),
      backoffMs: whole('fetchBackoffMs'),
    },
  };
}

/** A setting's given value and how to name where it came from (its flag when it came from none). */
function pick(
  setting: SettingRow,
  flags: ConfigFlags,
  env: Record<string, string | undefined>,
  block: ConfigBlock,
  blockOrigin: string | undefined,
): { value: string | undefined; from: string } {
  const name = setting.name;
  const flag = flags[name];
  if (flag !== undefined) return { value: flag, from: setting.flag ?? setting.env };
  const fromEnv = nonEmpty(env[setting.env]);
  if (fromEnv !== undefined) return { value: fromEnv, from: setting.env };
  const fromBlock = setting.block === undefined ? undefined : block[name];
  if (fromBlock !== undefined && setting.block !== undefined) {
    const { section, field } = setting.block;
    return {
      value: fromBlock,
      from: blockOrigin === undefined ? `the block's ${name}` : `${blockOrigin} ${section}.${field}`,
    };
  }
  return { value: undefined, from: setting.flag ?? setting.env };
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** An http(s) URL without its trailing slashes; undefined stays unset. */
function httpUrl(name: string, given: string | undefined): string | undefined {
  if (given === undefined) return undefined;
  const url = given.replace(/\/+$/, '');
  if (!/^https?:\/\/[^/\s]+/i.test(url) || !URL.canParse(url)) {
    throw new UsageError(`${name} ${given} is not an http(s) URL`);
  }
  return url;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function wholeNumber(name: string, value: string, setting: Setting): number {
  const min = setting.minimum ?? 0;
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > MAX_WHOLE_NUMBER) {
    throw new UsageError(`${name} ${value} is not a whole number of at least ${min}`);
  }
  return Number(value);
}
