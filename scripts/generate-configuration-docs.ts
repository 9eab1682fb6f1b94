#!/usr/bin/env node
/**
 * Writes the generated parts of docs/configuration.md from the settings table
 * (src/settings/settings-table.ts): the settings (flag, environment variable, block field,
 * default, commands, meaning) and the block sections' fields. Each part sits between
 * `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`; the rest of the page is written by
 * hand. test/unit/configuration-docs.test.ts fails when the committed page is not what this
 * writes, so a setting cannot change without its documentation.
 *
 *   npm run docs:configuration     (node scripts/generate-configuration-docs.ts)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import {
  BLOCK_SETTING,
  CONFIG_COMMANDS,
  SETTINGS,
  defaultShown,
  type SettingRow,
} from '../src/settings/settings-table.ts';
import { BLOCK_SECTIONS, SECTION_NAMES } from '../src/settings/block-sections.ts';

export const CONFIGURATION_PAGE = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));

const code = (text: string): string => `\`${text}\``;
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/</g, '\\<');

function commandsOf(setting: SettingRow): string {
  return setting.commands.length === CONFIG_COMMANDS.length ? 'all' : setting.commands.join(', ');
}

/** The settings, one row each, below the `--block` that names a block. */
export function settingsTable(): string {
  const rows = [
    '| flag | environment | block field | default | commands | meaning |',
    '| --- | --- | --- | --- | --- | --- |',
    `| ${code(`${BLOCK_SETTING.flag} NAME`)} | ${code(BLOCK_SETTING.env)} | | | all | settings from \`blocks/NAME.json\`, a file (a path ending in \`.json\`, e.g. \`./prod.json\`), or \`prefect:NAME\` from the Prefect server ([Blocks](#blocks)) |`,
  ];
  for (const setting of SETTINGS) {
    const flag = setting.flag === undefined ? '(none)' : code(`${setting.flag} ${placeholderOf(setting)}`);
    const field =
      setting.block === undefined ? '(none)' : code(`${setting.block.section}.${setting.block.field}`);
    const shown = defaultShown(setting);
    const fallback = shown === undefined ? '' : setting.defaultText === undefined ? code(shown) : shown;
    const meaning =
      setting.choices === undefined
        ? setting.help
        : `${setting.help} One of ${setting.choices.map(code).join(', ')}.`;
    rows.push(
      `| ${flag} | ${code(setting.env)} | ${field} | ${cell(fallback)} | ${commandsOf(setting)} | ${cell(meaning)} |`,
    );
  }
  return rows.join('\n');
}

function placeholderOf(setting: SettingRow): string {
  return setting.placeholder.replace(/[<>]/g, '').toUpperCase();
}

/** A block's sections and their fields, with the settings they stand for. */
export function blockSectionsTable(): string {
  const rows = ['| section | fields |', '| --- | --- |'];
  for (const section of SECTION_NAMES) {
    const fields = Object.entries(BLOCK_SECTIONS[section].fields).map(([name, field]) => {
      const setting = SETTINGS.find((row) => row.name === field.setting);
      const standsFor = setting === undefined ? [] : [setting.flag ?? setting.env];
      const notes = [...standsFor, ...(field.required ? ['required'] : [])];
      const choices = field.enum === undefined ? '' : ` (${field.enum.join(', ')})`;
      return `${code(name)}${choices}${notes.length > 0 ? ` (${notes.map((n) => (n === 'required' ? n : code(n))).join(', ')})` : ''}`;
    });
    rows.push(
      `| ${code(section)} | ${cell(`${fields.join(', ')}: ${BLOCK_SECTIONS[section].description}`)} |`,
    );
  }
  return rows.join('\n');
}

const PARTS: Record<string, () => string> = { settings: settingsTable, 'block-sections': blockSectionsTable };

/** The page with its generated parts replaced, formatted as prettier leaves it. */
export async function configurationPage(current: string): Promise<string> {
  let page = current;
  for (const [name, render] of Object.entries(PARTS)) {
    const start = `<!-- generated:${name} -->`;
    const end = `<!-- /generated:${name} -->`;
    const from = page.indexOf(start);
    const to = page.indexOf(end);
    if (from < 0 || to < from) throw new Error(`${CONFIGURATION_PAGE}: no ${start} … ${end} part`);
    page = `${page.slice(0, from + start.length)}\n\n${render()}\n\n${page.slice(to)}`;
  }
  const options = (await resolveConfig(CONFIGURATION_PAGE)) ?? {};
  return format(page, { ...options, filepath: CONFIGURATION_PAGE });
}

if (import.meta.main) {
  await writeFile(CONFIGURATION_PAGE, await configurationPage(await readFile(CONFIGURATION_PAGE, 'utf8')));
  process.stdout.write(`wrote ${CONFIGURATION_PAGE}\n`);
}
