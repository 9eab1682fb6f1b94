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
 * `main` in-process, given streams that capture what it writes (it never writes to the
 * process's). It registers SIGINT/SIGTERM handlers for a command; those it leaves behind are
 * taken off again here, so a thousand runs do not pile up listeners in this process.
 */
type Listener = (...args: unknown[]) => void;
/** The process events `main` adds listeners to. */
const EVENTS = ['SIGINT', 'SIGTERM'] as const;
const listenersOf = (event: string): Listener[] => process.listeners(event as NodeJS.Signals) as Listener[];

export async function inProcess(argv: string[], env: Record<string, string>): Promise<Outcome> {
  const before = new Map(EVENTS.map((event) => [event, listenersOf(event)]));
  const out: string[] = [];
  const err: string[] = [];
  const capture = (into: string[]) => ({
    write: (chunk: string): boolean => into.push(chunk) > 0,
  });
  try {
    const code = await main(argv, { stdout: capture(out), stderr: capture(err), env, cwd: process.cwd() });
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    for (const event of EVENTS) {
      const kept = before.get(event) ?? [];
      for (const listener of listenersOf(event)) {
        if (!kept.includes(listener)) process.off(event, listener);
      }
      for (const listener of kept) {
        if (!listenersOf(event).includes(listener)) process.on(event, listener);
      }
    }
  }
}
