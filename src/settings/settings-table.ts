/**
 * The one table of settings: each row says how a setting is named on the command line, in the
 * environment and in a block, what it holds, its default and what it means. Configuration
 * resolution (config.ts), the block format and its JSON schemas (block-sections.ts), the
 * commander options (cli/config-options.ts) and docs/configuration.md are all derived from it,
 * so a setting is added or changed here and nowhere else.
 *
 * Imports no module that reads it (only the warehouse port's lock default and the log's levels):
 * the block format and config.ts both read it without importing each other.
 */
import { DEFAULT_LOCK_WAIT_MS } from '../warehouse/warehouse.ts';
import { LOG_FORMATS, LOG_LEVELS } from '../log.ts';

/** The commands that take configuration settings. */
export const CONFIG_COMMANDS = ['run', 'plan', 'report', 'status', 'verify', 'versions', 'restore'] as const;
export type ConfigCommand = (typeof CONFIG_COMMANDS)[number];

/** The block sections that hold settings (the container section holds none: it is Prefect's). */
export type SettingSection = 'source' | 'lake' | 'warehouse' | 'worker';

/**
 * How a value is checked: `http-url` an http(s) URL (trailing slashes dropped); `lake-uri` and
 * `warehouse-uri` a URI of a scheme the backends take; `path` any text; `integer` a whole number;
 * `choice` one of `choices`.
 */
export type SettingType = 'http-url' | 'lake-uri' | 'warehouse-uri' | 'path' | 'integer' | 'choice';

export interface Setting {
  /** Its name in Config's flags (ConfigFlags) and in a flattened block. */
  name: string;
  /** The command-line flag, if it has one (emulators are set by environment or block only). */
  flag?: string;
  /** The flag's value, as commander's help shows it. */
  placeholder: string;
  env: string;
  /**
   * Its field in a block; none for the log's settings, which must be known before a block is
   * read (reading a Prefect block already logs).
   */
  block?: { section: SettingSection; field: string; required?: boolean };
  type: SettingType;
  /** For `choice`: the values allowed. */
  choices?: readonly string[];
  /** For `integer`: the smallest value allowed (the largest is always 999,999,999). */
  minimum?: number;
  /** The value taken when none is given; undefined when the setting may stay unset. */
  default?: string | number;
  /** The default as the help and the docs say it, when it is not a literal. */
  defaultText?: string;
  /** One sentence, as the docs and block schemas show it. */
  help: string;
  /** The commands it applies to (its flag is offered on these only). */
  commands: readonly ConfigCommand[];
}

const ALL: readonly ConfigCommand[] = CONFIG_COMMANDS;
/** Commands that fetch and convert weeks: run, and verify, whose --repair runs them. */
const FETCHING: readonly ConfigCommand[] = ['run', 'verify'];
/** Commands that write to the warehouse, so open it for writing (and may wait for its lock). */
const WRITING: readonly ConfigCommand[] = ['run', 'verify', 'restore'];

export const MAX_WHOLE_NUMBER = 999_999_999;

