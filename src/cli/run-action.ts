/**
 * The `run` command's glue around runCommand (commands/run.ts): the live display of the weeks,
 * the Prefect flow-run wrapper, the process's stop (signals), and the run's metrics. Loaded only
 * when `run` is the command.
 */
import { ACCEPT_ENV, parseAccept, runCommand } from '../commands/run.ts';
import {
  hasMetricsTarget,
  metricsTargetsOf,
  publishRunMetrics,
  type MetricsFlags,
} from '../metrics/publish-metrics.ts';
import { weeksBehind } from '../commands/freshness.ts';
import type { Config } from '../config.ts';
import { oneLine } from '../errors.ts';
import { RunDisplay, outputModeFor } from '../terminal/run-display.ts';
import { taskShareFromEnv } from '../dates/shard.ts';
import { runAsFlowRun } from '../prefect/flow-run.ts';
import { commandLogger } from './log-options.ts';
import { clock, configOf, selectionOf, type CommonFlags } from './config-options.ts';
import type { ActionResult, CliContext } from './io.ts';

export type RunFlags = CommonFlags & MetricsFlags & { quiet?: boolean; accept?: string };

export async function runAction(flags: RunFlags, { io, err, stop }: CliContext): Promise<ActionResult> {
  const { env } = io;
  const display = new RunDisplay(io.stdout, outputModeFor(io.stdout, flags));
  // Log lines are written above the live status line, never onto it (terminal/run-display.ts).
  const log = commandLogger(flags, io, io.stderr.isTTY ? 'warn' : 'info', display.around);
  // Inside a Prefect flow run (PREFECT__FLOW_RUN_ID), its parameters select the weeks and it is
  // told how the run went; a reporting failure is one line on stderr (flow-run.ts). Everything
  // that can refuse the run, configuration and metrics targets included, happens inside, so a
  // bad setting fails the flow run with its message.
  let config: Config | undefined;
  const summary = await runAsFlowRun(
    env,
    { selection: selectionOf(flags), force: flags.force === true, missing: flags.missing === true },
    async (choice) => {
      metricsTargetsOf(flags, env);
      return runCommand({
        selection: choice.selection,
        // A Cloud Run or Kubernetes fan-out task takes its share of the dates (shard.ts).
        share: taskShareFromEnv(env),
        force: choice.force,
        missing: choice.missing,
        accept:
          flags.accept !== undefined ? parseAccept(flags.accept) : parseAccept(env[ACCEPT_ENV], ACCEPT_ENV),
        strict: flags.strict === true,
        // Kept for the lag gauge after the run.
        config: (config = await configOf(flags, io)),
        now: clock(env),
        log,
        signal: stop.signal,
        onWeek: (week) => display.week(week),
        onNote: (note) => display.note(note.message),
        onProgress: (event) => display.progress(event),
      });
    },
    {
      problem: (line) => err(`prefect: ${line}`),
      log,
      interrupted: () => stop.signal.aborted,
      signal: stop.signal,
    },
  );
  display.finish(summary);
  // Checked inside the run above, so this cannot refuse now. A metrics failure is one line on
  // stderr; the exit code stays the data's (publish-metrics.ts).
  const metrics = metricsTargetsOf(flags, env);
  if (!hasMetricsTarget(metrics)) return summary.exitCode;
  // The lag gauge: one listing of the warehouse's loaded weeks after the run. Not after a
  // signal (the process must stop now); a failed read is a metrics line, the gauge left out.
  let lag: number | undefined;
  if (config !== undefined && !stop.signal.aborted) {
    try {
      lag = await weeksBehind(config, clock(env), stop.signal);
    } catch (error) {
      err(`metrics: cannot read the warehouse's loaded weeks for mta_ingest_weeks_behind: ${oneLine(error)}`);
    }
  }
  for (const problem of await publishRunMetrics(summary, metrics, new Date(), lag))
    err(`metrics: ${problem}`);
  return summary.exitCode;
}
