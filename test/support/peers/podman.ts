/**
 * The project's image, built and run without a Docker engine or an image registry: buildah builds
 * the Dockerfile on a stand-in base, podman runs it the way users do, and `podman system service`
 * serves a Docker-compatible API for the Prefect docker worker. EVERY flag this sandbox needs is
 * here, each with the reason, so the tests say only what a user would:
 *
 * - `buildah bud --isolation chroot`: buildah's default (OCI) isolation runs build steps through
 *   the OCI runtime, which fails here (`crun: cgroups in hybrid mode not supported`): the machine
 *   has cgroup v1 controllers with a v2 hierarchy beside them.
 * - `--pull=never`: no image registry is reachable; the base is made locally (below).
 * - `--layers`: buildah caches no layers by default; with it an unchanged rebuild takes seconds.
 * - `--secret id=ca,...`: the machine reaches the npm registry through a TLS-inspecting proxy, so
 *   npm inside the build needs the machine's CA bundle (a secret mount, in no layer).
 * - `podman --runtime runc`: crun, podman's usual default, fails on the hybrid cgroups as above.
 * - `--ulimit nofile=H:H --ulimit nproc=H:H` with this process's hard limits: podman as root
 *   sets higher limits by default (nofile 1048576), which the sandbox cannot grant, and runc fails
 *   on setrlimit (podman run exits 126).
 * - CONTAINERS_CONF with `[engine] runtime = "runc"` and `[containers] default_ulimits`: the
 *   same two settings for containers podman starts on behalf of the Docker API (the Prefect
 *   worker passes no runtime and no ulimits), which otherwise fail with `runc create failed: ...
 *   error setting rlimit type 7`. `events_logger = "file"`: there is no journald here.
 *
 * The stand-in base: `debootstrap --variant=minbase bookworm` from the machine's Debian mirror,
 * plus the project's Node (node_modules/.bin/node, the `node` dev dependency), the machine's npm,
 * and the `node` user (uid 1000) the official image has, tagged as the Dockerfile's base
 * `node:<version>-bookworm-slim`. It is cached as a tar under .ci/.cache/image (git-ignored),
 * keyed by the Node version and the recipe's version, and imported into podman's storage once.
 *
 * Both test files that need the image (image.test.ts, prefect-worker.test.ts) call ensureImage();
 * a lock file makes the second one wait for the first one's build and then reuse it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, open, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const CACHE_DIR = join(REPO_ROOT, '.ci', '.cache', 'image');
/** What the tests run: built from the working tree's Dockerfile, never pushed anywhere. */
export const IMAGE = 'localhost/mta-ingest:test';
/** The image's user (the Dockerfile's USER): data volumes must be writable by it. */
export const CONTAINER_UID = 1000;
/** Bump when the base recipe below changes, so a cached base tar is not reused. */
const BASE_RECIPE = 1;
/** The CA bundle npm inside the build needs on this machine (see above); skipped when absent. */
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The Dockerfile's NODE_VERSION, which must be the project's Node (the `node` dev dependency). */
export function nodeVersion(): string {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const match = /^ARG NODE_VERSION=(\d+\.\d+\.\d+)$/m.exec(dockerfile);
  if (!match) throw new Error('Dockerfile: no ARG NODE_VERSION=x.y.z');
  return match[1]!;
}

export const baseImage = (): string => `localhost/node:${nodeVersion()}-bookworm-slim`;

/** This process's hard limit for a resource, from /proc/self/limits ("Max open files" ...). */
function hardLimit(name: string, fallback: number): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name));
  const hard = line?.slice(name.length).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? fallback : Number(hard);
}

/** nofile and nproc as podman must set them: the limits this sandbox has, soft = hard. */
export function ulimits(): { nofile: number; nproc: number } {
  return {
    nofile: hardLimit('Max open files', 20_000),
    nproc: Math.min(hardLimit('Max processes', 32_768), 32_768),
  };
}

