/** Freshness as a pure function of the loaded drop dates and the clock (commands/freshness.ts). */
import { describe, expect, it } from 'vitest';
import { freshnessExitCode, freshnessOf, parseFailIfBehind } from '../../src/commands/freshness.ts';
import { ExitCode } from '../../src/errors.ts';

/** Sunday 2023-06-04, noon in New York: the latest drop date is Saturday 2023-06-03. */
const SUNDAY = new Date('2023-06-04T16:00:00Z');

describe('freshnessOf', () => {
  it('counts the drop dates after the latest loaded one as weeks behind, and holes before it as gaps', () => {
    const freshness = freshnessOf(
      ['2023-04-01', '2023-04-08', '2023-04-29', '2023-05-13', '2023-05-20'],
      SUNDAY,
    );
    expect(freshness).toMatchObject({
      latestExpected: '2023-06-03',
      latestLoaded: '2023-05-20',
      firstLoaded: '2023-04-01',
      weeksBehind: 2,
      behind: ['2023-05-27', '2023-06-03'],
      gaps: [
        { first: '2023-04-15', last: '2023-04-22', weeks: 2 },
        { first: '2023-05-06', last: '2023-05-06', weeks: 1 },
      ],
    });
  });

  it('is 0 weeks behind with the latest loaded, and on Saturday before the weekly run, 1', () => {
    expect(freshnessOf(['2023-06-03'], SUNDAY)).toMatchObject({ weeksBehind: 0, behind: [], gaps: [] });
    expect(freshnessOf(['2023-05-27'], new Date('2023-06-03T14:00:00Z')).weeksBehind).toBe(1);
    // Friday: Saturday's week is not due yet.
    expect(freshnessOf(['2023-05-27'], new Date('2023-06-02T14:00:00Z')).weeksBehind).toBe(0);
  });

  it('counts the off-pattern first drop date (Wednesday 2010-05-05) as one week', () => {
    const freshness = freshnessOf(['2010-05-15'], new Date('2010-05-23T16:00:00Z'));
    expect(freshness.weeksBehind).toBe(1);
    expect(freshnessOf(['2010-05-05', '2010-05-22'], new Date('2010-05-23T16:00:00Z')).gaps).toEqual([
      { first: '2010-05-08', last: '2010-05-15', weeks: 2 },
    ]);
  });

  it('has no latest loaded week and no lag on an empty warehouse', () => {
    expect(freshnessOf([], SUNDAY)).toEqual({
      latestExpected: '2023-06-03',
      latestLoaded: null,
      firstLoaded: null,
      weeksBehind: null,
      behind: [],
      gaps: [],
      suspect: [],
    });
  });
});

describe('--fail-if-behind', () => {
  it('fails at N weeks or more, or with nothing loaded; never without the flag', () => {
    const two = freshnessOf(['2023-05-20'], SUNDAY);
    expect(freshnessExitCode(two, 2)).toBe(ExitCode.behind);
    expect(freshnessExitCode(two, 3)).toBe(ExitCode.ok);
    expect(freshnessExitCode(two, undefined)).toBe(ExitCode.ok);
    expect(freshnessExitCode(freshnessOf([], SUNDAY), 100)).toBe(ExitCode.behind);
    expect(ExitCode.behind).toBe(6);
  });

  it('takes a whole number of weeks of at least 1', () => {
    expect(parseFailIfBehind(undefined)).toBeUndefined();
    expect(parseFailIfBehind('2')).toBe(2);
    for (const bad of ['0', '', ' ', '-3', '2.5', 'x', '1e3'])
      expect(() => parseFailIfBehind(bad)).toThrow(/at least 1/);
  });
});
