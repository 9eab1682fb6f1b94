/**
 * Named configuration blocks: small JSON documents that hold a deployment's settings, so a
 * scheduler passes `--block gcp-prod` instead of every flag. Blocks rank below flags and
 * environment variables and above defaults.
 *
 * A block is sectioned, one section per kind of thing it configures, because each section is
 * also a Prefect block document of its own type (`mta-ingest blocks apply`, src/prefect/):
 *
 *     { "description": "...",
 *       "source":    { "url": "...", "fetchTimeoutMs": 60000, "fetchAttempts": 5, "fetchBackoffMs": 1000 },
 *       "lake":      { "uri": "gs://bucket/prefix", "gcsEmulator": "http://..." },
 *       "warehouse": { "uri": "bigquery://project/dataset?location=US", "bigqueryEmulator": "http://..." },
 *       "container": { "image": "mtaingest/mta-ingest:0.1.0", "pullPolicy": "IfNotPresent",
 *                      "networkMode": "host", "volumes": ["/srv/mta:/work/data"], "env": { "TZ": "UTC" } },
 *       "worker":    { "workDir": "/tmp" } }
 *
 * Every section is optional. A block is read from `blocks/<name>.json` (the working directory's,
 * then the package's), or from a Prefect server with `prefect:<name>`. Either way it is
 * validated by the one description of the format (settings/block-sections.ts, from the settings
 * table), which also gives Prefect its JSON schemas, and flattened into the flags' names for resolveConfig (config.ts).
 *
 * A block never holds a secret: a key that looks like one is refused, and Google credentials
 * come from Application Default Credentials only.
 */
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.ts';
import { SETTINGS, type SettingName } from './settings/settings-table.ts';
import {
  BLOCK_SECTIONS,
  HTTP_URL,
  SECTION_NAMES,
  type FieldSpec,
  type PullPolicy,
  type SectionName,
  type SectionSpec,
} from './settings/block-sections.ts';

export {
  BLOCK_SECTIONS,
  PULL_POLICIES,
  SECTION_NAMES,
  sectionJsonSchema,
  type FieldSpec,
  type PullPolicy,
  type SectionName,
  type SectionSpec,
} from './settings/block-sections.ts';

/** Settings a block may set, by the flags' names: what a block flattens into. */
export const BLOCK_SETTINGS: readonly SettingName[] = SETTINGS.filter((setting) => setting.block).map(
  (setting) => setting.name,
);

/** A block flattened for resolveConfig: settings by the flags' names, as strings. */
export type ConfigBlock = { [name in SettingName]?: string };

export interface SourceSection {
  url?: string;
  fetchTimeoutMs?: number;
  fetchAttempts?: number;
  fetchBackoffMs?: number;
}
export interface LakeSection {
  uri: string;
  gcsEmulator?: string;
}
export interface WarehouseSection {
  uri: string;
  bigqueryEmulator?: string;
  lockWaitMs?: number;
}
export interface ContainerSection {
  image: string;
  pullPolicy: PullPolicy;
  /** The docker work pool's job variables network_mode, volumes and env (deploy prefect). */
  networkMode?: string;
  volumes?: string[];
  env?: Record<string, string>;
}
export interface WorkerSection {
  workDir?: string;
}

/** A validated block, by section. */
export interface BlockDocument {
  description?: string;
  source?: SourceSection;
  lake?: LakeSection;
  warehouse?: WarehouseSection;
  container?: ContainerSection;
  worker?: WorkerSection;
}

const PACKAGE_BLOCKS = fileURLToPath(new URL('../blocks/', import.meta.url));
const SECRET_LIKE = /key|secret|token|password|credential|private/i;
const BLOCK_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** `--block prefect:NAME` reads the block from the Prefect server at PREFECT_API_URL. */
export const PREFECT_BLOCK_PREFIX = 'prefect:';

/** Where a block named `name` is looked for, in order. */
export function blockPaths(name: string, cwd = process.cwd()): string[] {
  // A path (`./prod.json`, `/etc/mta-ingest/prod.json`): the file itself. A name holds no dot,
  // so the two never meet.
  if (isBlockPath(name)) return [resolve(cwd, name)];
  checkBlockName(name);
  return [join(cwd, 'blocks', `${name}.json`), join(PACKAGE_BLOCKS, `${name}.json`)];
}

/** `--block` names a file when it ends in .json; otherwise it is a block's name. */
export function isBlockPath(ref: string): boolean {
  return ref.endsWith('.json');
}

export function checkBlockName(name: string): void {
  if (!BLOCK_NAME.test(name)) {
    throw new UsageError(
      `--block ${name}: a block name is lower-case letters, digits, - and _ (a file in blocks/), a path to a .json file, or prefect:NAME`,
    );
  }
}

/** The names of the block files in the working directory's blocks/ and the package's. */
export async function listBlockNames(cwd = process.cwd()): Promise<string[]> {
  const names = new Set<string>();
  for (const dir of [join(cwd, 'blocks'), PACKAGE_BLOCKS]) {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    for (const entry of entries) {
      const name = entry.replace(/\.json$/, '');
      if (entry.endsWith('.json') && BLOCK_NAME.test(name)) names.add(name);
    }
  }
  return [...names].sort();
}

/** A block file's text, validated and flattened. */
export function parseBlock(name: string, text: string, where: string): ConfigBlock {
  return flattenBlock(parseBlockDocument(name, text, where));
}

export function parseBlockDocument(name: string, text: string, where: string): BlockDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`--block ${name}: ${where} is not valid JSON`);
  }
  return validateBlock(name, value, where);
}

