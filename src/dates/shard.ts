/**
 * Sharding a backfill across the tasks of one job: Cloud Run Jobs and Kubernetes Indexed Jobs
 * start N copies of the same container, each with its own index, and each copy must take a
 * disjoint share of the drop dates so that together they cover every date exactly once.
 *
 * Pure functions, so the whole contract is testable without a cluster: `taskShareFromEnv` reads
 * the share from the environment (or refuses it with a UsageError before anything is fetched),
 * `shareOf` picks the share's dates.
 *
 * Where the index and the count come from, first match wins:
 *
 * 1. `MTA_INGEST_TASK_INDEX` with `MTA_INGEST_TASK_COUNT`: explicit, and above the runtimes'
 *    own variables, so one failed task of a fan-out can be rerun alone (a one-task execution
 *    whose runtime says 0 of 1, told to be task 3 of 8). Refused inside a job of several tasks,
 *    where every task would take the same share.
 * 2. `CLOUD_RUN_TASK_INDEX` with `CLOUD_RUN_TASK_COUNT`: Cloud Run sets both in every task.
 * 3. `JOB_COMPLETION_INDEX` with `MTA_INGEST_TASK_COUNT`: Kubernetes gives an Indexed Job's pods
 *    their index but not the completion count, so the manifest must set MTA_INGEST_TASK_COUNT
 *    equal to `spec.completions` (deployments/kubernetes/backfill-job.yaml does).
 *
 * No variable at all means no sharding: the run takes every date.
 */
import type { IsoDate } from './drop-dates.ts';
import { UsageError } from '../errors.ts';

/** A task's place in a fan-out: task `index` (from 0) of `count`. */
export interface TaskShare {
  readonly index: number;
  readonly count: number;
}

/** The environment variables a share is read from. */
export const TASK_ENV = {
  index: 'MTA_INGEST_TASK_INDEX',
  count: 'MTA_INGEST_TASK_COUNT',
  cloudRunIndex: 'CLOUD_RUN_TASK_INDEX',
  cloudRunCount: 'CLOUD_RUN_TASK_COUNT',
  kubernetesIndex: 'JOB_COMPLETION_INDEX',
} as const;

/** Cloud Run allows at most 10,000 tasks and Kubernetes 100,000 indexed completions. */
export const MAX_TASK_COUNT = 100_000;

/**
 * The share this process should take, from `env`; undefined when nothing asks for sharding.
 * Throws a UsageError (exit 2) with a one-line message for a malformed number, an index at or
 * above its count, an index without a count, a count without an index, a Kubernetes count that
 * contradicts Cloud Run's, or indexes from two runtimes at once.
 */
