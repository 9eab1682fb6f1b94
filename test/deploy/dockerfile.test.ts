/**
 * The Dockerfile and .dockerignore: base images, non-root user, the entrypoint existing in the
 * package, and an allow-list build context. Parsed as what runs them reads them (see
 * test/support/harnesses/deploy-files.ts for the readers).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, read, dockerfile } from '../support/harnesses/deploy-files.ts';

/**
 * Whether Docker leaves `path` (relative to the context) out of the build context: the last
 * .dockerignore pattern that matches the path or one of its parent folders decides, `!` keeps.
 * `*` and `?` stay within a path segment, `**` spans any number of them.
 */
function dockerIgnored(patterns: string[], path: string): boolean {
  const parts = path.split('/');
  let ignored = false;
  for (const line of patterns) {
    const keep = line.startsWith('!');
    const pattern = (keep ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
    const source = pattern
      .split(/(\*\*\/?|\*|\?)/)
      .map((token) => {
        if (token === '**/') return '(?:.*/)?';
        if (token === '**') return '.*';
        if (token === '*') return '[^/]*';
        if (token === '?') return '[^/]';
        return token.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      })
      .join('');
    const regex = new RegExp(`^${source}$`);
    if (parts.some((_, i) => regex.test(parts.slice(0, i + 1).join('/')))) ignored = !keep;
  }
  return ignored;
}

describe('Dockerfile', () => {
  const docker = dockerfile();
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; files: string[] };
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version?: string }> };

  it('builds on slim Debian (glibc) Node, pinned to the Node the tests run on', () => {
    const nodeVersion = docker.argDefaults.NODE_VERSION;
    // The `node` dev dependency gives dev machines and tests their Node; the image runs the same.
    expect(nodeVersion).toBe(lock.packages['node_modules/node']?.version);
    expect(nodeVersion).toMatch(/^24\.\d+\.\d+$/);
    expect(docker.from.length).toBeGreaterThanOrEqual(3); // multi-stage
    for (const from of docker.from) {
      expect(from).toMatch(
        /^(--platform=\$BUILDPLATFORM )?(node:\$\{NODE_VERSION\}-bookworm-slim|base) AS \w+$/,
      );
    }
    expect(docker.from.at(-1)).toBe('base AS runtime');
  });

  it('installs production dependencies only, from the lock file; dev ones only to build the package', () => {
    expect(docker.copies).toContain('package.json package-lock.json ./');
    // The deps stage: production dependencies, which alone reach the image.
    expect(docker.runs.some((run) => /(^|&& )npm ci --omit=dev --ignore-scripts\b/.test(run))).toBe(true);
    expect(docker.copies.filter((c) => c.includes('node_modules'))).toEqual([
      '--from=deps /app/node_modules /app/node_modules',
    ]);
    // The package stage: every dependency (TypeScript builds dist/), without their install scripts,
    // then `npm pack` with the package's own scripts (prepare builds dist/).
    expect(docker.runs.some((run) => /(^|&& )npm ci --ignore-scripts\b/.test(run))).toBe(true);
    expect(docker.runs.some((run) => /^npm pack\b/.test(run) && !run.includes('--ignore-scripts'))).toBe(
      true,
    );
    expect(docker.runs.join('\n')).not.toMatch(/npm (install|i)\b/);
  });

  it('takes the build-time CA only as a secret mount, never as an argument or environment', () => {
    const installs = docker.runs.filter((r) => /\bnpm ci\b/.test(r));
    expect(installs).toHaveLength(2);
    for (const run of installs) expect(run).toMatch(/^--mount=type=secret,id=ca /);
    expect(docker.args.join(' ')).not.toMatch(/CA|CERT/i);
    expect(docker.env.join(' ')).not.toMatch(/CA_CERTS|SSL_CERT/);
  });

  it('runs as a non-root user, tini then the CLI as entrypoint and the weekly `run` as default command', () => {
    expect(docker.user).toBe('1000:1000');
    expect(docker.entrypoint).toEqual(['tini', '--', 'node', '/app/dist/cli.js']);
    expect(docker.runs.some((run) => /apt-get install -y --no-install-recommends tini=/.test(run))).toBe(
      true,
    );
    expect(docker.cmd).toEqual(['run']);
    expect(docker.workdir).toBe('/work');
    // The entrypoint's script is the package's bin, inside the package (copied to /app), built
    // from its source by `npm pack` in the image build.
    const script = docker.entrypoint[3]?.replace(/^\/app\//, '');
    expect(script).toBe(pkg.bin['mta-ingest']);
    expect(pkg.files.some((entry) => script?.startsWith(entry))).toBe(true);
    const source = script?.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts');
    expect(existsSync(join(ROOT, source ?? ''))).toBe(true);
  });

  it('sets NODE_ENV=production, the compile cache, and never METADATA_SERVER_DETECTION or any setting', () => {
    expect(docker.env).toEqual(['NODE_ENV=production', 'NODE_COMPILE_CACHE=/app/.compile-cache']);
    expect(read('Dockerfile')).not.toMatch(/^\s*ENV\s+.*METADATA_SERVER_DETECTION/m);
  });

  it('carries the OCI labels, version and revision from build arguments', () => {
    for (const label of ['title', 'description', 'licenses', 'source', 'created']) {
      expect(docker.labels).toContain(`org.opencontainers.image.${label}=`);
    }
    expect(docker.labels).toContain('org.opencontainers.image.version="${VERSION}"');
    expect(docker.labels).toContain('org.opencontainers.image.revision="${REVISION}"');
    expect(docker.args).toEqual(expect.arrayContaining(['VERSION', 'REVISION']));
  });

  it('.dockerignore is an allow-list: the package and lock file in, secrets and everything else out', () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    expect(patterns[0]).toBe('*');
    const ignored = (path: string): boolean => dockerIgnored(patterns, path);
    // What the Dockerfile copies from the context, and what `npm pack` (COPY . .) reads and
    // builds dist/ from (the sources, the tsconfig files, scripts/).
    const kept = ['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'tsconfig.build.json'];
    for (const dir of ['src', 'scripts']) {
      kept.push(dir);
      for (const file of readdirSync(join(ROOT, dir), { recursive: true }))
        kept.push(`${dir}/${String(file)}`);
    }
    for (const copy of docker.copies.filter((c) => !c.startsWith('--from'))) {
      kept.push(
        ...copy
          .split(/\s+/)
          .slice(0, -1)
          .filter((source) => source !== '.'),
      );
    }
    // dist/ is built inside the image build, from the sources: a host's dist/ stays out.
    for (const entry of pkg.files.filter((f) => f !== 'dist/')) {
      const dir = entry.replace(/\/$/, '');
      kept.push(dir);
      for (const file of readdirSync(join(ROOT, dir), { recursive: true }))
        kept.push(`${dir}/${String(file)}`);
    }
    expect(kept.length).toBeGreaterThan(20);
    for (const path of kept) expect(ignored(path), `${path} is left out of the build context`).toBe(false);
    const leaked = [
      'key.json',
      '.env',
      '.env.production',
      '.npmrc',
      'gha-creds-0123456789abcdef.json',
      'secrets/key.json',
      'node_modules/@duckdb/node-bindings-linux-x64/duckdb.node',
      'data/warehouse.duckdb',
      '.git/config',
      '.github/workflows/ci.yml',
      '.ci/.cache/bin/fake-gcs-server',
      'coverage/index.html',
      'test/deploy/dockerfile.test.ts',
      'terraform/main.tf',
      'deployments/kubernetes/backfill/backfill-job.yaml',
      'deployments/cron/README.md',
      'Dockerfile',
      'mta-ingest-0.1.0.tgz',
      'src/node_modules/x/index.js',
      'src/.env',
      'blocks/.npmrc',
      'npm-debug.log',
      'dist/cli.js',
    ];
    for (const path of leaked) expect(ignored(path), `${path} reaches the build context`).toBe(true);
    // Everything at the top of this checkout but the allowed names stays out.
    const allowed = new Set([
      'package.json',
      'package-lock.json',
      'README.md',
      'tsconfig.json',
      'tsconfig.build.json',
      'scripts',
      'src',
      'blocks',
      'deployments',
    ]);
    for (const name of readdirSync(ROOT)) {
      if (!allowed.has(name)) expect(ignored(name), `${name} reaches the build context`).toBe(true);
    }
  });

  it('.gitignore keeps the auth action’s credential files out of git', () => {
    expect(read('.gitignore').split('\n')).toContain('gha-creds-*.json');
  });
});
