/**
 * A run inside a Prefect flow run reports its own states: the image is not a Python program, so
 * no Prefect engine does it. The docker worker starts the container with PREFECT__FLOW_RUN_ID
 * and PREFECT_API_URL (and, for Prefect Cloud, PREFECT_API_KEY) and has already set the run
 * Pending; a run started some other way (a test, a hand-made run) is still Scheduled (or, rerun,
 * in a final state), and goes through Pending first, as Prefect's engine does.
 *
 * Orchestration decides, reporting does not: a Running proposal that Prefect refuses (the run
 * was cancelled, or is already running elsewhere) stops the run before anything is fetched. But
 * once the run may go, a Prefect API failure never costs the data: the weeks are processed and
 * the exit code stays theirs, and each reporting problem is one line for the caller to print.
 */
import type { Logger } from '../log.ts';
import { ExitCode, MtaIngestError, oneLine } from '../errors.ts';
import type { RunSummary } from '../pipeline/week-result.ts';
import type { PrefectClient } from './prefect-client.ts';
import { stateMessage, weekSummaryMarkdown } from './week-summary-markdown.ts';

export type StateType =
  'SCHEDULED' | 'PENDING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'CRASHED';

interface FlowRunRecord {
  id: string;
  name: string;
  parameters: Record<string, unknown> | null;
  state: { type: string; name: string } | null;
}

interface OrchestrationResult {
  status: 'ACCEPT' | 'REJECT' | 'ABORT' | 'WAIT';
  state: { type: string; name: string; message: string | null } | null;
  details: { reason?: string | null; delay_seconds?: number } | null;
}

/** Prefect would not let the flow run start. */
export class FlowRunRefused extends MtaIngestError {}

/**
 * The name of a Failed state, which Prefect's UI shows on the run and an automation can match:
 * what the exit code means for the scheduler (README, "Exit codes"). `NotPublished` (3) is not
 * retried here: no Prefect engine runs in the image to hold a retry, and the docker worker would
 * mark a container that exits non-zero under a non-final state Crashed; the next weekly run's
 * catch-up loads the week, or an automation on this name can run the deployment again later.
 * `Suspect` (4) waits for a person (`run --accept`).
 */
export function failedStateName(exitCode: number): string {
  if (exitCode === ExitCode.notPublished) return 'NotPublished';
  if (exitCode === ExitCode.suspect) return 'Suspect';
  return 'Failed';
}

/** The markdown artifact's key: Prefect keeps its versions, one per run, under this name. */
export const ARTIFACT_KEY = 'mta-ingest-week-summary';
/** A WAIT answer (the run is scheduled later) is waited for, this many times at most. */
const MAX_WAITS = 5;
const MAX_WAIT_SECONDS = 30;

export class FlowRunReporter {
  readonly flowRunId: string;
  readonly #client: PrefectClient;
  readonly #problem: (line: string) => void;
  readonly #log: Logger | undefined;

  constructor(client: PrefectClient, flowRunId: string, problem: (line: string) => void, log?: Logger) {
    this.#client = client;
    this.flowRunId = flowRunId;
    this.#problem = problem;
    this.#log = log;
  }

  /**
   * Reads the flow run and sets it Running (through Pending when it is still Scheduled). Returns
   * its parameters. Throws when the run cannot be read (nothing tells what to run) or when
   * Prefect refuses to let it start; a failure to set a state is a problem, and the run goes on.
   */
  async start(): Promise<Record<string, unknown>> {
    let flowRun: FlowRunRecord;
    try {
      flowRun = (await this.#client.get<FlowRunRecord>(`/flow_runs/${encodeURIComponent(this.flowRunId)}`))
        .body;
    } catch (error) {
      throw new MtaIngestError(`cannot read Prefect flow run ${this.flowRunId}: ${oneLine(error)}`);
    }
    this.#log?.info(
      {
        event: 'prefect.flow_run',
        flowRunId: this.flowRunId,
        name: flowRun.name,
        state: flowRun.state?.type,
      },
      'running as a Prefect flow run',
    );
    try {
      // Pending first unless the worker has been there: it is the transition Prefect checks a
      // run against (a cancelled run may not go Pending, though it could go Running).
      const current = flowRun.state?.type;
      if (current !== 'PENDING' && current !== 'RUNNING') {
        await this.#propose('PENDING', 'Pending', null, { mustStart: true });
      }
      await this.#propose('RUNNING', 'Running', null, { mustStart: true });
    } catch (error) {
      if (error instanceof FlowRunRefused) throw error;
      this.#problem(`could not set flow run ${this.flowRunId} Running: ${oneLine(error)}`);
    }
    return flowRun.parameters ?? {};
  }