/** Checks a whole block (as parsed from JSON) against BLOCK_SECTIONS; messages are one line. */
export function validateBlock(name: string, value: unknown, where: string): BlockDocument {
  const fail = (message: string): never => {
    throw new UsageError(`--block ${name}: ${where}: ${message}`);
  };
  if (!isObject(value)) return fail('must hold a JSON object');
  const block: BlockDocument = {};
  for (const [key, section] of Object.entries(value)) {
    if (key === '$schema') continue;
    if (key === 'description') {
      if (typeof section !== 'string') fail('"description" must be a string');
      block.description = section as string;
      continue;
    }
    refuseSecretLike(key, fail);
    if (!(SECTION_NAMES as string[]).includes(key)) {
      const flat = (BLOCK_SETTINGS as readonly string[]).includes(key)
        ? `; blocks hold sections now, e.g. {"lake": {"uri": "..."}, "source": {"url": "..."}}`
        : '';
      fail(`unknown section "${key}" (known: ${SECTION_NAMES.join(', ')})${flat}`);
    }
    const sectionName = key as SectionName;
    Object.assign(block, { [sectionName]: validateSection(sectionName, section, fail) });
  }
  return block;
}

/** One section's data (from a file, or a Prefect block document), checked and with defaults. */
export function validateSection(
  section: SectionName,
  value: unknown,
  fail: (message: string) => never,
): Record<string, FieldValue> {
  const spec = BLOCK_SECTIONS[section];
  if (!isObject(value)) {
    const hint = typeof value === 'string' ? `, e.g. {"${section}": {"${firstField(spec)}": "..."}}` : '';
    return fail(`"${section}" must be an object (a section)${hint}`);
  }
  const out: Record<string, FieldValue> = {};
  for (const [key, field] of Object.entries(value)) {
    refuseSecretLike(`${section}.${key}`, fail);
    const fieldSpec = spec.fields[key];
    if (fieldSpec === undefined) {
      fail(`unknown setting "${section}.${key}" (known: ${Object.keys(spec.fields).join(', ')})`);
    } else {
      out[key] = checkField(`${section}.${key}`, fieldSpec, field, fail);
    }
  }
  for (const [key, fieldSpec] of Object.entries(spec.fields)) {
    if (out[key] !== undefined) continue;
    if (fieldSpec.required) fail(`"${section}.${key}" is required in the ${section} section`);
    // Only the container's defaults are filled in: the others are config.ts's to apply, where a
    // flag or an environment variable can still win over them.
    if (section === 'container' && fieldSpec.default !== undefined) out[key] = fieldSpec.default;
  }
  return out;
}

/** A checked field's value: a string, a whole number, a list of strings or strings by name. */
export type FieldValue = string | number | string[] | Record<string, string>;

function checkField(
  path: string,
  spec: FieldSpec,
  value: unknown,
  fail: (message: string) => never,
): FieldValue {
  // The container's list and map fields: each item (or name) against the pattern, values strings.
  if (spec.type === 'array') {
    if (!Array.isArray(value)) return fail(`"${path}" must be a list of strings`);
    return value.map(
      (item, index) => checkField(`${path}[${index}]`, { ...spec, type: 'string' }, item, fail) as string,
    );
  }
  if (spec.type === 'object') {
    if (!isObject(value)) return fail(`"${path}" must be an object of strings by name`);
    const out: Record<string, string> = {};
    for (const [name, item] of Object.entries(value)) {
      refuseSecretLike(`${path}.${name}`, fail);
      if (spec.pattern !== undefined && !new RegExp(spec.pattern).test(name))
        fail(`"${path}" name ${JSON.stringify(name)} is not valid`);
      if (typeof item !== 'string') fail(`"${path}.${name}" must be a string`);
      out[name] = item;
    }
    return out;
  }
  if (spec.type === 'integer') {
    if (typeof value !== 'number' || !Number.isInteger(value))
      return fail(`"${path}" must be a whole number`);
    if (spec.minimum !== undefined && value < spec.minimum)
      fail(`"${path}" must be at least ${spec.minimum}`);
    if (spec.maximum !== undefined && value > spec.maximum) fail(`"${path}" must be at most ${spec.maximum}`);
    return value;
  }
  if (typeof value !== 'string' || value.trim() === '') return fail(`"${path}" must be a non-empty string`);
  if (spec.enum !== undefined && !spec.enum.includes(value)) {
    fail(`"${path}" ${JSON.stringify(value)} is not one of ${spec.enum.join(', ')}`);
  }
  if (spec.pattern !== undefined && !new RegExp(spec.pattern).test(value)) {
    fail(
      `"${path}" ${JSON.stringify(value)} is not ${spec.pattern === HTTP_URL ? 'an http(s) URL' : 'valid'}`,
    );
  }
  return value;
}

function refuseSecretLike(key: string, fail: (message: string) => never): void {
  if (SECRET_LIKE.test(key)) {
    fail(
      `"${key}" looks like a secret; blocks never hold secrets (Google credentials come from Application Default Credentials)`,
    );
  }
}

/** The block's settings by the flags' names, as resolveConfig takes them. */
export function flattenBlock(block: BlockDocument): ConfigBlock {
  const flat: ConfigBlock = {};
  for (const section of SECTION_NAMES) {
    const data = block[section] as Record<string, string | number> | undefined;
    if (data === undefined) continue;
    for (const [key, spec] of Object.entries(BLOCK_SECTIONS[section].fields)) {
      const value = data[key];
      if (spec.setting !== undefined && value !== undefined) flat[spec.setting] = String(value);
    }
  }
  return flat;
}

function firstField(spec: SectionSpec): string {
  return Object.keys(spec.fields)[0] ?? 'uri';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
