/**
 * The bench's inputs, built from the real week (drop date 2023-06-03, readings 05/27 to 06/02):
 *
 * - `redatedWeek`: the real week moved to another drop date, every reading's DATE shifted by the
 *   same number of days, so the plausibility gate sees a plausible week (the same file served
 *   unchanged under another date has every reading outside its week, and is held back as
 *   suspect, not loaded);
 * - `tenfoldWeek`: one 2.5 M-row week, the real week's lines 10 times, copy k with the first
 *   character of SCP (always '0' in the real week) set to k, so the 10 copies are 10 x 5,043
 *   distinct turnstiles (C/A + UNIT + SCP) with the same readings. Same layout, same padding.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const REAL_DROP_DATE = '2023-06-03';
const DAY = 86_400_000;

interface Week {
  bytes: Buffer;
  /** Offset of the line's first byte, for every data line (after the header). */
  lineStarts: number[];
  /** Offset of the DATE field (MM/DD/YYYY), for every data line. */
  dateAt: number[];
  /** Offset of the SCP field, for every data line. */
  scpAt: number[];
}

const COMMA = 0x2c;
const NEWLINE = 0x0a;

async function loadWeek(path: string): Promise<Week> {
  const bytes = await readFile(path);
  const week: Week = { bytes, lineStarts: [], dateAt: [], scpAt: [] };
  let start = bytes.indexOf(NEWLINE) + 1;
  while (start < bytes.length) {
    let at = start;
    let scp = -1;
    for (let field = 0; field < 6; field += 1) {
      at = bytes.indexOf(COMMA, at) + 1;
      if (at === 0) throw new Error(`${path}: a line with fewer than 7 fields at byte ${start}`);
      if (field === 1) scp = at;
    }
    week.lineStarts.push(start);
    week.scpAt.push(scp);
    week.dateAt.push(at);
    const end = bytes.indexOf(NEWLINE, at);
    start = end === -1 ? bytes.length : end + 1;
  }
  return week;
}

const mmddyyyy = (date: Date): string => {
  const iso = date.toISOString();
  return `${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(0, 4)}`;
};

/** The real week re-dated to each of `dropDates` (ISO), written as turnstile_YYMMDD.txt in dir. */
export async function redatedWeeks(realWeek: string, dropDates: string[], dir: string): Promise<string[]> {
  const week = await loadWeek(realWeek);
  const paths: string[] = [];
  for (const dropDate of dropDates) {
    const shift = Date.parse(`${dropDate}T00:00:00Z`) - Date.parse(`${REAL_DROP_DATE}T00:00:00Z`);
    const bytes = Buffer.from(week.bytes);
    const mapped = new Map<string, Buffer>();
    for (const at of week.dateAt) {
      const original = bytes.toString('latin1', at, at + 10);
      let next = mapped.get(original);
      if (next === undefined) {
        const [mm, dd, yyyy] = original.split('/');
        next = Buffer.from(mmddyyyy(new Date(Date.parse(`${yyyy}-${mm}-${dd}T00:00:00Z`) + shift)), 'latin1');
        mapped.set(original, next);
      }
      next.copy(bytes, at);
    }
    const path = join(dir, `turnstile_${dropDate.slice(2).replaceAll('-', '')}.txt`);
    const handle = await open(path, 'w');
    await handle.writeFile(bytes);
    await handle.close();
    paths.push(path);
  }
  return paths;
}

/** The 10x week (see above), written to `path`; returns its number of data rows. */
export async function tenfoldWeek(realWeek: string, path: string): Promise<number> {
  const week = await loadWeek(realWeek);
  const header = week.bytes.subarray(0, week.lineStarts[0]);
  const body = week.bytes.subarray(week.lineStarts[0]);
  const handle = await open(path, 'w');
  try {
    await handle.write(header);
    for (let k = 0; k < 10; k += 1) {
      const copy = Buffer.from(body);
      const base = week.lineStarts[0]!;
      for (const at of week.scpAt) {
        if (copy[at - base] !== 0x30) throw new Error(`an SCP that does not start with 0 at byte ${at}`);
        copy[at - base] = 0x30 + k;
      }
      await handle.write(copy);
    }
  } finally {
    await handle.close();
  }
  return week.lineStarts.length * 10;
}

/** Saturdays from `to` back, `count` of them, oldest first (ISO dates). */
export function saturdaysBack(to: string, count: number): string[] {
  const last = Date.parse(`${to}T00:00:00Z`);
  return Array.from({ length: count }, (_, i) =>
    new Date(last - (count - 1 - i) * 7 * DAY).toISOString().slice(0, 10),
  );
}