  /**
   * The week summary as a markdown artifact, then Completed (exit code 0) or Failed; Cancelled
   * when the run stopped because it was cancelled in Prefect.
   */
  async finish(summary: RunSummary, interrupted: boolean, cancelled = false): Promise<void> {
    try {
      await this.#client.post('/artifacts/', {
        key: ARTIFACT_KEY,
        type: 'markdown',
        description: 'The weeks of this mta-ingest run: outcome, rows, rejects, source size, time.',
        data: weekSummaryMarkdown(summary),
        flow_run_id: this.flowRunId,
      });
    } catch (error) {
      this.#problem(`could not attach the week summary to flow run ${this.flowRunId}: ${oneLine(error)}`);
    }
    const message = stateMessage(summary, interrupted);
    if (cancelled) await this.#end('CANCELLED', 'Cancelled', `cancelled in Prefect: ${message}`);
    else if (summary.exitCode === 0) await this.#end('COMPLETED', 'Completed', message);
    else await this.#end('FAILED', failedStateName(summary.exitCode), message);
  }

  /** Failed, with the error's one-line message (a usage error, a configuration problem...). */
  async fail(error: unknown): Promise<void> {
    await this.#end('FAILED', 'Failed', oneLine(error));
  }

  /**
   * The run's state type now, or undefined when it cannot be read: the cancellation poll then
   * asks again at its next tick rather than failing the run.
   */
  async currentState(): Promise<string | undefined> {
    try {
      const { body } = await this.#client.get<FlowRunRecord>(
        `/flow_runs/${encodeURIComponent(this.flowRunId)}`,
      );
      return body.state?.type;
    } catch {
      return undefined;
    }
  }

  async #end(type: StateType, name: string, message: string): Promise<void> {
    try {
      await this.#propose(type, name, message, { mustStart: false });
    } catch (error) {
      this.#problem(`could not set flow run ${this.flowRunId} ${name}: ${oneLine(error)}`);
    }
  }

  /**
   * Proposes a state. WAIT is waited out; REJECT and ABORT are refusals, thrown as FlowRunRefused
   * when the run must not start, else reported as a problem.
   */
  async #propose(
    type: StateType,
    name: string,
    message: string | null,
    options: { mustStart: boolean },
  ): Promise<void> {
    for (let waits = 0; ; waits++) {
      const { body } = await this.#client.post<OrchestrationResult>(
        `/flow_runs/${encodeURIComponent(this.flowRunId)}/set_state`,
        { state: { type, name, message }, force: false },
        [200, 201],
      );
      if (body.status === 'ACCEPT') {
        this.#log?.info(
          { event: 'prefect.state', flowRunId: this.flowRunId, state: type },
          `flow run ${name}`,
        );
        return;
      }
      if (body.status === 'WAIT' && waits < MAX_WAITS) {
        const seconds = Math.min(Math.max(body.details?.delay_seconds ?? 1, 0), MAX_WAIT_SECONDS);
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        continue;
      }
      const kept = body.state ? `${body.state.name} (${body.state.type})` : 'its state';
      const refusal = `Prefect answered ${body.status} to ${name} for flow run ${this.flowRunId}, which stays ${kept}${body.details?.reason ? `: ${body.details.reason}` : ''}`;
      // Already Running (a duplicate proposal) is as good as accepted.
      if (body.state?.type === type) return;
      if (options.mustStart) throw new FlowRunRefused(refusal);
      this.#problem(refusal);
      return;
    }
  }
}
