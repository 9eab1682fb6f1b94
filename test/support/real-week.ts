/**
 * The real week (drop date 2023-06-03) from ../shared/data, gunzipped once into a temp folder,
 * with its facts computed here in plain JavaScript, independently of DuckDB and of the worker.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';

export const SHARED_DATA = fileURLToPath(new URL('../../../shared/data/mta/', import.meta.url));
export const REAL_WEEK_GZ = join(SHARED_DATA, 'turnstile_230603.txt.gz');
export const HUDSON_YARDS = join(SHARED_DATA, 'turnstile_150919_hudsonyd.txt');
export const LEGACY_SAMPLE = join(SHARED_DATA, 'legacy_format_sample.txt');
export const REAL_WEEK_ROWS = 253_237;

export interface WeekFacts {
  rows: number;
  entries: bigint;
  exits: bigint;
}

/** The gunzipped real week on disk (made once per machine). */
export async function realWeekFile(): Promise<string> {
  const dir = join(tmpdir(), 'mta-ingest-test-data');
  const path = join(dir, 'turnstile_230603.txt');
  if (!existsSync(path)) {
    await mkdir(dir, { recursive: true });
    const temp = `${path}.${process.pid}.tmp`;
    await pipeline(createReadStream(REAL_WEEK_GZ), createGunzip(), createWriteStream(temp));
    const { rename } = await import('node:fs/promises');
    await rename(temp, path);
  }
  return path;
}

/** Rows and counter sums of a modern-layout file, read line by line with no parser but split. */
export async function factsOf(path: string): Promise<WeekFacts> {
  const facts: WeekFacts = { rows: 0, entries: 0n, exits: 0n };
  let first = true;
  for await (const line of createInterface({ input: createReadStream(path) })) {
    if (first) {
      first = false;
      continue;
    }
    if (line.trim() === '') continue;
    const fields = line.split(',');
    facts.rows += 1;
    facts.entries += BigInt(fields[9]!.trim());
    facts.exits += BigInt(fields[10]!.trim());
  }
  return facts;
}
