/**
 * `mta-ingest run` as a Prefect flow run: when PREFECT__FLOW_RUN_ID and PREFECT_API_URL are set
 * (the docker worker sets them in the container), the run's selection comes from the flow run's
 * parameters, and the flow run is told Running, then Completed or Failed with the reason, with a
 * markdown artifact of the weeks. Everything the run does, configuration included, happens
 * inside, so a bad parameter, a future date or a bad block fails the flow run with its message.
 * Without those variables it is a plain run.
 */
import type { RunSummary } from '../commands/run.ts';
import type { Logger } from '../log.ts';
import { PREFECT_ENV, PrefectClient } from './prefect-client.ts';
import { FlowRunReporter } from './flow-run-reporter.ts';
import { choiceFromParameters, type RunChoice } from './flow-run-parameters.ts';

export interface FlowRunHooks {
  /** One reporting problem, one line (the caller prints it on stderr). */
  problem: (line: string) => void;
  log?: Logger | undefined;
  /** Whether the run was interrupted (a signal), for the Failed message. */
  interrupted?: () => boolean;
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
  const parameters = await reporter.start();
  let summary: RunSummary;
  try {
    summary = await run(choiceFromParameters(parameters, flags));
  } catch (error) {
    await reporter.fail(error);
    throw error;
  }
  await reporter.finish(summary, hooks.interrupted?.() ?? false);
  return summary;
}
