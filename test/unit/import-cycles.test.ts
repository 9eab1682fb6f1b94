/**
 * No import cycles in src/: a module and what it imports form a tree a newcomer can read from
 * the leaves up, and lazy imports (a backend, a command) stay lazy. madge reads the sources the
 * way TypeScript resolves them, type-only imports included (a type cycle is a design cycle too).
 */
import { fileURLToPath } from 'node:url';
import madge from 'madge';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('the module graph of src/', () => {
  it('has no import cycle', async () => {
    const graph = await madge(`${ROOT}src`, {
      fileExtensions: ['ts'],
      tsConfig: `${ROOT}tsconfig.json`,
      baseDir: ROOT,
    });
    expect(Object.keys(graph.obj()).length).toBeGreaterThan(60);
    expect(graph.circular()).toEqual([]);
  });

  it('would find one (the check is live)', async () => {
    const graph = await madge(`${ROOT}test/support/fixtures/import-cycle`, {
      fileExtensions: ['ts'],
      baseDir: ROOT,
    });
    expect(graph.circular()).toEqual([
      ['test/support/fixtures/import-cycle/a.ts', 'test/support/fixtures/import-cycle/b.ts'],
    ]);
  });
});