/** The containers.conf for every podman and buildah call here (see the header). */
async function containersConf(): Promise<string> {
  const { nofile, nproc } = ulimits();
  const path = join(CACHE_DIR, 'containers.conf');
  const text = [
    '# Written by test/support/peers/podman.ts: the sandbox settings, see there for why.',
    '[containers]',
    `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`,
    '[engine]',
    'runtime = "runc"',
    'events_logger = "file"',
    '',
  ].join('\n');
  await mkdir(CACHE_DIR, { recursive: true });
  if (!existsSync(path) || (await readFile(path, 'utf8')) !== text) await writeFile(path, text);
  return path;
}

/** The environment for podman and buildah (and the Prefect worker's podman service). */
export async function podmanEnv(): Promise<NodeJS.ProcessEnv> {
  return { ...process.env, CONTAINERS_CONF: await containersConf() };
}

export interface Exec {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to its end, collecting its output; never throws on a non-zero exit. */
export function exec(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<Exec> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      // No stdin unless there is input: a child that exits without reading it would EPIPE us.
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
    if (child.stdin) {
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
  });
}

async function mustExec(command: string, args: string[], options: Parameters<typeof exec>[2] = {}) {
  const result = await exec(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited with ${result.code ?? result.signal}:\n${result.stderr.slice(-4000)}${result.stdout.slice(-2000)}`,
    );
  }
  return result;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Holds an exclusive lock file while fn runs; a lock whose holder has died is taken over. */
async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(CACHE_DIR, { recursive: true });
  const path = join(CACHE_DIR, `${name}.lock`);
  for (;;) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(await readFile(path, 'utf8').catch(() => ''));
      const alive = holder > 0 && isAlive(holder);
      if (!alive) await unlink(path).catch(() => {});
      else await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => {});
  }
}

/** The machine's Debian mirror, from its apt sources: the only place Debian packages come from. */
function debianMirror(): string {
  const candidates = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const deb822 = /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(text);
    const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+bookworm\s/m.exec(text);
    const found = deb822?.[1] ?? oneLine?.[1];
    if (found) return found;
  }
  throw new Error(`no Debian mirror found in ${candidates.join(' or ')}`);
}

export interface BaseResult {
  /** 'podman': already in podman's storage; 'cache': imported from the cached tar; 'debootstrap': made. */
  from: 'podman' | 'cache' | 'debootstrap';
  seconds: number;
}

/** The stand-in for node:<version>-bookworm-slim, made once and cached (see the header). */
export async function ensureBaseImage(): Promise<BaseResult> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const env = await podmanEnv();
  const tag = baseImage();
  if ((await exec('podman', ['image', 'exists', tag], { env })).code === 0) {
    return { from: 'podman', seconds: seconds() };
  }
  const version = nodeVersion();
  const tar = join(CACHE_DIR, `base-bookworm-node-${version}-r${BASE_RECIPE}.tar`);
  let from: BaseResult['from'] = 'cache';
  if (!existsSync(tar)) {
    from = 'debootstrap';
    await makeBaseTar(version, tar);
  }
  await mustExec(
    'podman',
    [
      'import',
      '--change',
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--change',
      'CMD ["node"]',
      tar,
      tag,
    ],
    { env, timeoutMs: 300_000 },
  );
  return { from, seconds: seconds() };
}

async function makeBaseTar(version: string, tar: string): Promise<void> {
  const node = join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node');
  const reported = (await mustExec(node, ['--version'])).stdout.trim();
  if (reported !== `v${version}`) {
    throw new Error(`the Dockerfile's NODE_VERSION is ${version} but node_modules' Node is ${reported}`);
  }
  const npm = (await mustExec('npm', ['root', '-g'])).stdout.trim();
  const work = await mkdtemp(join(CACHE_DIR, 'debootstrap-'));
  const root = join(work, 'root');
  try {
    await mustExec('debootstrap', ['--variant=minbase', 'bookworm', root, debianMirror()], {
      timeoutMs: 1_200_000,
    });
    // debootstrap mounts /proc (and more) in the target; here its exit handler may leave them.
    await unmountUnder(root);
    // What the official image adds: Node and npm under /usr/local, the `node` user (uid 1000).
    await mustExec('cp', [node, join(root, 'usr/local/bin/node')]);
    await mkdir(join(root, 'usr/local/lib/node_modules'), { recursive: true });
    await mustExec('cp', ['-a', join(npm, 'npm'), join(root, 'usr/local/lib/node_modules/npm')]);
    await mustExec('ln', ['-s', '../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm')]);
    await mustExec('ln', ['-s', '../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx')]);
    await mustExec('chroot', [root, 'groupadd', '--gid', '1000', 'node']);
    await mustExec('chroot', [
      root,
      'useradd',
      '--uid',
      '1000',
      '--gid',
      'node',
      '--shell',
      '/bin/bash',
      '-m',
      'node',
    ]);
    // The machine's mirror serves snapshots whose Release files may be past their Valid-Until.
    await writeFile(join(root, 'etc/apt/apt.conf.d/99stand-in'), 'Acquire::Check-Valid-Until "false";\n');
    // As slim as the official: no package lists, no downloaded packages.
    await mustExec('sh', ['-c', `rm -rf "${root}"/var/lib/apt/lists/* "${root}"/var/cache/apt/*`]);
    await mustExec('tar', ['-C', root, '--numeric-owner', '--one-file-system', '-cf', `${tar}.part`, '.'], {
      timeoutMs: 300_000,
    });
    await mustExec('mv', [`${tar}.part`, tar]);
  } finally {
    await unmountUnder(root);
    await rm(work, { recursive: true, force: true });
  }
}

/** Unmounts (lazily) every mount point below dir, deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) await exec('umount', ['-l', point]);
}

export interface BuildResult {
  base: BaseResult;
  /** buildah bud's wall time, in seconds. */
  buildSeconds: number;
  /** The image's size in bytes, as podman reports it. */
  sizeBytes: number;
  log: string;
}

let built: Promise<BuildResult> | undefined;

/**
 * The image from the Dockerfile, built once per test process (and, through the lock, once at a
 * time on the machine). MTA_INGEST_IMAGE_CONTEXT names another build context (e.g. a `git
 * archive` of a commit) instead of the working tree.
 */
export function ensureImage(): Promise<BuildResult> {
  built ??= withLock('build', async () => {
    const base = await ensureBaseImage();
    const env = await podmanEnv();
    const context = process.env.MTA_INGEST_IMAGE_CONTEXT ?? REPO_ROOT;
    const args = [
      'bud',
      '--isolation',
      'chroot',
      '--pull=never',
      '--layers',
      '--build-arg',
      `NODE_VERSION=${nodeVersion()}`,
      '-t',
      IMAGE,
      '-f',
      join(context, 'Dockerfile'),
    ];
    if (existsSync(CA_BUNDLE)) args.push('--secret', `id=ca,src=${CA_BUNDLE}`);
    const result = await exec('buildah', [...args, context], { env, timeoutMs: 1_500_000 });
    const log = `${result.stdout}\n${result.stderr}`;
    if (result.code !== 0)
      throw new Error(`buildah ${args.join(' ')} exited with ${result.code}:\n${log.slice(-6000)}`);
    return { base, buildSeconds: result.ms / 1000, sizeBytes: await imageSize(IMAGE), log };
  });
  return built;
}

export async function imageSize(image: string): Promise<number> {
  const result = await mustExec('podman', ['image', 'inspect', '--format', '{{.Size}}', image], {
    env: await podmanEnv(),
  });
  return Number(result.stdout.trim());
}

export interface RunOptions {
  /** Arguments after the image name (the CLI's command line); none runs the image's CMD. */
  args?: string[];
  env?: Record<string, string>;
  /** host path -> container path */
  volumes?: Record<string, string>;
  name?: string;
  image?: string;
  /** Replaces the image's entrypoint (to look inside the image). */
  entrypoint?: string;
}

/**
 * `podman run` as users run the image: non-root (the image's uid 1000, said again), read-only
 * root file system (podman puts tmpfs on /tmp), every capability dropped, no privilege gain,
 * the host's network (the test peers listen on 127.0.0.1), plus the sandbox's flags.
 */
export function runArgs(options: RunOptions): string[] {
  const { nofile, nproc } = ulimits();
  const args = [
    '--runtime',
    'runc',
    'run',
    '--rm',
    '--user',
    `${CONTAINER_UID}:${CONTAINER_UID}`,
    '--read-only',
    '--cap-drop=all',
    '--security-opt',
    'no-new-privileges',
    '--network',
    'host',
    '--ulimit',
    `nofile=${nofile}:${nofile}`,
    '--ulimit',
    `nproc=${nproc}:${nproc}`,
  ];
  if (options.name) args.push('--name', options.name);
  if (options.entrypoint) args.push('--entrypoint', options.entrypoint);
  for (const [host, container] of Object.entries(options.volumes ?? {}))
    args.push('-v', `${host}:${container}`);
  for (const [key, value] of Object.entries(options.env ?? {})) args.push('-e', `${key}=${value}`);
  return [...args, options.image ?? IMAGE, ...(options.args ?? [])];
}

export async function podmanRun(options: RunOptions & { timeoutMs?: number }): Promise<Exec> {
  return exec('podman', runArgs(options), {
    env: await podmanEnv(),
    timeoutMs: options.timeoutMs ?? 300_000,
  });
}

/** A container started in the background (stop it with podmanKill, or let it end). */
export interface Started {
  child: ChildProcess;
  output(): string;
  exited: Promise<Exec>;
}

export async function podmanStart(options: RunOptions & { name: string }): Promise<Started> {
  const started = performance.now();
  const child = spawn('podman', runArgs(options), {
    env: await podmanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<Exec>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started }),
    );
  });
  return { child, output: () => stdout + stderr, exited };
}

