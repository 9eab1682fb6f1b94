/** Measuring a command under GNU time, and the medians and ratios the bench prints. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const TIME = '/usr/bin/time';

export interface Sample {
  seconds: number;
  rssMb: number;
  /**
   * CPU time, user + system (GNU time's %U + %S, of the command and the children it waited
   * for). Over the wall time it says how many cores the command kept busy: on a machine whose
   * cores are all busy, no reordering of the work makes it finish sooner.
   */
  cpuSeconds: number;
}

/**
 * Runs a command under GNU time and returns its wall time, peak RSS and CPU time. The wall time
 * is taken here (performance.now around the child, GNU time's own start-up included: ~1 ms),
 * because GNU time's %e has a resolution of 10 ms; the peak RSS is GNU time's %M, the largest
 * resident set of the command or of any child it waited for (not their sum). Async, because the
 * source server lives in this process. Throws on a non-zero exit, with the command's stderr.
 */
export async function measure(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Sample & { stdout: string }> {
  const started = performance.now();
  const { stdout, stderr } = await promisify(execFile)(TIME, ['-f', '@@ %e %M %U %S', command, ...args], {
    env: { ...process.env, ...options.env },
    cwd: options.cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  const seconds = (performance.now() - started) / 1000;
  const match = /@@ ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(stderr);
  if (!match) throw new Error(`${command} ${args.join(' ')}: no measurement in ${stderr}`);
  return { seconds, rssMb: Number(match[2]) / 1024, cpuSeconds: Number(match[3]) + Number(match[4]), stdout };
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

export const medianOf = (samples: Sample[], key: keyof Sample): number => median(samples.map((s) => s[key]));

/** One table row: name, median wall, median peak RSS, the ratios to a reference, the samples. */
export function row(name: string, samples: Sample[], reference?: Sample[], refName = ''): string {
  const wall = medianOf(samples, 'seconds');
  const rss = medianOf(samples, 'rssMb');
  const cpu = medianOf(samples, 'cpuSeconds');
  const ratios =
    reference === undefined
      ? ''.padEnd(22)
      : `${(wall / medianOf(reference, 'seconds')).toFixed(2).padStart(6)}x ${(
          rss / medianOf(reference, 'rssMb')
        )
          .toFixed(2)
          .padStart(6)}x ${refName.padEnd(6)}`;
  return `${name.padEnd(44)} ${wall.toFixed(3).padStart(7)} s ${rss.toFixed(0).padStart(5)} MB ${cpu.toFixed(2).padStart(6)} s ${ratios} (${samples
    .map((s) => s.seconds.toFixed(2))
    .join(' ')})`;
}

export const header = (title: string): string =>
  `\n${title}\n${''.padEnd(44)} ${'wall'.padStart(9)} ${'peak RSS'.padStart(8)} ${'CPU'.padStart(8)} ${'wall'.padStart(7)} ${'RSS'.padStart(7)} ratio to`;
