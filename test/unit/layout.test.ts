import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { detectLayout, MODERN_HEADER, type LayoutVerdict } from '../../src/convert/layout.ts';
import { HUDSON_YARDS, LEGACY_SAMPLE } from '../support/fixtures/real-week.ts';

/** The first line of a real file, as the spool hands it over (no line end). */
function firstLineOf(path: string): string {
  const text = readFileSync(path, 'latin1');
  return text.slice(0, text.indexOf('\n')).replace(/\r$/, '');
}

/** The `why` of a refusal, failing the test if the line was accepted. */
function whyOf(verdict: LayoutVerdict): string {
  if (verdict.layout !== undefined) throw new Error(`expected a refusal, got ${verdict.layout}`);
  return verdict.why;
}

const HEADER = 'C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS';

describe('detectLayout: modern', () => {
  it('MODERN_HEADER is the 11-column header', () => {
    expect(MODERN_HEADER).toBe(HEADER);
  });

  it('accepts the real header line with its 63 trailing spaces', () => {
    const line = firstLineOf(HUDSON_YARDS);
    expect(line).toBe(HEADER + ' '.repeat(63));
    expect(detectLayout(line)).toEqual({ layout: 'modern' });
  });

  it('accepts the header behind a UTF-8 byte order mark', () => {
    expect(detectLayout(`\uFEFF${HEADER}`)).toEqual({ layout: 'modern' });
    expect(detectLayout(`\uFEFF${HEADER}   `)).toEqual({ layout: 'modern' });
  });

  it('accepts the header in any case and with trailing tabs or CR', () => {
    expect(detectLayout(HEADER.toLowerCase())).toEqual({ layout: 'modern' });
    expect(detectLayout(`${HEADER}\t \r`)).toEqual({ layout: 'modern' });
  });

  it('refuses a header with a column missing or added', () => {
    expect(detectLayout(HEADER.replace(',EXITS', '')).layout).toBeUndefined();
    expect(detectLayout(`${HEADER},EXTRA`).layout).toBeUndefined();
    expect(detectLayout(` ${HEADER}`).layout).toBeUndefined();
  });
});

describe('detectLayout: legacy', () => {
  it('recognises the first line of the real legacy sample', () => {
    const line = firstLineOf(LEGACY_SAMPLE);
    expect(line.startsWith('A002,R051,02-00-00,03-21-10,00:00:00,REGULAR,')).toBe(true);
    expect(detectLayout(line)).toEqual({ layout: 'legacy' });
  });

  it('needs a MM-DD-YY date and HH:MM:SS time after the first three fields', () => {
    expect(detectLayout('A002,R051,02-00-00,03-21-10,00:00:00,REGULAR,1,2')).toEqual({ layout: 'legacy' });
    expect(detectLayout('A002,R051,02-00-00,03/21/2010,00:00:00,REGULAR,1,2').layout).toBeUndefined();
    expect(detectLayout('A002,R051,03-21-10,00:00:00,REGULAR,1,2').layout).toBeUndefined();
  });
});

describe('detectLayout: refusals', () => {
  it.each(['<!DOCTYPE html><html><head><title>404 Not Found</title>', '<html>', '  <HTML lang="en">'])(
    '%s is an HTML page',
    (line) => {
      const why = whyOf(detectLayout(line));
      expect(why).toMatch(/HTML/);
    },
  );

  it.each(['', '   ', '\t\r', '\uFEFF'])('%j is an empty body', (line) => {
    expect(whyOf(detectLayout(line))).toMatch(/empty/);
  });

  it('quotes a short unknown line whole', () => {
    const why = whyOf(detectLayout('hello, world'));
    expect(why).toContain('"hello, world"');
    expect(why).not.toContain('...');
  });

  it('quotes the line without its trailing blanks', () => {
    expect(whyOf(detectLayout('station,entries   \r'))).toContain('"station,entries"');
  });

  it('quotes a line of exactly 80 characters whole', () => {
    const line = 'x'.repeat(80);
    expect(whyOf(detectLayout(line))).toContain(`"${line}"`);
  });

  it('cuts a longer line to 80 characters and "..."', () => {
    const line = `${'abcdefghij'.repeat(8)}TAIL-NOT-SHOWN${'z'.repeat(500)}`;
    const why = whyOf(detectLayout(line));
    expect(why).toContain(`"${line.slice(0, 80)}..."`);
    expect(why).not.toContain('TAIL');
    expect(why).not.toContain('\n');
  });
});
