#!/usr/bin/env node
/**
 * The command line: parses arguments, builds the configuration, calls one command of the core,
 * prints what it returns, and turns errors into exit codes, all here and nowhere else.
 *
 * Exit codes: 0 all weeks loaded or already loaded; 1 a week failed; 2 bad arguments or
 * configuration (nothing fetched); 3 a requested week is not published (and nothing failed).
 */
import { Command, CommanderError, Option } from 'commander';
import { BLOCK_ENV, resolveConfig, type Config, type ConfigFlags } from './config.ts';
import { loadBlock } from './block-sources.ts';
import { ExitCode, MtaIngestError, UsageError, oneLine } from './errors.ts';
import { createLogger, type LogLevel } from './log.ts';
import { TOOL } from './tool.ts';
import { ACCEPT_ENV, parseAccept, runCommand } from './commands/run.ts';
import {
  metricsTargetsOf,
  publishRunMetrics,
  type MetricsFlags,
  type MetricsTargets,
} from './metrics/publish-metrics.ts';
import { planCommand } from './commands/plan.ts';
import { statusCommand } from './commands/status.ts';
import { reportCommand } from './commands/report.ts';
import { DEFAULT_DEMO_DIR, demoCommand } from './demo/demo-command.ts';
import { formatDemo } from './demo/demo-output.ts';
import { formatPlan, formatReport, formatStatus, formatVerify, formatVersions } from './cli-output.ts';
import { verifyCommand } from './commands/verify.ts';
import { restoreCommand, versionsCommand } from './commands/versions.ts';
import { RunDisplay, outputModeFor } from './terminal/run-display.ts';
import type { DropDateSelection } from './dates/drop-dates.ts';
import { taskShareFromEnv } from './dates/shard.ts';
import { runAsFlowRun } from './prefect/flow-run.ts';
import { PrefectClient } from './prefect/prefect-client.ts';
import { formatAppliedBlocks, formatDeployResult } from './prefect/prefect-output.ts';
import { blocksApplyCommand } from './commands/blocks-apply.ts';
import { deployPrefectCommand } from './commands/deploy-prefect.ts';
import { installProcessStop } from './process-stop.ts';
import { untilStopped } from './util/abort.ts';

/** Set to an ISO instant to run as if it were then (tests, reproducible backfills). */
const CLOCK_ENV = 'MTA_INGEST_NOW';

interface CommonFlags extends ConfigFlags, DropDateSelection {
  block?: string;
  strict?: boolean;
  force?: boolean;
  json?: boolean;
  logLevel?: LogLevel;
}

function withConfigOptions(command: Command): Command {
  return command
    .option(
      '--block <name>',
      'take settings from blocks/<name>.json, or prefect:<name> from the Prefect server, below flags and env (env MTA_INGEST_BLOCK)',
    )
    .option('--source-url <url>', 'base URL of the turnstile files (env MTA_INGEST_SOURCE_URL)')
    .option(
      '--lake <uri>',
      'folder, file:// URL or gs://bucket/prefix (env MTA_INGEST_LAKE; default ./data/lake)',
    )
    .option(
      '--warehouse <uri>',
      'DuckDB file or bigquery://project/dataset[?location=L] (env MTA_INGEST_WAREHOUSE; default ./data/warehouse.duckdb)',
    )
    .option(
      '--work-dir <dir>',
      'scratch folder for spooled files (env MTA_INGEST_WORK_DIR; default the OS temp dir)',
    )
    .option('--fetch-timeout-ms <ms>', 'give up on a silent connection after this long (default 60000)')
    .option('--fetch-attempts <n>', 'tries per file, the first included (default 5)')
    .option('--fetch-backoff-ms <ms>', 'wait before the first retry, doubling after (default 1000)')
    .option(
      '--lock-wait-ms <ms>',
      'wait this long for a DuckDB warehouse file another run holds (env MTA_INGEST_LOCK_WAIT_MS; default 600000)',
    )
    .addOption(
      new Option('--log-level <level>', 'log level (JSON lines on stderr)').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    );
}

