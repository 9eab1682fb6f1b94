/**
 * Readers for the deployment files, shared by the test/deploy/ suites (kubernetes, workflows,
 * dockerfile, terraform, ci-scripts): the repository root, YAML documents that fail the test on
 * any parse error or warning, a nested value by path, and the Dockerfile's instructions.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { parseAllDocuments } from 'yaml';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

// ---------------------------------------------------------------------------------------------
// YAML

export type Doc = Record<string, unknown>;

/** Every document of a YAML file; fails the test on any parse error or warning. */
export function yamlDocs(path: string): Doc[] {
  const docs = parseAllDocuments(read(path));
  if (!Array.isArray(docs)) throw new Error(`${path}: no YAML document`);
  for (const doc of docs) {
    expect(doc.errors, `${path}: ${doc.errors.map((e) => e.message).join('; ')}`).toEqual([]);
    expect(doc.warnings, `${path}: ${doc.warnings.map((w) => w.message).join('; ')}`).toEqual([]);
  }
  return docs.map((doc) => doc.toJS() as Doc);
}

export function yamlDoc(path: string): Doc {
  const docs = yamlDocs(path);
  expect(docs, path).toHaveLength(1);
  return docs[0] as Doc;
}

/** A nested value by path, e.g. at(doc, 'spec', 'jobTemplate', 'spec'). */
export function at(value: unknown, ...path: (string | number)[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

export const K8S = 'deployments/kubernetes';
export const WORKFLOWS = '.github/workflows';

// ---------------------------------------------------------------------------------------------
// Dockerfile

export interface Dockerfile {
  from: string[];
  user: string;
  entrypoint: string[];
  cmd: string[];
  workdir: string;
  args: string[];
  argDefaults: Record<string, string>;
  env: string[];
  runs: string[];
  copies: string[];
  labels: string;
}

/** The Dockerfile's instructions (continuations joined, comments dropped). */
export function dockerfile(): Dockerfile {
  const instructions = read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [, keyword = '', rest = ''] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
      return { keyword: keyword.toUpperCase(), rest };
    });
  const all = (keyword: string): string[] =>
    instructions.filter((i) => i.keyword === keyword).map((i) => i.rest);
  const last = (keyword: string): string => all(keyword).at(-1) ?? '';
  const argDefaults: Record<string, string> = {};
  for (const arg of all('ARG')) {
    const [name = '', value] = arg.split('=', 2);
    if (value !== undefined && !(name in argDefaults)) argDefaults[name] = value.replace(/^"|"$/g, '');
  }
  return {
    from: all('FROM'),
    user: last('USER'),
    entrypoint: JSON.parse(last('ENTRYPOINT')) as string[],
    cmd: JSON.parse(last('CMD')) as string[],
    workdir: last('WORKDIR'),
    args: all('ARG').map((arg) => arg.split('=')[0] ?? ''),
    argDefaults,
    env: all('ENV'),
    runs: all('RUN'),
    copies: all('COPY'),
    labels: all('LABEL').join(' '),
  };
}