/** Waits until the named container is running (podman reports it), up to timeoutMs. */
export async function waitRunning(name: string, timeoutMs = 60_000): Promise<void> {
  const env = await podmanEnv();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const state = await exec('podman', ['inspect', '--format', '{{.State.Status}}', name], { env });
    if (state.code === 0 && state.stdout.trim() === 'running') return;
    await sleep(100);
  }
  throw new Error(`container ${name} was not running within ${timeoutMs} ms`);
}

/** Sends a signal to the container's PID 1, as `docker stop` (and a Prefect cancel) does first. */
export async function podmanKill(name: string, signal = 'TERM'): Promise<void> {
  await mustExec('podman', ['kill', '--signal', signal, name], { env: await podmanEnv() });
}

/** Removes a container by name if it is still there (after a failed test). */
export async function podmanRemove(name: string): Promise<void> {
  await exec('podman', ['rm', '--force', '--time', '0', name], { env: await podmanEnv() });
}

/** A fresh host folder the container's user can write, for a data volume. */
export async function dataVolume(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chown(dir, CONTAINER_UID, CONTAINER_UID);
  await chmod(dir, 0o755);
  return dir;
}

/** Removes a data volume folder (files the container made belong to uid 1000: we are root). */
export async function removeVolume(dir: string | undefined): Promise<void> {
  if (dir && (await stat(dir).catch(() => undefined))) await rm(dir, { recursive: true, force: true });
}

export interface PodmanService {
  /** DOCKER_HOST for a Docker client: unix:///.../podman.sock */
  readonly dockerHost: string;
  stop(): Promise<void>;
}

/**
 * `podman system service` on a unix socket of its own (no timeout: it serves until stopped), with
 * the sandbox's containers.conf, so containers a Docker client creates get runc and the ulimits.
 */
export async function startPodmanService(): Promise<PodmanService> {
  const dir = await mkdtemp(join(tmpdir(), 'podman-service-'));
  const socket = join(dir, 'podman.sock');
  const child = spawn('podman', ['system', 'service', '--time', '0', `unix://${socket}`], {
    env: await podmanEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (existsSync(socket)) {
      const ping = spawnSync('curl', ['-sf', '--unix-socket', socket, 'http://d/_ping'], {
        encoding: 'utf8',
      });
      if (ping.stdout === 'OK') break;
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`podman system service did not answer on ${socket}: ${stderr}`);
    }
    await sleep(100);
  }
  return {
    dockerHost: `unix://${socket}`,
    stop: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((resolve) => child.once('close', resolve));
        child.kill('SIGTERM');
        await Promise.race([gone, sleep(10_000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
