/**
 * Secrets: with Google credentials in the environment (a generated service-account key file in
 * GOOGLE_APPLICATION_CREDENTIALS, the key JSON itself in GOOGLE_CREDENTIALS and
 * MTA_INGEST_DEBUG_KEY, which a careless debug dump of the environment would print), every
 * command runs at log level debug and all it prints, stdout and stderr, is scanned for any
 * part of the key: every 16-character piece of the private key's body, the key id, the client
 * id, and an authorized-user credential's secret and refresh token. None may appear.
 *
 * The cloud commands really load the key and sign with it: HTTPS_PROXY points at a local proxy
 * that refuses every tunnel, so authentication fails on 127.0.0.1 (the worst case for a leak,
 * an error message) and the test sees that the token endpoint was asked, i.e. that the key was
 * used. backends.test.ts covers one `run` against BigQuery; this file covers the rest.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runCli, type CliResult } from '../support/harnesses/cli.ts';
import { realLines, sourceText } from '../support/fixtures/week-sample.ts';
import { WEEK, NOW } from '../support/fixtures/real-week.ts';

const { privateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const SERVICE_ACCOUNT = {
  type: 'service_account',
  project_id: 'secret-test-project',
  private_key_id: randomBytes(20).toString('hex'),
  private_key: privateKey,
  client_email: 'mta-ingest@secret-test-project.iam.gserviceaccount.com',
  client_id: String(100_000_000_000_000_000_000n + BigInt(`0x${randomBytes(8).toString('hex')}`)),
  auth_uri: 'https://accounts.google.com/o/oauth2/auth',
  token_uri: 'https://oauth2.googleapis.com/token',
};
const AUTHORIZED_USER = {
  type: 'authorized_user',
  client_id: `${randomBytes(12).toString('hex')}.apps.googleusercontent.com`,
  client_secret: `GOCSPX-${randomBytes(18).toString('base64url')}`,
  refresh_token: `1//${randomBytes(48).toString('base64url')}`,
};

/** What must never be printed: whole values, and every 16-character piece of the key body. */
const KEY_BODY = privateKey.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
const SECRETS = [
  SERVICE_ACCOUNT.private_key_id,
  SERVICE_ACCOUNT.client_id,
  AUTHORIZED_USER.client_secret,
  AUTHORIZED_USER.refresh_token,
  ...Array.from({ length: KEY_BODY.length - 15 }, (_, at) => KEY_BODY.slice(at, at + 16)),
];

/** The secrets found in an output, which is first stripped of line breaks, escaped or not. */
function leaks(output: string): string[] {
  const flat = output.replace(/\\r|\\n|\s+/g, '');
  return SECRETS.filter((secret) => flat.includes(secret));
}

