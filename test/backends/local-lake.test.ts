import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LakeError } from '../../src/errors.ts';
import type { Lake } from '../../src/lake/lake.ts';
import { LocalLake } from '../../src/lake/local/local-lake.ts';

let scratch: string;
let root: string;
// Typed as the port, so the calls are checked against the Lake interface (content types included).
let lake: Lake;

beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'local-lake-test-'));
  root = join(scratch, 'lake');
  lake = new LocalLake(root);
});

afterEach(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Every file under `dir`, as '/'-separated paths relative to it (folders left out). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .sort();
}

describe('LocalLake round trips', () => {
  it('putText then getText returns the text, and the object is a plain file under the root', async () => {
    const stored = await lake.putText('turnstile/_manifests/m.json', '{"a":1}\n', 'application/json');
    // A folder keeps no generations: the text's own hash stands in for one (putText's precondition).
    expect(stored).toEqual({
      key: 'turnstile/_manifests/m.json',
      uri: lake.uriOf('turnstile/_manifests/m.json'),
      generation: (await lake.getTextWithGeneration('turnstile/_manifests/m.json'))!.generation,
    });
    expect(stored.generation).toMatch(/^[0-9a-f]{16}$/);
    expect(await lake.getText('turnstile/_manifests/m.json')).toBe('{"a":1}\n');
    expect(await readFile(join(root, 'turnstile', '_manifests', 'm.json'), 'utf8')).toBe('{"a":1}\n');
  });

  it('putText with a stale generation refuses to overwrite what another writer wrote, and writes nothing', async () => {
    const key = 'turnstile/_manifests/m.json';
    const first = await lake.putText(key, 'one\n', 'application/json');
    await lake.putText(key, 'two\n', 'application/json');
    await expect(
      lake.putText(key, 'three\n', 'application/json', { ifGeneration: first.generation! }),
    ).rejects.toThrow(/changed by another writer/);
    expect(await lake.getText(key)).toBe('two\n');
    await expect(
      lake.putText('new.json', 'x', 'application/json', { ifGeneration: first.generation! }),
    ).rejects.toThrow(/changed by another writer/);
    expect(await lake.getText('new.json')).toBeUndefined();
    const current = await lake.getTextWithGeneration(key);
    await lake.putText(key, 'four\n', 'application/json', { ifGeneration: current!.generation });
    expect(await lake.getText(key)).toBe('four\n');
    expect(await lake.sizeOf(key)).toBe(5);
    expect(await lake.sizeOf('absent')).toBeUndefined();
  });

  it('keeps non-ASCII text intact (UTF-8)', async () => {
    await lake.putText('t.txt', 'café ✓\n', 'text/plain');
    expect(await lake.getText('t.txt')).toBe('café ✓\n');
  });

  it('putFile then getFile copies the exact bytes both ways', async () => {
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256));
    const source = join(scratch, 'source.bin');
    await writeFile(source, bytes);
    const stored = await lake.putFile(
      'turnstile/raw/drop_date=2023-06-03/x.txt.gz',
      source,
      'application/gzip',
    );
    expect(stored.key).toBe('turnstile/raw/drop_date=2023-06-03/x.txt.gz');
    const back = join(scratch, 'back.bin');
    await lake.getFile(stored.key, back);
    expect((await readFile(back)).equals(bytes)).toBe(true);
  });

  it('getText of a missing key is undefined', async () => {
    expect(await lake.getText('nothing/here.json')).toBeUndefined();
  });

  it('getFile of a missing key throws LakeError', async () => {
    await expect(lake.getFile('nothing/here.bin', join(scratch, 'out.bin'))).rejects.toThrow(LakeError);
  });

  it('overwriting an object replaces it whole (a shorter text leaves no tail of the longer one)', async () => {
    await lake.putText('k.txt', 'a much longer first version\n', 'text/plain');
    await lake.putText('k.txt', 'short\n', 'text/plain');
    expect(await lake.getText('k.txt')).toBe('short\n');
    const source = join(scratch, 'v3.txt');
    await writeFile(source, 'third');
    await lake.putFile('k.txt', source, 'text/plain');
    expect(await lake.getText('k.txt')).toBe('third');
  });
});

