/**
 * Whether a BigQuery dataset can load from a Cloud Storage bucket, by their locations. From
 * BigQuery's "Loading data from Cloud Storage" rules: a dataset in the US multi-region loads
 * from a bucket anywhere; otherwise the bucket must be in the dataset's region, or inside the
 * dataset's multi-region (EU: the European Union regions and dual-regions).
 */

const EU_MEMBERS = new Set([
  'EU',
  'EUR4',
  'EUR5',
  'EUR7',
  'EUR8',
  'EUROPE-CENTRAL2',
  'EUROPE-NORTH1',
  'EUROPE-NORTH2',
  'EUROPE-SOUTHWEST1',
  'EUROPE-WEST1',
  'EUROPE-WEST3',
  'EUROPE-WEST4',
  'EUROPE-WEST8',
  'EUROPE-WEST9',
  'EUROPE-WEST10',
  'EUROPE-WEST12',
]);

export function canLoadFrom(datasetLocation: string, bucketLocation: string): boolean {
  const dataset = datasetLocation.toUpperCase();
  const bucket = bucketLocation.toUpperCase();
  if (dataset === 'US' || dataset === bucket) return true;
  if (dataset === 'EU') return EU_MEMBERS.has(bucket);
  return false;
}