export function taskShareFromEnv(env: Readonly<Record<string, string | undefined>>): TaskShare | undefined {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const explicitIndex = get(TASK_ENV.index);
  const explicitCount = get(TASK_ENV.count);
  const cloudRunIndex = get(TASK_ENV.cloudRunIndex);
  const cloudRunCount = get(TASK_ENV.cloudRunCount);
  const kubernetesIndex = get(TASK_ENV.kubernetesIndex);

  if (explicitIndex !== undefined) {
    // An explicit share is for a one-task execution: in a fan-out, every task would take it.
    const fanOut =
      (cloudRunCount !== undefined &&
        cloudRunCount !== '1' &&
        `${TASK_ENV.cloudRunCount}=${cloudRunCount}`) ||
      (kubernetesIndex !== undefined &&
        kubernetesIndex !== '0' &&
        `${TASK_ENV.kubernetesIndex}=${kubernetesIndex}`);
    if (fanOut) {
      throw new UsageError(
        `${TASK_ENV.index}=${explicitIndex} in a job of several tasks (${fanOut}): every task would take the same share; run it as a single task, or unset ${TASK_ENV.index}`,
      );
    }
    return parseTaskShare(
      { index: explicitIndex, count: explicitCount },
      { index: TASK_ENV.index, count: TASK_ENV.count },
    );
  }
  if (cloudRunIndex !== undefined && kubernetesIndex !== undefined) {
    throw new UsageError(
      `${TASK_ENV.cloudRunIndex} and ${TASK_ENV.kubernetesIndex} are both set: a task runs on one runtime; set ${TASK_ENV.index} to say which share to take`,
    );
  }
  if (cloudRunIndex !== undefined || cloudRunCount !== undefined) {
    const share = parseTaskShare(
      { index: cloudRunIndex, count: cloudRunCount },
      { index: TASK_ENV.cloudRunIndex, count: TASK_ENV.cloudRunCount },
    );
    if (explicitCount !== undefined && wholeNumber(TASK_ENV.count, explicitCount) !== share.count) {
      throw new UsageError(
        `${TASK_ENV.count}=${explicitCount} contradicts ${TASK_ENV.cloudRunCount}=${cloudRunCount}: unset ${TASK_ENV.count} on Cloud Run (its task count is the job's)`,
      );
    }
    return share;
  }
  if (kubernetesIndex !== undefined) {
    if (explicitCount === undefined) {
      throw new UsageError(
        `${TASK_ENV.kubernetesIndex}=${kubernetesIndex} needs ${TASK_ENV.count}: set it in the Indexed Job's env, equal to spec.completions`,
      );
    }
    return parseTaskShare(
      { index: kubernetesIndex, count: explicitCount },
      { index: TASK_ENV.kubernetesIndex, count: TASK_ENV.count },
    );
  }
  if (explicitCount !== undefined) {
    throw new UsageError(
      `${TASK_ENV.count}=${explicitCount} is set but no task index is (${TASK_ENV.index}, ${TASK_ENV.cloudRunIndex} or ${TASK_ENV.kubernetesIndex}): a count alone would take every date in every task`,
    );
  }
  return undefined;
}

/**
 * A share from an index and a count as strings, e.g. from flags; `names` are what messages call
 * them (`--task-index`, or the variables). Both are required and must be whole decimal numbers
 * with 0 <= index < count.
 */
export function parseTaskShare(
  values: { index: string | undefined; count: string | undefined },
  names: { index: string; count: string },
): TaskShare {
  if (values.index === undefined) {
    throw new UsageError(
      `${names.count}=${values.count} needs ${names.index}: a task share is an index and a count`,
    );
  }
  if (values.count === undefined) {
    throw new UsageError(
      `${names.index}=${values.index} needs ${names.count}: a task share is an index and a count`,
    );
  }
  const index = wholeNumber(names.index, values.index);
  const count = wholeNumber(names.count, values.count);
  if (count < 1 || count > MAX_TASK_COUNT) {
    throw new UsageError(`${names.count}=${values.count} is not a task count (1 to ${MAX_TASK_COUNT})`);
  }
  if (index >= count) {
    throw new UsageError(
      `${names.index}=${index} is not below ${names.count}=${count}: task indexes run from 0 to ${count - 1}`,
    );
  }
  return { index, count };
}

/**
 * The dates task `share.index` of `share.count` processes: round-robin over the sorted, distinct
 * dates (the 1st, (count+1)th, ... to task 0), so shares differ in size by at most one date and
 * each spans the whole range (neighbouring weeks, which are alike in size, go to different
 * tasks). The same dates and share always give the same answer, whatever order the dates came in.
 * A share may be empty when there are fewer dates than tasks.
 */
export function shareOf(dates: readonly IsoDate[], share: TaskShare): IsoDate[] {
  const sorted = [...new Set(dates)].sort();
  return sorted.filter((_, position) => position % share.count === share.index);
}

function wholeNumber(name: string, value: string): number {
  if (!/^\d{1,6}$/.test(value)) {
    throw new UsageError(`${name}=${JSON.stringify(value)} is not a whole number`);
  }
  return Number(value);
}