const TABLE = [
  {
    name: 'sourceUrl',
    flag: '--source-url',
    placeholder: '<url>',
    env: 'MTA_INGEST_SOURCE_URL',
    block: { section: 'source', field: 'url' },
    type: 'http-url',
    default: 'http://web.mta.info/developers/data/nyct/turnstile',
    defaultText: "the MTA's server",
    help: "Base URL; a week's file is <url>/turnstile_YYMMDD.txt.",
    commands: ['run', 'plan', 'verify'],
  },
  {
    name: 'lake',
    flag: '--lake',
    placeholder: '<uri>',
    env: 'MTA_INGEST_LAKE',
    block: { section: 'lake', field: 'uri', required: true },
    type: 'lake-uri',
    default: './data/lake',
    help: 'A folder path, a file:// URL or gs://bucket/prefix.',
    commands: ALL,
  },
  {
    name: 'warehouse',
    flag: '--warehouse',
    placeholder: '<uri>',
    env: 'MTA_INGEST_WAREHOUSE',
    block: { section: 'warehouse', field: 'uri', required: true },
    type: 'warehouse-uri',
    default: './data/warehouse.duckdb',
    help: 'A DuckDB file path (or duckdb:PATH) or bigquery://project/dataset[?location=L].',
    commands: ALL,
  },
  {
    name: 'workDir',
    flag: '--work-dir',
    placeholder: '<dir>',
    env: 'MTA_INGEST_WORK_DIR',
    block: { section: 'worker', field: 'workDir' },
    type: 'path',
    defaultText: 'the OS temp folder',
    help: 'Scratch folder for spooled files (default the OS temp folder).',
    commands: WRITING,
  },
  {
    name: 'fetchTimeoutMs',
    flag: '--fetch-timeout-ms',
    placeholder: '<ms>',
    env: 'MTA_INGEST_FETCH_TIMEOUT_MS',
    block: { section: 'source', field: 'fetchTimeoutMs' },
    type: 'integer',
    minimum: 1,
    default: 60_000,
    help: 'A silent connection (no headers, or a stalled body) is given up after this.',
    commands: FETCHING,
  },
  {
    name: 'fetchAttempts',
    flag: '--fetch-attempts',
    placeholder: '<n>',
    env: 'MTA_INGEST_FETCH_ATTEMPTS',
    block: { section: 'source', field: 'fetchAttempts' },
    type: 'integer',
    minimum: 1,
    default: 5,
    help: 'Tries per file, the first included.',
    commands: FETCHING,
  },
  {
    name: 'fetchBackoffMs',
    flag: '--fetch-backoff-ms',
    placeholder: '<ms>',
    env: 'MTA_INGEST_FETCH_BACKOFF_MS',
    block: { section: 'source', field: 'fetchBackoffMs' },
    type: 'integer',
    minimum: 0,
    default: 1000,
    help: 'Wait before the first retry; doubles each time.',
    commands: FETCHING,
  },
  {
    name: 'catchUpWeeks',
    flag: '--catch-up-weeks',
    placeholder: '<n>',
    env: 'MTA_INGEST_CATCH_UP_WEEKS',
    block: { section: 'worker', field: 'catchUpWeeks' },
    type: 'integer',
    minimum: 1,
    // A quarter: a scheduler down (or an MTA posting late) for up to three months recovers with
    // no one noticing, in one run of at most 12 files (about 400 MB); a longer gap is named in
    // one line and left to a deliberate backfill.
    default: 12,
    help: 'With no date selection, a run also loads the missing weeks among this many latest drop dates (the latest included).',
    commands: ['run', 'plan'],
  },
  {
    name: 'gcsEmulator',
    placeholder: '<url>',
    env: 'MTA_INGEST_GCS_EMULATOR',
    block: { section: 'lake', field: 'gcsEmulator' },
    type: 'http-url',
    help: 'A GCS emulator (fake-gcs-server) URL; no credentials are sent to it.',
    commands: ALL,
  },
  {
    name: 'bigqueryEmulator',
    placeholder: '<url>',
    env: 'MTA_INGEST_BIGQUERY_EMULATOR',
    block: { section: 'warehouse', field: 'bigqueryEmulator' },
    type: 'http-url',
    help: 'A BigQuery emulator URL; a fixed placeholder token is sent to it.',
    commands: ALL,
  },
  {
    name: 'lockWaitMs',
    flag: '--lock-wait-ms',
    placeholder: '<ms>',
    env: 'MTA_INGEST_LOCK_WAIT_MS',
    block: { section: 'warehouse', field: 'lockWaitMs' },
    type: 'integer',
    minimum: 0,
    default: DEFAULT_LOCK_WAIT_MS,
    help: 'Longest wait for a DuckDB file another run holds, before the week fails.',
    commands: WRITING,
  },
  {
    name: 'logLevel',
    flag: '--log-level',
    placeholder: '<level>',
    env: 'MTA_INGEST_LOG_LEVEL',
    type: 'choice',
    choices: LOG_LEVELS,
    // A scheduler's log wants every week's events; a person at a terminal only what went wrong.
    defaultText: 'info for run off a terminal, else warn',
    help: 'How much the log on stderr says.',
    commands: ALL,
  },
  {
    name: 'logFormat',
    flag: '--log-format',
    placeholder: '<format>',
    env: 'MTA_INGEST_LOG_FORMAT',
    type: 'choice',
    choices: LOG_FORMATS,
    defaultText: 'text when stderr is a terminal, else json',
    help: 'The log on stderr: short lines for a person (text), or JSON lines for a log collector (json).',
    commands: ALL,
  },
] as const satisfies readonly Setting[];

export type SettingName = (typeof TABLE)[number]['name'];

/** The table, one row per setting, in the order help and docs list them. */
export const SETTINGS: readonly SettingRow[] = TABLE;
export type SettingRow = Setting & { name: SettingName };

/** Settings as flags (or a flattened block) give them: text, undefined meaning "not given". */
export type SettingValues = { [name in SettingName]?: string | undefined };

/** Names a block (blocks.ts) to take settings from, below flags and environment variables. */
export const BLOCK_SETTING = {
  flag: '--block',
  env: 'MTA_INGEST_BLOCK',
  help: 'take settings from blocks/<name>.json, a file path ending in .json, or prefect:<name> from the Prefect server, below flags and env',
} as const;

export function settingNamed(name: SettingName): SettingRow {
  return SETTINGS.find((setting) => setting.name === name)!;
}

/** The settings that apply to a command, in the table's order. */
export function settingsOf(command: ConfigCommand): SettingRow[] {
  return SETTINGS.filter((setting) => (setting.commands as readonly string[]).includes(command));
}

/** The default as a sentence says it: its text, or the literal. */
export function defaultShown(setting: Setting): string | undefined {
  return setting.defaultText ?? (setting.default === undefined ? undefined : String(setting.default));
}
