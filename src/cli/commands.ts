/**
 * Every command of the command line: its name, options and help, and an action that imports its
 * module only when that command runs (as changesets' CLI does), so `mta-ingest plan` never loads
 * the run's pipeline, and `--help` loads no command at all. Actions print through the context
 * and return the exit code their result decides; errors are main's to turn into one (cli.ts).
 */
import { Option, type Command } from 'commander';
import { ACCEPT_ENV } from '../commands/accept-env.ts';
import { DEFAULT_DEMO_DIR } from '../demo/demo-defaults.ts';
import { commandLogger } from './log-options.ts';
import { typedCommand } from './invocation.ts';
import { jsonDocument } from '../json-document.ts';
import { taskShareFromEnv } from '../dates/shard.ts';
import {
  clock,
  configOf,
  selectionOf,
  withConfigOptions,
  withSelectionOptions,
  type CommonFlags,
} from './config-options.ts';
import type { ActionResult, CliContext } from './io.ts';
import type { RunFlags } from './run-action.ts';

type Action<F> = (flags: F, context: CliContext) => Promise<ActionResult>;

/** Registers the commands; `bind` gives each action its context when it runs. */
export function registerCommands(
  program: Command,
  bind: <F>(action: Action<F>) => (flags: F) => Promise<void>,
): void {
  withSelectionOptions(withConfigOptions(program.command('run'), 'run'))
    .description(
      'fetch, convert, store and load the selected weeks (default: the latest drop date and the missing weeks before it)',
    )
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
    .action(
      bind<RunFlags>(async (flags, context) => (await import('./run-action.ts')).runAction(flags, context)),
    );

  withSelectionOptions(withConfigOptions(program.command('plan'), 'plan'))
    .description('print what a run would do (drop dates, URLs, lake objects, state); fetches nothing')
    .option('--force', 'plan as for run --force')
    .option('--json', 'machine-readable output')
    .action(
      bind<CommonFlags>(async (flags, { io, out, err, until, stop }) => {
        const { planCommand } = await import('../commands/plan.ts');
        const { formatPlan } = await import('../cli-output.ts');
        const weeks = await until(
          planCommand({
            selection: selectionOf(flags),
            share: taskShareFromEnv(io.env),
            force: flags.force === true,
            missing: flags.missing === true,
            config: await configOf(flags, io),
            now: clock(io.env),
            signal: stop.signal,
            // On stderr, so that --json's stdout stays one document.
            onNote: (note) => err(note.message),
          }),
        );
        out(flags.json ? jsonDocument({ weeks }) : formatPlan(weeks));
      }),
    );

  withConfigOptions(program.command('report'), 'report')
    .description("a week's busiest stations by entries, from the turnstile_intervals view")
    .option('--date <yyyy-mm-dd>', 'the drop date')
    .option('--limit <n>', 'how many stations (default 10)')
    .option('--json', 'machine-readable output')
    .action(
      bind<CommonFlags & { limit?: string }>(async (flags, { io, out, until, stop }) => {
        const { reportCommand, reportExitCode } = await import('../commands/report.ts');
        const { emptyReportAdvice, formatReport } = await import('../cli-output.ts');
        const report = await until(
          reportCommand({
            date: flags.date,
            limit: flags.limit,
            config: await configOf(flags, io),
            now: clock(io.env),
            signal: stop.signal,
            log: commandLogger(flags, io, 'warn'),
          }),
        );
        const tool = typedCommand(io.env);
        const empty = report.stations.length === 0;
        out(
          flags.json
            ? jsonDocument(empty ? { ...report, advice: emptyReportAdvice(report, tool) } : report)
            : formatReport(report, tool),
        );
        return reportExitCode(report);
      }),
    );

  program
    .command('demo')
    .description('the whole pipeline on a sample week shipped with the tool: offline, no credentials')
    .option('--dir <path>', `folder for the demo's lake and warehouse (default ${DEFAULT_DEMO_DIR})`)
    .option('--json', 'machine-readable output')
    .action(
      bind<{ dir?: string; json?: boolean }>(async (flags, { io, out, stop }) => {
        const { demoCommand } = await import('../demo/demo-command.ts');
        const { formatDemo } = await import('../demo/demo-output.ts');
        const demo = await demoCommand({
          dir: flags.dir ?? DEFAULT_DEMO_DIR,
          log: commandLogger({}, io, 'warn'),
          signal: stop.signal,
        });
        const { weeks, report, lake, warehouse } = demo;
        out(
          flags.json
            ? jsonDocument({ weeks, report, lake, warehouse })
            : formatDemo(demo, typedCommand(io.env)),
        );
        return demo.exitCode;
      }),
    );

  withConfigOptions(program.command('status'), 'status')
    .description(
      'list the weeks in the lake and whether the warehouse holds them; the latest loaded and expected weeks, gaps and suspect weeks',
    )
    .option('--json', 'machine-readable output')
    .option(
      '--fail-if-behind <weeks>',
      'exit 6 when the warehouse is this many weeks behind the latest drop date, or more (or holds no week): for a monitor',
    )
    .action(
      bind<CommonFlags & { failIfBehind?: string }>(async (flags, { io, out, until, stop }) => {
        const { statusReport, parseFailIfBehind, freshnessExitCode } =
          await import('../commands/freshness.ts');
        const { formatStatusReport } = await import('../cli-output.ts');
        const threshold = parseFailIfBehind(flags.failIfBehind);
        const report = await until(
          statusReport({ config: await configOf(flags, io), now: clock(io.env), signal: stop.signal }),
        );
        out(flags.json ? jsonDocument(report) : formatStatusReport(report, typedCommand(io.env)));
        return freshnessExitCode(report.freshness, threshold);
      }),
    );

  withConfigOptions(program.command('verify'), 'verify')
    .description(
      'audit every stored week: lake objects against their manifests, warehouse rows and sums against the lake (exit 5 on drift)',
    )
    .option('--repair', 'heal drifted weeks with a plain run of each (reload from the lake, or re-fetch)')
    .option('--json', 'machine-readable output')
    .action(
      bind<CommonFlags & { repair?: boolean }>(async (flags, { io, out, until }) => {
        const { verifyCommand } = await import('../commands/verify.ts');
        const { formatVerify } = await import('../cli-output.ts');
        const result = await until(
          verifyCommand({
            config: await configOf(flags, io),
            repair: flags.repair === true,
            now: clock(io.env),
            log: commandLogger(flags, io, 'warn'),
          }),
        );
        out(flags.json ? jsonDocument(result) : formatVerify(result, typedCommand(io.env)));
        return result.exitCode;
      }),
    );

  withConfigOptions(program.command('versions'), 'versions')
    .description('list the versions of a week that the lake keeps (current, superseded, suspect)')
    .option('--date <yyyy-mm-dd>', 'the drop date')
    .option('--json', 'machine-readable output')
    .action(
      bind<CommonFlags>(async (flags, { io, out }) => {
        const { versionsCommand } = await import('../commands/versions.ts');
        const { formatVersions } = await import('../cli-output.ts');
        const versions = await versionsCommand({
          date: flags.date,
          config: await configOf(flags, io),
          now: clock(io.env),
          log: commandLogger(flags, io, 'warn'),
        });
        out(flags.json ? jsonDocument({ versions }) : formatVersions(versions));
      }),
    );

  withConfigOptions(program.command('restore'), 'restore')
    .description('make a kept version of a week current again and load it (the replaced one is kept)')
    .option('--date <yyyy-mm-dd>', 'the drop date')
    .option('--sha256 <prefix>', 'the version: at least 6 hex digits of its sha256 (see versions)')
    .option('--json', 'machine-readable output')
    .action(
      bind<CommonFlags & { sha256?: string }>(async (flags, { io, out }) => {
        const { restoreCommand } = await import('../commands/versions.ts');
        const restored = await restoreCommand({
          date: flags.date,
          version: flags.sha256,
          config: await configOf(flags, io),
          now: clock(io.env),
          log: commandLogger(flags, io, 'warn'),
        });
        out(
          flags.json
            ? jsonDocument(restored)
            : `${restored.dropDate}  restored ${restored.sha256.slice(0, 12)}: ${restored.rows} rows loaded` +
                (restored.replaced ? ` (${restored.replaced.slice(0, 12)} kept beside)` : ''),
        );
      }),
    );

  registerPrefectCommands(program, bind);
}