function withSelectionOptions(command: Command): Command {
  return command
    .option('--year <yyyy>', 'every drop date of a year (up to today)')
    .option('--month <m>', 'with --year: every drop date of that month (up to today)')
    .option('--day <d>', 'with --year and --month: that one drop date')
    .option('--date <yyyy-mm-dd>', 'one drop date')
    .option('--from <yyyy-mm-dd>', 'every drop date from this date (inclusive)')
    .option('--to <yyyy-mm-dd>', 'with --from: up to this date (inclusive; default today)');
}

function selectionOf(flags: CommonFlags): DropDateSelection {
  const { year, month, day, date, from, to } = flags;
  return { year, month, day, date, from, to };
}

/** Flags, then environment, then the named block, then defaults. */
async function configOf(flags: CommonFlags, env: NodeJS.ProcessEnv): Promise<Config> {
  const blockName = flags.block ?? (env[BLOCK_ENV] || undefined);
  return resolveConfig(
    flags,
    env,
    blockName === undefined ? {} : await loadBlock(blockName, process.cwd(), env),
  );
}

function clock(env: NodeJS.ProcessEnv): Date {
  const value = env[CLOCK_ENV];
  if (value === undefined || value === '') return new Date();
  const now = new Date(value);
  if (Number.isNaN(now.getTime())) throw new UsageError(`${CLOCK_ENV}=${value} is not an ISO date-time`);
  return now;
}

/**
 * Node prints process warnings on stderr as plain text, but this worker's stderr is JSON lines
 * (Cloud Logging reads them one by one). The storage client, for one, prints
 * MaxListenersExceededWarning while downloading objects of a few MB: harmless, and now a
 * WARNING event in the log like any other.
 */
