/**
 * Catch-up's decision (dates/catch-up.ts), pure: which weeks a run with no date selection takes,
 * from the warehouse's loaded weeks, the bound and the index page; and the index page's URL and
 * parsing (fetch/source-index.ts).
 */
import { describe, expect, it } from 'vitest';
import { catchUp, type CatchUpInput } from '../../src/dates/catch-up.ts';
import { indexUrlFor, parseSourceIndex } from '../../src/fetch/source-index.ts';

/** Monday 2023-06-05: the latest drop date is 2023-06-03. */
const BASE = { latest: '2023-06-03', today: '2023-06-05', weeks: 12, complete: true } as const;
const run = (loaded: string[], extra: Partial<CatchUpInput> = {}) =>
  catchUp({ ...BASE, loaded: new Set(loaded), ...extra });

describe('catch-up', () => {
  it('takes only the latest week on an empty warehouse', () => {
    const result = run([]);
    expect(result).toMatchObject({ dates: ['2023-06-03'], unlisted: [] });
    expect(result.cutOff).toBeUndefined();
  });

  it('takes the missing weeks since the last loaded one, and the latest (loaded or not)', () => {
    expect(run(['2023-05-13']).dates).toEqual(['2023-05-20', '2023-05-27', '2023-06-03']);
    expect(run(['2023-05-13', '2023-06-03']).dates).toEqual(['2023-05-20', '2023-05-27', '2023-06-03']);
    expect(run(['2023-05-13', '2023-05-20', '2023-05-27', '2023-06-03']).dates).toEqual(['2023-06-03']);
  });

  it('takes a gap between loaded weeks (a week posted late, after a later one landed)', () => {
    expect(run(['2023-05-13', '2023-05-27']).dates).toEqual(['2023-05-20', '2023-06-03']);
  });

  it('never reaches before the first loaded week', () => {
    expect(run(['2023-05-27']).dates).toEqual(['2023-06-03']);
  });

  it('stops at the bound and names the weeks it cut off', () => {
    const result = run(['2023-01-07'], { weeks: 4 });
    expect(result.windowStart).toBe('2023-05-13');
    expect(result.dates).toEqual(['2023-05-13', '2023-05-20', '2023-05-27', '2023-06-03']);
    expect(result.cutOff).toEqual({ weeks: 17, first: '2023-01-14', last: '2023-05-06' });
    // A warehouse asked week by week knows nothing before the window: nothing is said cut off.
    expect(run(['2023-05-20'], { weeks: 4, complete: false }).cutOff).toBeUndefined();
    // Interior gaps older than the window count too, until they are loaded.
    expect(run(['2023-01-07', '2023-04-01', '2023-05-13'], { weeks: 4 }).cutOff).toEqual({
      weeks: 16,
      first: '2023-01-14',
      last: '2023-05-06',
    });
    // Nothing missing before the window: no cut-off.
    expect(run(['2023-05-06'], { weeks: 4 }).cutOff).toBeUndefined();
  });

  it('with the index page: asks for no unlisted earlier week, and takes listed off-pattern dates', () => {
    const published = ['2023-05-13', '2023-05-27'];
    const result = run(['2023-05-13'], { published });
    expect(result.dates).toEqual(['2023-05-27', '2023-06-03']);
    expect(result.unlisted).toEqual(['2023-05-20']);
    // An off-pattern date the page lists counts as a drop date (the Wednesday first file).
    const first = catchUp({
      latest: '2010-05-15',
      today: '2010-05-16',
      weeks: 12,
      complete: true,
      loaded: new Set(['2010-05-05']),
      published: ['2010-05-05', '2010-05-08', '2010-05-15'],
    });
    expect(first.dates).toEqual(['2010-05-08', '2010-05-15']);
    // A listed date after the calendar's latest, up to today, is the latest.
    expect(run(['2023-06-03'], { published: ['2023-06-03', '2023-06-04'] }).dates).toEqual(['2023-06-04']);
  });
});

describe('the index page', () => {
  it("is the MTA's turnstile.html for the MTA's source URL, and next to the files elsewhere", () => {
    expect(indexUrlFor('http://web.mta.info/developers/data/nyct/turnstile')).toBe(
      'http://web.mta.info/developers/turnstile.html',
    );
    expect(indexUrlFor('http://mirror.example/mta/')).toBe('http://mirror.example/mta/turnstile.html');
  });

  it('lists the linked files as drop dates, and is unparsable without any link', () => {
    const page = `<a href="data/nyct/turnstile/turnstile_230603.txt">Saturday, June 03, 2023</a><br/>
      <a href="data/nyct/turnstile/turnstile_100505.txt">Wednesday, May 05, 2010</a>
      <a href="turnstile_230230.txt">not a date</a> <a href="data/nyct/turnstile/turnstile_230603.txt">again</a>`;
    expect(parseSourceIndex(page)).toEqual(['2010-05-05', '2023-06-03']);
    expect(parseSourceIndex('<html><body>Service Unavailable</body></html>')).toBeUndefined();
  });
});
