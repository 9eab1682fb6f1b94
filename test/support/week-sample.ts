/**
 * Small real inputs and "what is left on disk" checks for the fault, property and injection
 * suites. They run the worker dozens of times: the whole real week (33 MB) costs about a second
 * a run, a few thousand of its real lines a fraction of that, with the same bytes and layout.
 */
import { existsSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { realWeekFile } from './real-week.ts';

/** Every line of the real week is padded to 130 characters, plus LF. */
export const LINE_BYTES = 131;

export interface WeekSample {
  /** The header line, padded, without its newline. */
  header: string;
  /** The first `count` data lines, padded, without newlines. */
  lines: string[];
}

/** The header and the first `count` data lines of the real week 2023-06-03. */
export async function realLines(count: number): Promise<WeekSample> {
  const handle = await open(await realWeekFile(), 'r');
  try {
    const buffer = Buffer.alloc(LINE_BYTES * (count + 1));
    await handle.read(buffer, 0, buffer.length, 0);
    const [header = '', ...lines] = buffer
      .toString('latin1')
      .split('\n')
      .slice(0, count + 1);
    return { header, lines };
  } finally {
    await handle.close();
  }
}

/** A source file's text: the header, then the lines, each ended by LF. */
export function sourceText(sample: WeekSample): string {
  return `${[sample.header, ...sample.lines].join('\n')}\n`;
}

/** Every file below `root` (relative, '/'-separated, sorted); [] when it does not exist. */
export async function filesUnder(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  return (await readdir(root, { recursive: true, withFileTypes: true }))
    .filter((entry) => !entry.isDirectory())
    .map((entry) =>
      join(entry.parentPath, entry.name)
        .slice(root.length + 1)
        .split('\\')
        .join('/'),
    )
    .sort();
}