describe('LocalLake URIs', () => {
  it('uri is the file:// URL of the resolved root', () => {
    expect(lake.uri).toBe(pathToFileURL(root).href);
    expect(lake.uri.startsWith('file:///')).toBe(true);
  });

  it('resolves a relative root against the working directory', () => {
    const relativeLake = new LocalLake('data/lake');
    expect(relativeLake.uri).toBe(pathToFileURL(join(process.cwd(), 'data', 'lake')).href);
  });

  it('uriOf is the file:// URL of the object, under the root', () => {
    const uri = lake.uriOf('turnstile/parquet/drop_date=2023-06-03/x.parquet');
    expect(uri).toBe(
      pathToFileURL(join(root, 'turnstile', 'parquet', 'drop_date=2023-06-03', 'x.parquet')).href,
    );
    expect(uri.startsWith(`${lake.uri}/`)).toBe(true);
  });
});

describe('LocalLake.list', () => {
  beforeEach(async () => {
    for (const key of ['a/b/c.txt', 'a/b/a.txt', 'a/bc/d.txt', 'a/b.txt', 'a/z.txt', 'other/x.txt']) {
      await lake.putText(key, key, 'text/plain');
    }
  });

  it('returns the object keys under a folder prefix, sorted', async () => {
    const keys = await lake.list('a/b/');
    expect(keys).toEqual(['a/b/a.txt', 'a/b/c.txt']);
  });

  it('treats a prefix without a trailing slash as a plain string prefix', async () => {
    const keys = await lake.list('a/b');
    expect(keys).toEqual(expect.arrayContaining(['a/b.txt', 'a/b/a.txt', 'a/b/c.txt', 'a/bc/d.txt']));
    expect(keys).not.toContain('a/z.txt');
    expect(keys).toEqual([...keys].sort());
  });

  it('returns [] for a prefix with nothing under it', async () => {
    expect(await lake.list('nothing/')).toEqual([]);
    expect(await lake.list('a/nothing/')).toEqual([]);
  });

  it('returns [] when the lake folder does not exist yet', async () => {
    expect(await new LocalLake(join(scratch, 'absent')).list('turnstile/')).toEqual([]);
  });

  it('never lists .tmp- temporaries', async () => {
    await writeFile(join(root, 'a', 'b', 'c.txt.tmp-0123456789ab'), 'half-written');
    const keys = await lake.list('a/b/');
    expect(keys.some((key) => key.includes('.tmp-'))).toBe(false);
    expect(keys).toEqual(['a/b/a.txt', 'a/b/c.txt']);
  });

  // src bug (see report): readdir({ recursive: true }) yields folders too, and list() keeps them,
  // so list('a/') returns 'a/b' and 'a/bc' as if they were objects. The Lake contract (and a
  // GCS listing) returns object keys only; getText/delete of such a "key" fails with EISDIR.
  it('lists objects only, not the folders between them', async () => {
    expect(await lake.list('a/')).toEqual(['a/b.txt', 'a/b/a.txt', 'a/b/c.txt', 'a/bc/d.txt', 'a/z.txt']);
  });
});

