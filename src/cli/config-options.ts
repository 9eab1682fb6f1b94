/**
 * The options of the commands that take settings, derived from the settings table: each command
 * offers the flags of the settings that apply to it, each help naming its environment variable;
 * and the configuration a command's flags, the environment and a block resolve to.
 */
import { typedCommand } from './invocation.ts';
import { Option, type Command } from 'commander';
import { resolveConfig, type Config, type ConfigFlags } from '../config.ts';
import { loadBlockWithOrigin } from '../block-sources.ts';
import { UsageError } from '../errors.ts';
import type { LogLevel } from '../log.ts';
import type { DropDateSelection } from '../dates/drop-dates.ts';
import {
  BLOCK_SETTING,
  SETTINGS,
  settingsOf,
  type ConfigCommand,
  type Setting,
} from '../settings/settings-table.ts';
import type { CliIo } from './io.ts';

/** Set to an ISO instant to run as if it were then (tests, reproducible backfills). */
export const CLOCK_ENV = 'MTA_INGEST_NOW';

export interface CommonFlags extends ConfigFlags, DropDateSelection {
  block?: string;
  strict?: boolean;
  force?: boolean;
  missing?: boolean;
  json?: boolean;
  logLevel?: LogLevel;
}

/** A setting's help on the command line: its sentence, its variable and its default. */
export function optionHelp(setting: Setting): string {
  const sentence = setting.help.replace(/\.$/, '');
  const text = sentence.charAt(0).toLowerCase() + sentence.slice(1);
  const shown = setting.defaultText ?? (setting.default === undefined ? undefined : String(setting.default));
  const fallback = shown === undefined || /\(default /.test(text) ? '' : `; default ${shown}`;
  return `${text} (env ${setting.env}${fallback})`;
}

/**
 * The commands that took every setting's flag before settings applied per command: a flag that
 * does not apply to them is still accepted (and ignored), only no longer shown in their help,
 * so schedulers that pass one set of flags to run, plan, status and report keep working.
 */
const TOOK_EVERY_FLAG: readonly ConfigCommand[] = ['run', 'plan', 'report', 'status'];

export function withConfigOptions(command: Command, name: ConfigCommand): Command {
  command.option(`${BLOCK_SETTING.flag} <name|path>`, `${BLOCK_SETTING.help} (env ${BLOCK_SETTING.env})`);
  const applies = settingsOf(name);
  for (const setting of SETTINGS) {
    if (setting.flag === undefined) continue;
    const option = new Option(`${setting.flag} ${setting.placeholder}`, optionHelp(setting));
    if (setting.choices !== undefined) option.choices(setting.choices);
    if (applies.includes(setting)) command.addOption(option);
    else if (TOOK_EVERY_FLAG.includes(name)) command.addOption(option.hideHelp());
  }
  return command.addHelpText('after', environmentOnlyHelp(applies));
}

/** The settings that have no flag, so that the help names every variable a command reads. */
function environmentOnlyHelp(applies: readonly Setting[]): string {
  const rows = applies
    .filter((setting) => setting.flag === undefined)
    .map((setting) => [setting.env, optionHelp(setting).replace(/ \(env [^)]*\)$/, '')]);
  rows.push([CLOCK_ENV, 'run as if it were this ISO instant (tests, reproducible backfills)']);
  const width = Math.max(...rows.map(([env]) => env!.length));
  return `\nEnvironment only:\n${rows.map(([env, help]) => `  ${env!.padEnd(width)}  ${help}`).join('\n')}`;
}

export function withSelectionOptions(command: Command): Command {
  return command
    .option('--year <yyyy>', 'every drop date of a year (up to today)')
    .option('--month <m>', 'with --year: every drop date of that month (up to today)')
    .option('--day <d>', 'with --year and --month: that one drop date')
    .option('--date <yyyy-mm-dd>', 'one drop date')
    .option('--from <yyyy-mm-dd>', 'every drop date from this date (inclusive)')
    .option('--to <yyyy-mm-dd>', 'with --from: up to this date (inclusive; default today)')
    .option(
      '--week-of <yyyy-mm-dd>',
      "the drop date whose file holds this date's readings: the first drop date after it (a scheduler's logical date)",
    )
    .option(
      '--missing',
      'only the selected weeks the warehouse does not hold (already loaded ones are not fetched)',
    );
}

export function selectionOf(flags: CommonFlags): DropDateSelection {
  const { year, month, day, date, from, to, weekOf } = flags;
  return { year, month, day, date, from, to, weekOf };
}

/** Flags, then environment, then the named block, then defaults. */
export async function configOf(flags: CommonFlags, io: CliIo): Promise<Config> {
  const blockName = flags.block ?? (io.env[BLOCK_SETTING.env] || undefined);
  const tool = typedCommand(io.env);
  if (blockName === undefined) return { ...resolveConfig(flags, io.env), tool };
  const block = await loadBlockWithOrigin(blockName, io.cwd, io.env);
  return { ...resolveConfig(flags, io.env, block.settings, block.origin), tool };
}

export function clock(env: Record<string, string | undefined>): Date {
  const value = env[CLOCK_ENV];
  if (value === undefined || value === '') return new Date();
  const now = new Date(value);
  if (Number.isNaN(now.getTime())) throw new UsageError(`${CLOCK_ENV}=${value} is not an ISO date-time`);
  return now;
}
