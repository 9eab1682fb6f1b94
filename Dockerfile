# syntax=docker/dockerfile:1
#
# mta-ingest as a container: the entrypoint is the CLI, and the default command `run` is the
# weekly job (the latest drop date). Anything after the image name replaces `run`:
#
#   docker run --rm IMAGE                                   # the weekly job
#   docker run --rm IMAGE run --year 2023 --month 6         # a backfill
#   docker run --rm IMAGE demo --dir /work/demo             # offline demo, no credentials
#
# The image holds exactly the npm package (package.json "files", through `npm pack`, which runs
# the `prepack` build: the package ships JavaScript in dist/, since Node does not strip types
# under node_modules) and its production dependencies, so test/package.test.ts, which packs and
# installs the package, tests what this image runs; test/image.test.ts builds this file and runs
# the image.
#
# Build arguments: NODE_VERSION (keep it the version of the `node` dev dependency, which tests
# run on), VERSION, REVISION, CREATED and SOURCE (OCI labels; the release workflow sets them).
#
# An optional build-time CA, for a build machine whose network passes through a TLS-inspecting
# proxy: `--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt`. npm in the build stages adds it
# to Node's CAs (NODE_EXTRA_CA_CERTS); it is a secret mount, so it is in no layer and never in
# the final image. Without it the build uses Node's own CAs, as usual.

ARG NODE_VERSION=24.21.0

# Debian bookworm, slim: DuckDB's prebuilt native binary (@duckdb/node-bindings-linux-*) links
# against glibc, so no Alpine (musl). Pinned to the exact Node release.
FROM node:${NODE_VERSION}-bookworm-slim AS base

# Production dependencies from the lock file, on the target platform: npm picks DuckDB's
# binary for the platform it runs on (linux-x64 or linux-arm64, glibc). A layer of its own, so a
# code change does not reinstall them. --omit=dev also leaves out the `node` dev dependency,
# which only gives dev machines Node 24 (the image has its own); --ignore-scripts because no
# production dependency has an install script, and none should run at build time.
FROM base AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca \
  if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi \
  && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

# The files the package ships, chosen by package.json "files" as `npm pack` chooses them, with
# dist/ built by its `prepack` script (tsc), which needs the dev dependencies (TypeScript): they
# are installed here only, never in the image. --ignore-scripts on the install keeps dependencies'
# install scripts from running (the `node` dev dependency's would fetch a Node binary); `npm
# pack` still runs the package's own prepack. The result is the same on every platform, so this
# stage runs on the build machine's (no emulation).
FROM --platform=$BUILDPLATFORM node:${NODE_VERSION}-bookworm-slim AS package
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=ca \
  if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi \
  && npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm pack --pack-destination /tmp \
  && mkdir /app \
  && tar -xzf /tmp/mta-ingest-*.tgz -C /app --strip-components=1 --no-same-owner

FROM base AS runtime
ARG NODE_VERSION
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="mta-ingest" \
  org.opencontainers.image.description="Lands the NYC MTA weekly subway turnstile files in a data lake (local or GCS) and a warehouse (DuckDB or BigQuery)." \
  org.opencontainers.image.licenses="MIT" \
  org.opencontainers.image.version="${VERSION}" \
  org.opencontainers.image.revision="${REVISION}" \
  org.opencontainers.image.created="${CREATED}" \
  org.opencontainers.image.source="${SOURCE}" \
  org.opencontainers.image.base.name="node:${NODE_VERSION}-bookworm-slim"

# NODE_ENV for the libraries that read it (and NODE_COMPILE_CACHE, below). Nothing else is set
# here on purpose: settings (MTA_INGEST_LAKE, ...) come from the deployment, and an image-level
# value would silently win over a block's. METADATA_SERVER_DETECTION must stay unset: on Cloud
# Run and GKE the credentials come from the metadata server.
ENV NODE_ENV=production

# tini, Debian's, as PID 1: it forwards SIGTERM and SIGINT to Node and reaps, so every command
# stops on a signal (one without a handler of its own dies of it and the container exits 143, 130
# for SIGINT; `run` stops cleanly and exits with the same codes); Node as PID 1 would ignore a
# signal it has no handler for. npm, npx, corepack and yarn are not needed to run the worker:
# fewer binaries, fewer findings for image scanners.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini=0.19.0-* \
  && rm -rf /var/lib/apt/lists/* \
  && rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
  /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*

# Code and dependencies belong to root and are read-only to the worker's user.
COPY --from=deps /app/node_modules /app/node_modules
COPY --from=package /app /app

# V8's compile cache, filled here and read at run time (docs/performance.md, "Start-up"). A
# container starts with an empty /tmp, so without a cache in the image every command compiled the
# CLI anew and wrote a cache that the container then threw away. Measured with podman, 15
# interleaved rounds: the demo 1.36 s -> 1.26 s, `plan` of one week 0.334 s -> 0.319 s,
# `--version` unchanged; the image is 10 MB larger. Filled by the demo (the pipeline, DuckDB and
# the embedded backends, offline), then by importing every module of dist/ and the cloud SDKs
# (what a GCS lake or a BigQuery warehouse loads; node-fetch is what their HTTP client loads at
# its first request). Node keys the cache by user, so it is filled as the worker's uid 1000:
# another uid finds none and compiles as usual. The files stay root's. A module the cache lacks
# is compiled as usual: the read-only image refuses the write, and Node runs on.
# test/image.test.ts fails if `--version`, the weekly job or a GCS + BigQuery run compiles any
# module.
ENV NODE_COMPILE_CACHE=/app/.compile-cache
RUN install -d -o 1000 -g 1000 /app/.compile-cache /tmp/warm
USER 1000:1000
WORKDIR /app
RUN node dist/cli.js --help > /dev/null \
  && node dist/cli.js demo --dir /tmp/warm > /dev/null \
  && node --input-type=module -e " \
    import { readdirSync } from 'node:fs'; \
    for (const file of readdirSync('dist', { recursive: true })) \
      if (file.endsWith('.js') && file !== 'cli.js') await import('./dist/' + file); \
    for (const name of ['@google-cloud/storage', '@google-cloud/bigquery', 'node-fetch']) \
      await import(name).catch(() => undefined);"
USER 0:0
RUN rm -rf /tmp/warm && chown -R root:root /app/.compile-cache && chmod -R a+rX,go-w /app/.compile-cache

# The working directory is the one writable place: the default lake and warehouse
# (./data/lake, ./data/warehouse.duckdb) land here (mount a volume on /work/data to keep them),
# and blocks/<name>.json here are found before the package's. Spools go to the OS temp folder
# (/tmp), or MTA_INGEST_WORK_DIR.
RUN mkdir -p /work/data && chown -R 1000:1000 /work
WORKDIR /work

# The base image's unprivileged `node` user, by number: Kubernetes' runAsNonRoot can only
# verify a numeric user.
USER 1000:1000

# The package's JavaScript (dist/, built by `npm pack` above), under tini (see above).
ENTRYPOINT ["tini", "--", "node", "/app/dist/cli.js"]
CMD ["run"]
