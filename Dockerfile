# syntax=docker/dockerfile:1
#
# mta-ingest as a container: the entrypoint is the CLI, and the default command `run` is the
# weekly job (the latest drop date). Anything after the image name replaces `run`:
#
#   docker run --rm IMAGE                                   # the weekly job
#   docker run --rm IMAGE run --year 2023 --month 6         # a backfill
#   docker run --rm IMAGE demo --dir /work/demo             # offline demo, no credentials
#
# The image holds exactly the npm package (package.json "files", through `npm pack`) and its
# production dependencies, so test/package.test.ts, which packs, installs with
# `npm ci --omit=dev` and runs `node src/cli.ts`, tests what this image runs.
#
# Build arguments: NODE_VERSION (keep it the version of the `node` dev dependency, which tests
# run on), VERSION, REVISION, CREATED and SOURCE (OCI labels; the release workflow sets them).

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
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

# The files the package ships, chosen by package.json "files" as `npm pack` chooses them. The
# result is the same on every platform, so this stage runs on the build machine's (no emulation).
FROM --platform=$BUILDPLATFORM node:${NODE_VERSION}-bookworm-slim AS package
WORKDIR /src
COPY . .
RUN npm pack --ignore-scripts --pack-destination /tmp \
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

# NODE_ENV for the libraries that read it. Nothing else is set here on purpose: settings
# (MTA_INGEST_LAKE, ...) come from the deployment, and an image-level value would silently win
# over a block's. METADATA_SERVER_DETECTION must stay unset: on Cloud Run and GKE the
# credentials come from the metadata server.
ENV NODE_ENV=production

# npm, npx, corepack and yarn are not needed to run the worker: fewer binaries, fewer findings
# for image scanners.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
  /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*

# Code and dependencies belong to root and are read-only to the worker's user.
COPY --from=deps /app/node_modules /app/node_modules
COPY --from=package /app /app

# The working directory is the one writable place: the default lake and warehouse
# (./data/lake, ./data/warehouse.duckdb) land here (mount a volume on /work/data to keep them),
# and blocks/<name>.json here are found before the package's. Spools go to the OS temp folder
# (/tmp), or MTA_INGEST_WORK_DIR.
RUN mkdir -p /work/data && chown -R 1000:1000 /work
WORKDIR /work

# The base image's unprivileged `node` user, by number: Kubernetes' runAsNonRoot can only
# verify a numeric user.
USER 1000:1000

# Node runs the TypeScript sources directly (type stripping); there is no build step. `run`
# handles SIGTERM itself (the run is interrupted and exits 1), so Node can be PID 1; the worker
# starts no child processes, so there are no zombies to reap.
ENTRYPOINT ["node", "/app/src/cli.ts"]
CMD ["run"]
