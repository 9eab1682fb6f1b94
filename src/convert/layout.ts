/**
 * Which of the MTA's two file layouts a file uses, told from its first line. A file whose first
 * line is neither is not a turnstile file (an HTML error page, a truncated body, another file),
 * and is refused before anything reaches the lake.
 */

export type Layout = 'modern' | 'legacy';

export const MODERN_HEADER = 'C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS';

// Legacy lines have no header: C/A,UNIT,SCP then groups of DATE(MM-DD-YY),TIME,DESC,ENTRIES,EXITS.
const LEGACY_FIRST_LINE = /^[^,]+,[^,]+,[^,]+,\d{2}-\d{2}-\d{2},\d{2}:\d{2}:\d{2},/;

export type LayoutVerdict = { layout: Layout } | { layout: undefined; why: string };

export function detectLayout(firstLine: string): LayoutVerdict {
  const line = firstLine.replace(/^\uFEFF/, '').trimEnd();
  if (line.toUpperCase() === MODERN_HEADER) return { layout: 'modern' };
  if (LEGACY_FIRST_LINE.test(line)) return { layout: 'legacy' };
  if (/^\s*</.test(line)) return { layout: undefined, why: 'the body is an HTML page, not a turnstile file' };
  if (line === '') return { layout: undefined, why: 'the body is empty' };
  const shown = line.length > 80 ? `${line.slice(0, 80)}...` : line;
  return { layout: undefined, why: `the first line is not a known turnstile layout: "${shown}"` };
}
