#!/usr/bin/env node
/**
 * The command line: parses arguments, runs one command (cli/commands.ts, each imported only when
 * it runs), and turns its result and its errors into the exit code, here and nowhere else.
 * `main` is given its streams, environment and working directory (cli/io.ts); it never exits the
 * process and never writes to it directly: the entry point at the bottom does that.
 *
 * Exit codes (errors.ts ExitCode; README, "Exit codes"): 0 all weeks loaded or already loaded;
 * 1 a week failed; 2 bad arguments or configuration (nothing fetched); 3 a requested week is not
 * published (yet); 4 a suspect week held back; 5 verify's drift; 6 status --fail-if-behind; 130/143
 * a signal.
 */
import { enableCompileCache } from 'node:module';
import { Command, CommanderError } from 'commander';
import { ExitCode, MtaIngestError, oneLine } from './errors.ts';
import { createLogger, logDestination, type LogFormat } from './log.ts';
import { logOptionsOf } from './cli/log-options.ts';
import { TOOL } from './tool.ts';
import { installProcessStop } from './process-stop.ts';
import { untilStopped } from './util/abort.ts';
import { registerCommands } from './cli/commands.ts';
import { processIo, type ActionResult, type CliContext, type CliIo } from './cli/io.ts';

export type { CliIo } from './cli/io.ts';

/** Runs the command line `argv` (without node and the script) and returns its exit code. */
export async function main(argv: string[], cli: CliIo = processIo()): Promise<number> {
  const out = (text: string): void => void cli.stdout.write(`${text}\n`);
  const err = (text: string): void => void cli.stderr.write(`mta-ingest: ${text}\n`);
  let exitCode: number = ExitCode.ok;
  // SIGINT/SIGTERM stop every command (process-stop.ts): `run` and `demo` finish their weeks'
  // lines; the others, which write nothing, stop waiting at once (`until`).
  const stop = installProcessStop({ say: err });
  const context: CliContext = {
    io: cli,
    out,
    err,
    stop,
    until: (work) => untilStopped(work, stop.signal),
  };

  const program = new Command('mta-ingest')
    .description('Lands the NYC MTA weekly turnstile files in a data lake and a warehouse.')
    .version(TOOL.version)
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (text) => void cli.stdout.write(text),
      writeErr: (text) => void cli.stderr.write(text),
      // Commander's own refusals (unknown option, missing value, bad choice, stray argument)
      // as one `mta-ingest:` line like every other refusal: values are echoed raw there.
      outputError: (text, write) => write(`mta-ingest: ${oneLine(text.replace(/^error: /, ''))}\n`),
    });
  // Each action's result is the exit code it decides; kept here, where errors decide theirs.
  const bind =
    <F>(action: (flags: F, context: CliContext) => Promise<ActionResult>) =>
    async (flags: F): Promise<void> => {
      const code = await action(flags, context);
      if (typeof code === 'number') exitCode = code;
    };
  registerCommands(program, bind);

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

/**
 * Node prints process warnings on stderr as plain text, but this worker's stderr is its log,
 * JSON lines off a terminal (Cloud Logging reads them one by one). The storage client, for one,
 * prints MaxListenersExceededWarning while downloading objects of a few MB: harmless, and now a
 * WARNING event in the log like any other. The process's to decide, so the entry point's.
 */
function routeProcessWarningsToTheLog(): void {
  let format: LogFormat = 'json';
  try {
    format = logOptionsOf({}, process.env, process.stderr.isTTY === true, 'warn').format;
  } catch {
    // A bad MTA_INGEST_LOG_FORMAT: the command refuses it (exit 2); its warnings stay JSON.
  }
  const log = createLogger('warn', logDestination(format));
  process.removeAllListeners('warning');
  process.on('warning', (warning) =>
    log.warn({ event: 'node.warning', name: warning.name }, warning.message),
  );
}

if (import.meta.main) {
  // V8's compiled code for the modules a command imports (DuckDB's 180, undici's 110, ours) is
  // kept on disk (the OS temp folder, or NODE_COMPILE_CACHE; NODE_DISABLE_COMPILE_CACHE=1 turns
  // it off) and reused by the next process: measured in docs/performance.md. Where the folder
  // cannot be written (a read-only container), Node says so in the returned status and runs on.
  enableCompileCache();
  routeProcessWarningsToTheLog();
  const code = await main(process.argv.slice(2), processIo());
  process.exitCode = code;
  // A stopped command has printed what it had; what it broke off (a request, an upload) must
  // not hold the process past the orchestrator's grace period.
  if (code === ExitCode.interruptedBySigint || code === ExitCode.interruptedBySigterm) process.exit(code);
}
