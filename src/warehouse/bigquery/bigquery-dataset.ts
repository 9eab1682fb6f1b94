/**
 * The BigQuery dataset, its DAY-partitioned, clustered table, the load-state table and the
 * interval view, created from the schema module when missing; an existing table whose schema
 * differs is refused with the differences named, and REQUIRED fields left by an earlier version
 * are relaxed to NULLABLE (see bigquerySchema). Done once per warehouse session (a run: see
 * `capabilities.exclusivePerProcess`), before the first load. `findDataset` is the read-only
 * counterpart: where the dataset is, and whether it holds a load state at all.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import { WarehouseError, oneLine } from '../../errors.ts';
import {
  CLUSTER_COLUMNS,
  PARTITION_COLUMN,
  TABLE_NAME,
  bigquerySchema,
  bigquerySchemaDifferences,
  requiredFields,
} from '../../schema/turnstile-schema.ts';
import { LOADS_TABLE, LOADS_TABLE_OPTIONS, loadsTableSchema } from './bigquery-load-state.ts';
import { INTERVALS_VIEW, intervalsViewQuery } from '../intervals-view.ts';
import type { BigQueryTarget } from '../../backends/bigquery-uri.ts';
import { statusOf } from './bigquery-jobs.ts';

/** The parts of a table resource this backend reads. */
interface TableResource {
  schema?: { fields?: { name?: string; type?: string; mode?: string }[] };
  timePartitioning?: { type?: string; field?: string };
}

/** Creates or checks the dataset, table and view; returns the dataset's actual location. */
export async function ensureTable(client: BigQuery, target: BigQueryTarget): Promise<string> {
  const where = `${target.projectId}:${target.datasetId}`;
  try {
    const dataset = client.dataset(target.datasetId, { location: target.location });
    const [datasetExists] = await dataset.exists();
    if (!datasetExists) await dataset.create({ location: target.location }).catch(ignoreConflict);
    const [datasetMetadata] = (await dataset.getMetadata()) as [{ location?: string }, unknown];
    // As datasets.get reports it: the form every job call of this dataset is given.
    const location = String(datasetMetadata.location ?? target.location);
    const table = dataset.table(TABLE_NAME);
    const [tableExists] = await table.exists();
    if (!tableExists) {
      await table
        .create({
          schema: bigquerySchema(),
          timePartitioning: { type: 'DAY', field: PARTITION_COLUMN },
          clustering: { fields: [...CLUSTER_COLUMNS] },
          description: 'NYC MTA turnstile readings, one partition per weekly drop date (mta-ingest).',
        })
        .catch(ignoreConflict);
    } else {
      const [tableMetadata] = (await table.getMetadata()) as [TableResource, unknown];
      const differences = bigquerySchemaDifferences(tableMetadata.schema?.fields ?? []);
      if (tableMetadata.timePartitioning?.field !== PARTITION_COLUMN) {
        differences.push(`not partitioned on ${PARTITION_COLUMN}`);
      }
      if (differences.length > 0) {
        throw new WarehouseError(
          `the table ${where}.${TABLE_NAME} exists with another schema: ${differences.join('; ')}`,
        );
      }
      const required = new Set(requiredFields(tableMetadata.schema?.fields ?? []));
      // tables.patch may change a field from REQUIRED to NULLABLE ("Relaxing a column's mode",
      // BigQuery's "Modifying table schemas"); the full field list is sent, descriptions included.
      if (required.size > 0) await table.setMetadata({ schema: bigquerySchema() });
    }
    const loads = dataset.table(LOADS_TABLE);
    const [loadsExist] = await loads.exists();
    if (!loadsExist)
      await loads.create({ schema: loadsTableSchema(), ...LOADS_TABLE_OPTIONS }).catch(ignoreConflict);
    // After the table: BigQuery checks a view's query against the tables it reads.
    await ensureIntervalsView(client, target);
    return location;
  } catch (error) {
    if (error instanceof WarehouseError) throw error;
    throw new WarehouseError(`preparing BigQuery ${where}.${TABLE_NAME} failed: ${oneLine(error)}`, {
      cause: error,
    });
  }
}

/** What a read-only open needs to know of the dataset, without creating anything. */
export interface DatasetFound {
  /** Its location, as datasets.get reports it; undefined when the dataset does not exist. */
  location: string | undefined;
  /** Whether it holds the load-state table (a dataset made by this version, or prepared by a run). */
  hasLoadState: boolean;
}

/** datasets.get and tables.get: where the dataset is, and whether it has a load state. */
export async function findDataset(client: BigQuery, target: BigQueryTarget): Promise<DatasetFound> {
  const where = `${target.projectId}:${target.datasetId}`;
  try {
    const dataset = client.dataset(target.datasetId);
    const [metadata] = (await dataset.getMetadata()) as [{ location?: string }, unknown];
    const [hasLoadState] = await dataset.table(LOADS_TABLE).exists();
    return {
      location: metadata.location === undefined ? target.location : String(metadata.location),
      hasLoadState,
    };
  } catch (error) {
    if (statusOf(error) === 404) return { location: undefined, hasLoadState: false };
    throw new WarehouseError(`reading BigQuery dataset ${where} failed: ${oneLine(error)}`, { cause: error });
  }
}

/** The interval view (warehouse/intervals-view.ts), created or brought up to date. */
async function ensureIntervalsView(
  client: BigQuery,
  { projectId, datasetId }: BigQueryTarget,
): Promise<void> {
  const query = intervalsViewQuery('bigquery', `\`${projectId}.${datasetId}.${TABLE_NAME}\``);
  const view = client.dataset(datasetId).table(INTERVALS_VIEW);
  const [exists] = await view.exists();
  if (!exists) {
    await view.create({ view: { query, useLegacySql: false } }).catch(ignoreConflict);
    return;
  }
  const [metadata] = (await view.getMetadata()) as [{ view?: { query?: string } }, unknown];
  if (metadata.view?.query !== query) await view.setMetadata({ view: { query, useLegacySql: false } });
}

/** A create that lost a race with another creator is fine: the thing exists. */
function ignoreConflict(error: unknown): void {
  if (statusOf(error) !== 409) throw error;
}