function registerPrefectCommands(
  program: Command,
  bind: <F>(action: Action<F>) => (flags: F) => Promise<void>,
): void {
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
    .action(
      bind<{ block?: string[]; prefectApiUrl?: string; json?: boolean }>(
        async (flags, { io, out, until, stop }) => {
          const { blocksApplyCommand } = await import('../commands/blocks-apply.ts');
          const { PrefectClient } = await import('../prefect/prefect-client.ts');
          const { formatAppliedBlocks } = await import('../prefect/prefect-output.ts');
          const applied = await until(
            blocksApplyCommand({
              names: flags.block ?? [],
              cwd: io.cwd,
              client: PrefectClient.fromEnv(io.env, flags.prefectApiUrl, stop.signal),
            }),
          );
          out(flags.json ? jsonDocument({ blocks: applied }) : formatAppliedBlocks(applied));
        },
      ),
    );

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
    .action(
      bind<{ block: string; workPool?: string; prefectApiUrl?: string; json?: boolean }>(
        async (flags, { io, out, until, stop }) => {
          const { deployPrefectCommand } = await import('../commands/deploy-prefect.ts');
          const { PrefectClient } = await import('../prefect/prefect-client.ts');
          const { formatDeployResult } = await import('../prefect/prefect-output.ts');
          const result = await until(
            deployPrefectCommand({
              block: flags.block,
              workPool: flags.workPool,
              client: PrefectClient.fromEnv(io.env, flags.prefectApiUrl, stop.signal),
            }),
          );
          out(flags.json ? jsonDocument(result) : formatDeployResult(result));
        },
      ),
    );
}
