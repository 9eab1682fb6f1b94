"""The original Prefect flow's core loop, as a benchmark peer: pandas read_csv of the week in
5,000-row chunks, each chunk appended to one gzip CSV (a gzip member per chunk). It reads the
file over HTTP from the bench's loopback server, as the flow read the MTA's URL. It does not
type, check, deduplicate or load anything: the output is untyped csv.gz.

Usage: python pandas-loop.py <url> <output.csv.gz>
"""

import sys

import pandas as pd

url, output = sys.argv[1], sys.argv[2]
first = True
for chunk in pd.read_csv(url, chunksize=5000):
    chunk.to_csv(output, mode="w" if first else "a", header=first, index=False, compression="gzip")
    first = False
