/**
 * A real Prometheus Pushgateway for tests: Debian's prometheus-pushgateway (installed by
 * .ci/install-test-servers) run as a child process on 127.0.0.1, on a free port, metrics in
 * memory only (the Debian build persists to /var/lib/prometheus/pushgateway.data by default;
 * `--persistence.file=` turns that off).
 *
 * Started through the `sh` watchdog of watched-process.ts (as fake-gcs.ts is): it holds a pipe from
 * this process and kills the server when the pipe closes, so the server cannot outlive the tests.
 */
import { existsSync } from 'node:fs';
import { startOnFreePort, startWatched, waitUntilReady } from './watched-process.ts';

export const PUSHGATEWAY_BINARY = '/usr/bin/prometheus-pushgateway';

export interface Pushgateway {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** The gateway's /metrics page (what Prometheus scrapes). */
  scrape(): Promise<string>;
  /** Kill the server and wait until it has exited. Idempotent. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

export async function startPushgateway(): Promise<Pushgateway> {
  if (!existsSync(PUSHGATEWAY_BINARY)) {
    throw new Error(
      `${PUSHGATEWAY_BINARY} is not installed: run .ci/install-test-servers (apt-get install prometheus-pushgateway)`,
    );
  }
  return startOnFreePort(startOn);
}

async function startOn(port: number): Promise<Pushgateway> {
  const url = `http://127.0.0.1:${port}`;
  const args = [`--web.listen-address=127.0.0.1:${port}`, '--persistence.file=', '--log.level=warn'];
  const server = startWatched('pushgateway', PUSHGATEWAY_BINARY, args);
  const { stop } = server;

  const describe = (): string =>
    `prometheus-pushgateway (${args.join(' ')})` +
    (server.exitCode() !== undefined ? ` exited with code ${server.exitCode()}` : '') +
    `; its output:\n${server.output().trim() || '(none)'}`;

  try {
    await waitUntilReady({
      label: 'prometheus-pushgateway',
      url,
      server,
      describe,
      timeoutMs: READY_TIMEOUT_MS,
      probe: async () => {
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        return res.status === 200 || `GET /-/ready answered ${res.status}`;
      },
    });
  } catch (error) {
    await stop();
    throw error;
  }

  const scrape = async (): Promise<string> => {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET ${url}/metrics answered ${res.status}: ${text}`);
    return text;
  };
  return { url, scrape, stop };
}
