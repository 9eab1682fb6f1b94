/**
 * `mta-ingest run` as a Prefect flow run: when PREFECT__FLOW_RUN_ID and PREFECT_API_URL are set
 * (the docker worker sets them in the container), the run's selection comes from the flow run's
 * parameters, and the flow run is told Running, then Completed or Failed with the reason, with a
 * markdown artifact of the weeks. Everything the run does, configuration included, happens
 * inside, so a bad parameter, a future date or a bad block fails the flow run with its message.
 * Without those variables it is a plain run.
 *
 * Cancelling a running flow run in Prefect stops the container: no Prefect engine runs in it to
 * watch for that, and Prefect's docker worker only stops containers of runs that have not started,
 * so the run checks its own state every few seconds, and when Prefect says Cancelling (or
 * Cancelled) it stops the way a SIGTERM stops it (it sends itself one: the CLI's one stop path,
 * weeks not done get their line), then sets the flow run Cancelled with the weeks' summary.
 */
import type { RunSummary } from '../pipeline/week-result.ts';
import type { Logger } from '../log.ts';
import { PREFECT_ENV, PrefectClient } from './prefect-client.ts';
import { FlowRunReporter } from './flow-run-reporter.ts';
import { choiceFromParameters, type RunChoice } from './flow-run-parameters.ts';
import { untilStopped } from '../util/abort.ts';

export interface FlowRunHooks {
  /** One reporting problem, one line (the caller prints it on stderr). */
  problem: (line: string) => void;
  log?: Logger | undefined;
  /** Whether the run was interrupted (a signal), for the Failed message. */
  interrupted?: () => boolean;
  /** How to stop the run when it is cancelled in Prefect (default: SIGTERM to this process). */
  cancel?: () => void;
  /**
   * The command's stop: reading the flow run's parameters is no longer waited for (a hung
   * server). The final state is still sent after a stop: it says the run was interrupted.
   */
  signal?: AbortSignal | undefined;
}

/** The flow run the environment names, if both variables are set. */
export function flowRunOf(env: Record<string, string | undefined>): string | undefined {
  const id = env[PREFECT_ENV.flowRunId];
  const url = env[PREFECT_ENV.apiUrl];
  return id && url ? id : undefined;
}

export async function runAsFlowRun(
  env: Record<string, string | undefined>,
  flags: RunChoice,
  run: (choice: RunChoice) => Promise<RunSummary>,
  hooks: FlowRunHooks,
): Promise<RunSummary> {
  const flowRunId = flowRunOf(env);
  if (flowRunId === undefined) return run(flags);
  const reporter = new FlowRunReporter(PrefectClient.fromEnv(env), flowRunId, hooks.problem, hooks.log);
  const parameters = await untilStopped(reporter.start(), hooks.signal);
  const watch = watchCancellation(reporter, hooks.cancel ?? (() => process.kill(process.pid, 'SIGTERM')));
  let summary: RunSummary;
  try {
    summary = await run(choiceFromParameters(parameters, flags));
  } catch (error) {
    watch.stop();
    await reporter.fail(error);
    throw error;
  }
  watch.stop();
  await reporter.finish(summary, hooks.interrupted?.() ?? false, watch.cancelled());
  return summary;
}

/** How often a running flow run's state is read to see whether it was cancelled. */
export const CANCEL_POLL_MS = 2_000;
const CANCELLING = new Set(['CANCELLING', 'CANCELLED']);

/** Reads the run's state every CANCEL_POLL_MS; on Cancelling, calls cancel once. */
function watchCancellation(
  reporter: FlowRunReporter,
  cancel: () => void,
): { stop: () => void; cancelled: () => boolean } {
  let cancelled = false;
  let busy = false;
  const timer = setInterval(() => {
    if (busy || cancelled) return;
    busy = true;
    void reporter
      .currentState()
      .then((state) => {
        if (state !== undefined && CANCELLING.has(state) && !cancelled) {
          cancelled = true;
          cancel();
        }
      })
      .finally(() => (busy = false));
  }, CANCEL_POLL_MS);
  // Never what keeps the process alive.
  timer.unref();
  return { stop: () => clearInterval(timer), cancelled: () => cancelled };
}
