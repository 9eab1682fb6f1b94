"""dlt as a benchmark peer: its filesystem source reads the week's local file with
read_csv_duckdb (DuckDB's CSV reader, 5,000-row chunks), the pipeline normalises it into Parquet
loader files and loads them into a DuckDB database file. Its own schema inference, no quality
figures, no raw archive, no lake layout. Telemetry off; state in a throwaway folder.

Usage: python dlt-load.py <input.csv> <database.duckdb> <pipelines_dir>
"""

import os
import sys

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402
from dlt.sources.filesystem import filesystem, read_csv_duckdb  # noqa: E402

source_file, database, pipelines_dir = sys.argv[1], sys.argv[2], sys.argv[3]
files = filesystem(
    bucket_url="file://" + os.path.dirname(os.path.abspath(source_file)),
    file_glob=os.path.basename(source_file),
)
pipeline = dlt.pipeline(
    pipeline_name="mta_bench",
    destination=dlt.destinations.duckdb(database),
    dataset_name="mta",
    pipelines_dir=pipelines_dir,
)
info = pipeline.run((files | read_csv_duckdb()).with_name("turnstile"), loader_file_format="parquet")
info.raise_on_failed_jobs()
