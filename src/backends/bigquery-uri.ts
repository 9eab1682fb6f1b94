/**
 * `bigquery://PROJECT/DATASET[?location=LOC]` parsed, without loading the BigQuery SDK (the
 * backend registry parses URIs before any backend is opened).
 */
import { UsageError } from '../errors.ts';

export interface BigQueryTarget {
  projectId: string;
  datasetId: string;
  /** Where a missing dataset is created (default US); an existing dataset keeps its own. */
  location: string;
}

/**
 * A location in the form BigQuery names it: the multi-regions upper case (US, EU), the regions
 * lower case (us-central1, asia-northeast1), as its locations page lists them and datasets.get
 * reports them. Only the URI's location is normalised; a dataset's own is used as reported.
 */
export function canonicalLocation(location: string): string {
  return /^(us|eu)$/i.test(location) ? location.toUpperCase() : location.toLowerCase();
}

/** `name`: where the URI came from (a flag, a variable, a block), for the message. */
export function parseBigQueryUri(uri: string, name = '--warehouse'): BigQueryTarget {
  const match =
    /^bigquery:\/\/((?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9])\/([A-Za-z0-9_]{1,1024})(?:\?location=([A-Za-z0-9-]{2,40}))?$/.exec(
      uri,
    );
  if (!match?.[1] || !match[2]) {
    throw new UsageError(`${name} ${uri}: expected bigquery://PROJECT/DATASET[?location=LOCATION]`);
  }
  return { projectId: match[1], datasetId: match[2], location: canonicalLocation(match[3] ?? 'US') };
}

/**
 * A table of the target's dataset as GoogleSQL names it: `` `project.dataset.table` ``. Safe to
 * put in SQL: parseBigQueryUri's pattern admits no backtick, quote or space in the project or
 * dataset, and the table names are the worker's constants.
 */
export function tableRef({ projectId, datasetId }: BigQueryTarget, table: string): string {
  return `\`${projectId}.${datasetId}.${table}\``;
}
