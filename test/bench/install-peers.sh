#!/usr/bin/env bash
# Installs the benchmark's peers, outside the project's dependencies (run by `npm run bench`):
#   a virtualenv at .ci/.cache/bench-venv with pinned pandas (the original flow's loop) and dlt
#   (with duckdb<2: dlt's DuckDB reader needs it), and a throwaway npm folder at
#   .ci/.cache/bench/npm with pinned csv-parse and parquetjs-lite (`npm install --no-save
#   --prefix`, never into package.json). Needs python3 with venv, and npm.
# Idempotent: what is there at the pinned versions is kept.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.ci/.cache/bench-venv"
npm_dir="$root/.ci/.cache/bench/npm"
PANDAS_VERSION="3.1.1"
DLT_VERSION="1.31.0"
DUCKDB_PY_VERSION="1.5.6"
PYARROW_VERSION="26.0.1"
CSV_PARSE_VERSION="7.0.3"
PARQUETJS_LITE_VERSION="0.8.7"

venv_ok() {
  [ -x "$venv/bin/python" ] || return 1
  local versions
  versions="$("$venv/bin/python" -c 'import pandas, dlt, duckdb, pyarrow; print(pandas.__version__, dlt.__version__, duckdb.__version__, pyarrow.__version__)' 2>/dev/null)" || return 1
  [ "$versions" = "$PANDAS_VERSION $DLT_VERSION $DUCKDB_PY_VERSION $PYARROW_VERSION" ]
}

if venv_ok; then
  echo "bench venv: pandas $PANDAS_VERSION, dlt $DLT_VERSION, duckdb $DUCKDB_PY_VERSION already in $venv"
else
  echo "bench venv: installing pandas $PANDAS_VERSION, dlt $DLT_VERSION, duckdb $DUCKDB_PY_VERSION into $venv ($(python3 --version))"
  if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    python3 -m venv --clear "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "pandas==$PANDAS_VERSION" "dlt[duckdb,parquet]==$DLT_VERSION" "duckdb==$DUCKDB_PY_VERSION" "pyarrow==$PYARROW_VERSION"
  venv_ok || { echo "install-peers: $venv does not import the pinned versions" >&2; exit 1; }
fi

npm_ok() {
  local name version
  for pair in "csv-parse@$CSV_PARSE_VERSION" "parquetjs-lite@$PARQUETJS_LITE_VERSION"; do
    name="${pair%@*}"
    version="${pair##*@}"
    [ -f "$npm_dir/node_modules/$name/package.json" ] || return 1
    grep -q "\"version\": \"$version\"" "$npm_dir/node_modules/$name/package.json" || return 1
  done
}

if npm_ok; then
  echo "bench npm: csv-parse $CSV_PARSE_VERSION, parquetjs-lite $PARQUETJS_LITE_VERSION already in $npm_dir"
else
  echo "bench npm: installing csv-parse $CSV_PARSE_VERSION, parquetjs-lite $PARQUETJS_LITE_VERSION into $npm_dir"
  mkdir -p "$npm_dir"
  # The folder's own package.json keeps npm from walking up to the project's.
  [ -f "$npm_dir/package.json" ] || printf '{ "private": true, "type": "module" }\n' >"$npm_dir/package.json"
  npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$npm_dir" \
    "csv-parse@$CSV_PARSE_VERSION" "parquetjs-lite@$PARQUETJS_LITE_VERSION" >/dev/null
  npm_ok || { echo "install-peers: $npm_dir lacks the pinned packages" >&2; exit 1; }
fi
cp "$root/test/bench/peers/csv-parquet.js" "$npm_dir/csv-parquet.js"