describe('LocalLake temporaries', () => {
  it('a stale temporary beside an object is swept by the next write of that key', async () => {
    await lake.putText('a/k.json', 'old', 'application/json');
    // What a run killed between writing and renaming leaves behind.
    const stale = join(root, 'a', 'k.json.tmp-deadbeef0001');
    await writeFile(stale, 'half');
    await lake.putText('a/k.json', 'new', 'application/json');
    expect(existsSync(stale)).toBe(false);
    expect(await filesUnder(root)).toEqual(['a/k.json']);
    expect(await lake.getText('a/k.json')).toBe('new');
  });

  it('leaves the temporaries of other keys alone (they may be another writer in flight)', async () => {
    await mkdir(join(root, 'a'), { recursive: true });
    const other = join(root, 'a', 'kk.json.tmp-deadbeef0002');
    await writeFile(other, 'busy');
    await lake.putText('a/k.json', 'new', 'application/json');
    expect(existsSync(other)).toBe(true);
  });

  it("sweeps a temporary named with this process's PID that this process is not writing", async () => {
    // In a container every run is PID 1: a killed earlier run's temporary carries our PID.
    await mkdir(join(root, 'a'), { recursive: true });
    const earlier = join(root, 'a', `k.json.tmp-p${process.pid}-0123456789ab`);
    await writeFile(earlier, 'half');
    expect(await new LocalLake(root).removeStaleTemporaries(['a/k.json'])).toBe(1);
    expect(existsSync(earlier)).toBe(false);
  });

  it('a successful write leaves no temporary', async () => {
    await lake.putText('a/k.json', 'x', 'application/json');
    const source = join(scratch, 's.bin');
    await writeFile(source, 'y');
    await lake.putFile('a/f.bin', source, 'application/octet-stream');
    expect(await filesUnder(root)).toEqual(['a/f.bin', 'a/k.json']);
  });
});

describe('LocalLake failing writes', () => {
  it('putFile from a missing source throws LakeError, leaves no temporary and keeps the old object', async () => {
    await lake.putText('a/k.bin', 'previous', 'application/octet-stream');
    const write = lake.putFile('a/k.bin', join(scratch, 'does-not-exist.bin'), 'application/octet-stream');
    await expect(write).rejects.toThrow(LakeError);
    await expect(write).rejects.toThrow(/does-not-exist|ENOENT/);
    expect(await filesUnder(root)).toEqual(['a/k.bin']);
    expect(await lake.getText('a/k.bin')).toBe('previous');
  });

  it('a first write that fails leaves no object at all', async () => {
    await expect(
      lake.putFile('a/new.bin', join(scratch, 'nope'), 'application/octet-stream'),
    ).rejects.toThrow(LakeError);
    expect(await lake.getText('a/new.bin')).toBeUndefined();
    expect(await filesUnder(root)).toEqual([]);
  });
});

describe('LocalLake keys that escape the root', () => {
  const ESCAPES = ['../x', 'a/../../x', '../lake-sibling/x', 'a/b/../../../x'];

  it.each(ESCAPES)('%s is refused by every operation with LakeError', async (key) => {
    expect(() => lake.uriOf(key)).toThrow(LakeError);
    await expect(lake.putText(key, 'x', 'text/plain')).rejects.toThrow(LakeError);
    await expect(lake.putFile(key, join(scratch, 'any'), 'text/plain')).rejects.toThrow(LakeError);
    await expect(lake.getText(key)).rejects.toThrow(LakeError);
    await expect(lake.getFile(key, join(scratch, 'out'))).rejects.toThrow(LakeError);
    await expect(lake.delete(key)).rejects.toThrow(LakeError);
    await expect(lake.list(`${key}/`)).rejects.toThrow(LakeError);
    // Nothing was written beside the lake either.
    expect(await readdir(scratch)).toEqual([]);
  });

  it('a key with .. that stays inside the root is allowed', async () => {
    await lake.putText('a/../b.txt', 'inside', 'text/plain');
    expect(await lake.getText('b.txt')).toBe('inside');
  });
});

describe('LocalLake.delete', () => {
  it('removes an object', async () => {
    await lake.putText('a/k.txt', 'x', 'text/plain');
    await lake.delete('a/k.txt');
    expect(await lake.getText('a/k.txt')).toBeUndefined();
    expect(await filesUnder(root)).toEqual([]);
  });

  it('is a no-op when the object is missing', async () => {
    await expect(lake.delete('a/missing.txt')).resolves.toBeUndefined();
    await expect(lake.delete('no/such/folder/missing.txt')).resolves.toBeUndefined();
  });
});
