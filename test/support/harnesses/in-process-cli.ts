/**
 * The CLI's `main` called in-process, capturing what it writes: for suites that run the command
 * line hundreds of times, where a child process (~0.5 s each) would take minutes.
 */
import { main } from '../../../src/cli.ts';

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `main` in-process, capturing what it writes. It registers SIGINT/SIGTERM handlers for a run
 * and replaces 'warning' listeners; those it leaves behind are taken off again here, so a
 * thousand runs do not pile up listeners in this process.
 */
type Listener = (...args: unknown[]) => void;
/** The process events `main` adds listeners to (typed loosely: 'warning' is no signal). */
const EVENTS = ['SIGINT', 'SIGTERM', 'warning'] as const;
const listenersOf = (event: string): Listener[] => process.listeners(event as NodeJS.Signals) as Listener[];

export async function inProcess(argv: string[], env: Record<string, string>): Promise<Outcome> {
  const before = new Map(EVENTS.map((event) => [event, listenersOf(event)]));
  const out: string[] = [];
  const err: string[] = [];
  const stdoutWrite = process.stdout.write.bind(process.stdout);
  const stderrWrite = process.stderr.write.bind(process.stderr);
  const capture =
    (into: string[]) =>
    (chunk: string | Uint8Array): boolean =>
      into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')) > 0;
  process.stdout.write = capture(out);
  process.stderr.write = capture(err);
  try {
    const code = await main(argv, env);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
    for (const event of EVENTS) {
      const kept = before.get(event) ?? [];
      for (const listener of listenersOf(event)) {
        if (!kept.includes(listener)) process.off(event, listener);
      }
      for (const listener of kept) {
        if (!listenersOf(event).includes(listener)) process.on(event as NodeJS.Signals, listener);
      }
    }
  }
}