function routeProcessWarningsToTheLog(): void {
  const log = createLogger('warn');
  process.removeAllListeners('warning');
  process.on('warning', (warning) =>
    log.warn({ event: 'node.warning', name: warning.name }, warning.message),
  );
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  routeProcessWarningsToTheLog();
  const out = (text: string): void => void process.stdout.write(`${text}\n`);
  const err = (text: string): void => void process.stderr.write(`mta-ingest: ${text}\n`);
  let exitCode: number = ExitCode.ok;
  // SIGINT/SIGTERM stop every command (process-stop.ts): `run` and `demo` finish their weeks'
  // lines; the others, which write nothing, stop waiting at once (`until`).
  const stop = installProcessStop({ say: err });
  const until = <T>(work: Promise<T>): Promise<T> => untilStopped(work, stop.signal);

  const program = new Command('mta-ingest')
    .description('Lands the NYC MTA weekly turnstile files in a data lake and a warehouse.')
    .version(TOOL.version)
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({
      writeErr: (text) => process.stderr.write(text),
      // Commander's own refusals (unknown option, missing value, bad choice, stray argument)
      // as one `mta-ingest:` line like every other refusal: values are echoed raw there.
      outputError: (text, write) => write(`mta-ingest: ${oneLine(text.replace(/^error: /, ''))}\n`),
    });

  withSelectionOptions(withConfigOptions(program.command('run')))
    .description('fetch, convert, store and load the selected weeks (default: the latest drop date)')
    .option('--force', 'reload weeks that are already loaded (and accept suspect ones)')
    .option(
      '--accept <dates>',
      `load these drop dates (comma-separated, or 'all') even if the plausibility gate finds them suspect (env ${ACCEPT_ENV})`,
    )
    .option(
      '--strict',
      'fail a week that has rejects, duplicate readings or readings outside its week (nothing stored or loaded)',
    )
    .option('--quiet', 'print nothing on stdout (the exit code and the log tell)')
    .option('--json', 'print one machine-readable summary on stdout at the end')
    .option(
      '--metrics-file <path>',
      "write the run's metrics here for node-exporter's textfile collector (env MTA_INGEST_METRICS_FILE)",
    )
    .option(
      '--pushgateway <url>',
      "push the run's metrics to this Prometheus Pushgateway (env MTA_INGEST_PUSHGATEWAY)",
    )
    .option('--metrics-job <name>', "the metrics' job label / Pushgateway job", 'mta_ingest')
    .action(async (flags: CommonFlags & MetricsFlags & { quiet?: boolean; accept?: string }) => {
      const display = new RunDisplay(process.stdout, outputModeFor(process.stdout, flags));
      const log = createLogger(flags.logLevel ?? (process.stderr.isTTY ? 'warn' : 'info'));
      let metrics: MetricsTargets | undefined;
      // Inside a Prefect flow run (PREFECT__FLOW_RUN_ID), its parameters select the weeks and
      // it is told how the run went; a reporting failure is one line on stderr (flow-run.ts).
      const summary = await runAsFlowRun(
        env,
        { selection: selectionOf(flags), force: flags.force === true },
        async (choice) => {
          metrics = metricsTargetsOf(flags, env);
          return runCommand({
            selection: choice.selection,
            // A Cloud Run or Kubernetes fan-out task takes its share of the dates (shard.ts).
            share: taskShareFromEnv(env),
            force: choice.force,
            accept:
              flags.accept !== undefined
                ? parseAccept(flags.accept)
                : parseAccept(env[ACCEPT_ENV], ACCEPT_ENV),
            strict: flags.strict === true,
            config: await configOf(flags, env),
            now: clock(env),
            log,
            signal: stop.signal,
            onWeek: (week) => display.week(week),
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
      exitCode = summary.exitCode;
      // A metrics failure is one line on stderr; the exit code stays the data's (publish-metrics.ts).
      if (metrics !== undefined) {
        for (const problem of await publishRunMetrics(summary, metrics)) err(`metrics: ${problem}`);
      }
    });

  withSelectionOptions(withConfigOptions(program.command('plan')))
    .description('print what a run would do (drop dates, URLs, lake objects, state); fetches nothing')
    .option('--force', 'plan as for run --force')
    .option('--json', 'machine-readable output')
    .action(async (flags: CommonFlags) => {
      const weeks = await until(
        planCommand({
          selection: selectionOf(flags),
          share: taskShareFromEnv(env),
          force: flags.force === true,
          config: await configOf(flags, env),
          now: clock(env),
          signal: stop.signal,
        }),
      );
      out(flags.json ? JSON.stringify(weeks, null, 2) : formatPlan(weeks));
    });

  withConfigOptions(program.command('report'))
    .description("a week's busiest stations by entries, from the turnstile_intervals view")
    .option('--date <yyyy-mm-dd>', 'the drop date')
    .option('--limit <n>', 'how many stations (default 10)')
    .option('--json', 'machine-readable output')
    .action(async (flags: CommonFlags & { limit?: string }) => {
      const report = await until(
        reportCommand({
          date: flags.date,
          limit: flags.limit,
          config: await configOf(flags, env),
          now: clock(env),
          signal: stop.signal,
          log: createLogger(flags.logLevel ?? 'warn'),
        }),
      );
      out(flags.json ? JSON.stringify(report, null, 2) : formatReport(report));
    });

  program
    .command('demo')
    .description('the whole pipeline on a sample week shipped with the tool: offline, no credentials')
    .option('--dir <path>', `folder for the demo's lake and warehouse (default ${DEFAULT_DEMO_DIR})`)
    .option('--json', 'machine-readable output')
    .action(async (flags: { dir?: string; json?: boolean }) => {
      const demo = await demoCommand({
        dir: flags.dir ?? DEFAULT_DEMO_DIR,
        log: createLogger('warn'),
        signal: stop.signal,
      });
      const { weeks, report, lake, warehouse } = demo;
      out(flags.json ? JSON.stringify({ weeks, report, lake, warehouse }, null, 2) : formatDemo(demo));
      exitCode = demo.exitCode;
    });

  withConfigOptions(program.command('status'))
    .description('list the weeks in the lake and whether the warehouse holds them')
    .option('--json', 'machine-readable output')
    .action(async (flags: CommonFlags) => {
      const weeks = await until(statusCommand({ config: await configOf(flags, env), signal: stop.signal }));
      out(flags.json ? JSON.stringify(weeks, null, 2) : formatStatus(weeks));
    });

  withConfigOptions(program.command('verify'))
    .description(
      'audit every stored week: lake objects against their manifests, warehouse rows and sums against the lake (exit 5 on drift)',
    )
    .option('--repair', 'heal drifted weeks with a plain run of each (reload from the lake, or re-fetch)')
    .option('--json', 'machine-readable output')
    .action(async (flags: CommonFlags & { repair?: boolean }) => {
      const result = await until(
        verifyCommand({
          config: await configOf(flags, env),
          repair: flags.repair === true,
          now: clock(env),
          log: createLogger(flags.logLevel ?? 'warn'),
        }),
      );
      out(flags.json ? JSON.stringify(result, null, 2) : formatVerify(result));
      exitCode = result.exitCode;
    });

  withConfigOptions(program.command('versions'))
    .description('list the versions of a week that the lake keeps (current, superseded, suspect)')
    .option('--date <yyyy-mm-dd>', 'the drop date')
    .option('--json', 'machine-readable output')
    .action(async (flags: CommonFlags) => {
      const versions = await versionsCommand({
        date: flags.date,
        config: await configOf(flags, env),
        now: clock(env),
        log: createLogger(flags.logLevel ?? 'warn'),
      });
      out(flags.json ? JSON.stringify(versions, null, 2) : formatVersions(versions));
    });

  withConfigOptions(program.command('restore'))
    .description('make a kept version of a week current again and load it (the replaced one is kept)')
    .option('--date <yyyy-mm-dd>', 'the drop date')
    .option('--sha256 <prefix>', 'the version: at least 6 hex digits of its sha256 (see versions)')
    .option('--json', 'machine-readable output')
    .action(async (flags: CommonFlags & { sha256?: string }) => {
      const restored = await restoreCommand({
        date: flags.date,
        version: flags.sha256,
        config: await configOf(flags, env),
        now: clock(env),
        log: createLogger(flags.logLevel ?? 'warn'),
      });
      out(
        flags.json
          ? JSON.stringify(restored, null, 2)
          : `${restored.dropDate}  restored ${restored.sha256.slice(0, 12)}: ${restored.rows} rows loaded` +
              (restored.replaced ? ` (${restored.replaced.slice(0, 12)} kept beside)` : ''),
      );
    });

  const prefectApiOption = (): Option =>
    new Option(
      '--prefect-api-url <url>',
      'the Prefect API, e.g. http://127.0.0.1:4200/api (env PREFECT_API_URL)',
    );

  program
    .command('blocks')
    .description('configuration blocks in a Prefect server')
    .command('apply')
    .description(
      "create or update blocks (blocks/<name>.json) in Prefect as documents of the project's block types",
    )
    .option('--block <names...>', 'the blocks to apply (default: every blocks/<name>.json)')
    .addOption(prefectApiOption())
    .option('--json', 'machine-readable output')
    .action(async (flags: { block?: string[]; prefectApiUrl?: string; json?: boolean }) => {
      const applied = await until(
        blocksApplyCommand({
          names: flags.block ?? [],
          client: PrefectClient.fromEnv(env, flags.prefectApiUrl, stop.signal),
        }),
      );
      out(flags.json ? JSON.stringify(applied, null, 2) : formatAppliedBlocks(applied));
    });

  program
    .command('deploy')
    .description('register the worker with a scheduler')
    .command('prefect')
    .description(
      'register the flow, a docker work pool and the weekly and backfill deployments in Prefect (idempotent)',
    )
    .requiredOption(
      '--block <name>',
      'the block, applied to Prefect, that the runs read their settings and container image from',
    )
    .option('--work-pool <name>', 'the docker work pool (default from deployments/prefect/work-pool.json)')
    .addOption(prefectApiOption())
    .option('--json', 'machine-readable output')
    .action(async (flags: { block: string; workPool?: string; prefectApiUrl?: string; json?: boolean }) => {
      const result = await until(
        deployPrefectCommand({
          block: flags.block,
          workPool: flags.workPool,
          client: PrefectClient.fromEnv(env, flags.prefectApiUrl, stop.signal),
        }),
      );
      out(flags.json ? JSON.stringify(result, null, 2) : formatDeployResult(result));
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are successes; commander has already printed its one-line error.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    err(oneLine(error));
    // Stopped by a signal: its code, whatever the stop broke off (a StoppedError or another).
    const stopped = stop.exitCode();
    if (stopped !== undefined) return stopped;
    return error instanceof MtaIngestError ? error.exitCode : ExitCode.failed;
  } finally {
    stop.dispose();
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  // A stopped command has printed what it had; what it broke off (a request, an upload) must
  // not hold the process past the orchestrator's grace period.
  if (code === ExitCode.interruptedBySigint || code === ExitCode.interruptedBySigterm) process.exit(code);
}
