/**
 * Advice fits the cause: a week a signal stopped says how to resume (the network is not to
 * blame); a week whose fetch failed says to check the network.
 */
import { describe, expect, it } from 'vitest';
import { adviceFor } from '../../src/pipeline/advice.ts';

describe('advice', () => {
  it('for an interrupted or skipped week: how to resume, never the network', () => {
    for (const [outcome, failedStage] of [
      ['interrupted', 'fetch'],
      ['interrupted', 'convert'],
      ['interrupted', 'load'],
      ['skipped', undefined],
    ] as const) {
      const advice = adviceFor({ outcome, failedStage, dropDate: '2023-06-03' }, true)!;
      expect(advice).toMatch(
        /: to resume, run the same command again \(weeks already loaded are not fetched again\), or this week alone with --date 2023-06-03$/,
      );
      expect(advice).not.toMatch(/network|source-url/);
    }
    expect(adviceFor({ outcome: 'interrupted', failedStage: 'load', dropDate: '2023-06-03' }, true)).toMatch(
      /^stopped by a signal; nothing was half-written \(the load was rolled back/,
    );
  });

  it('for a fetch that failed: the network and the source', () => {
    expect(adviceFor({ outcome: 'failed', failedStage: 'fetch', dropDate: '2023-06-03' }, true)).toMatch(
      /check the network and --source-url/,
    );
  });
});