let source: SourceServer;
let proxy: Server;
/** host:port of every tunnel the refusing proxy was asked for. */
const tunnels: string[] = [];
let dir: string;
let keyFile: string;
let userFile: string;
let corruptKeyFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-secrets-'));
  keyFile = join(dir, 'key.json');
  userFile = join(dir, 'user.json');
  corruptKeyFile = join(dir, 'corrupt.json');
  await writeFile(keyFile, JSON.stringify(SERVICE_ACCOUNT, null, 2));
  await writeFile(userFile, JSON.stringify(AUTHORIZED_USER));
  // Broken mid-key, where a JSON parser's message quotes the text around the error.
  const json = JSON.stringify(SERVICE_ACCOUNT);
  const at = json.indexOf(KEY_BODY.slice(600, 620));
  await writeFile(corruptKeyFile, `${json.slice(0, at)}"}${json.slice(at)}`);

  source = await startSourceServer({
    files: [{ name: 'turnstile_230603.txt', content: sourceText(await realLines(500)) }],
  });
  proxy = createServer((_req, res) => res.writeHead(403).end());
  proxy.on('connect', (req, socket) => {
    tunnels.push(req.url ?? '');
    socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await source.close();
  await new Promise((resolve) => proxy.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

function env(credentials: string): Record<string, string> {
  const { port } = proxy.address() as AddressInfo;
  return {
    MTA_INGEST_NOW: NOW,
    MTA_INGEST_WORK_DIR: dir,
    MTA_INGEST_SOURCE_URL: source.baseUrl,
    METADATA_SERVER_DETECTION: 'none',
    GOOGLE_APPLICATION_CREDENTIALS: credentials,
    GOOGLE_CREDENTIALS: JSON.stringify(SERVICE_ACCOUNT),
    MTA_INGEST_DEBUG_KEY: JSON.stringify(SERVICE_ACCOUNT),
    HTTPS_PROXY: `http://127.0.0.1:${port}`,
    NO_PROXY: '127.0.0.1,localhost',
  };
}

interface Case {
  name: string;
  args: () => string[];
  credentials?: () => string;
  /** The exit code: each command does what it does, with the key in the environment. */
  exit: number;
  /** The command authenticates with the key (the refusing proxy is asked for the token host). */
  authenticates?: boolean;
}

const local = () => ['--lake', join(dir, 'lake'), '--warehouse', join(dir, 'wh.duckdb')];
const cloud = () => [
  '--lake',
  'gs://mta-secret-test/lake',
  '--warehouse',
  'bigquery://secret-test-project/mta',
];
const debug = ['--log-level', 'debug'];
/** `run` into the GCS lake through Application Default Credentials, and a DuckDB file. */
const gcsRun = (warehouse: string) => [
  'run',
  '--date',
  WEEK,
  '--lake',
  'gs://mta-secret-test/lake',
  '--warehouse',
  join(dir, warehouse),
  ...debug,
];

// In order: the local run lands the week that report and status then read.
const CASES: Case[] = [
  { name: 'run, local, loads', args: () => ['run', '--date', WEEK, ...local(), ...debug], exit: 0 },
  { name: 'report, local', args: () => ['report', '--date', WEEK, ...local(), ...debug], exit: 0 },
  { name: 'status --json, local', args: () => ['status', '--json', ...local(), ...debug], exit: 0 },
  { name: 'plan, local', args: () => ['plan', '--date', WEEK, ...local(), ...debug], exit: 0 },
  {
    name: 'run, GCS lake with the key',
    args: () => gcsRun('wh2.duckdb'),
    exit: 1,
    authenticates: true,
  },
  {
    name: 'plan, GCS + BigQuery',
    args: () => ['plan', '--date', WEEK, ...cloud(), ...debug],
    exit: 1,
    authenticates: true,
  },
  {
    name: 'status, GCS + BigQuery',
    args: () => ['status', ...cloud(), ...debug],
    exit: 1,
    authenticates: true,
  },
  // report runs a query job on BigQuery: it authenticates first (datasets.get), and fails there.
  {
    name: 'report, BigQuery',
    args: () => ['report', '--date', WEEK, ...cloud(), ...debug],
    exit: 1,
    authenticates: true,
  },
  {
    name: 'run, GCS lake, authorized-user credentials',
    args: () => gcsRun('wh3.duckdb'),
    credentials: () => userFile,
    exit: 1,
    authenticates: true,
  },
  {
    name: 'status, a key file that is not valid JSON',
    args: () => ['status', ...cloud(), ...debug],
    credentials: () => corruptKeyFile,
    exit: 1,
  },
  { name: 'demo', args: () => ['demo', '--dir', join(dir, 'demo')], exit: 0 },
  { name: '--help', args: () => ['--help'], exit: 0 },
  { name: 'run --help', args: () => ['run', '--help'], exit: 0 },
  { name: '--version', args: () => ['--version'], exit: 0 },
  { name: 'a bad date', args: () => ['run', '--date', '2023-06-04', ...debug], exit: 2 },
  { name: 'an unknown option', args: () => ['status', '--bogus'], exit: 2 },
  { name: 'a bad setting', args: () => ['plan', '--fetch-attempts', '0', ...debug], exit: 2 },
];

describe('no command prints any part of a credential', () => {
  it('the scan finds a piece of the key when there is one (it is not vacuous)', () => {
    // Quoted: a neighbouring letter that happened to continue the key would match a second piece.
    expect(leaks(`error near "${KEY_BODY.slice(500, 516)}" in key`)).toEqual([KEY_BODY.slice(500, 516)]);
    expect(leaks(JSON.stringify(SERVICE_ACCOUNT))).toContain(SERVICE_ACCOUNT.private_key_id);
    expect(leaks('nothing secret here')).toEqual([]);
  });

  for (const c of CASES) {
    it(`${c.name}: exit ${c.exit}, no secret in stdout or stderr`, async () => {
      const before = tunnels.length;
      const result: CliResult = await runCli(c.args(), { cwd: dir, env: env(c.credentials?.() ?? keyFile) });
      expect(result.code, result.stderr).toBe(c.exit);
      expect(leaks(result.stdout + result.stderr)).toEqual([]);
      if (c.authenticates) {
        expect(tunnels.slice(before), 'the key was used to ask for a token').toContain(
          'oauth2.googleapis.com:443',
        );
      }
    });
  }
});
