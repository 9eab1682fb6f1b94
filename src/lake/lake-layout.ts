/**
 * Where a week's objects live in the lake (see the README's "Lake layout"). Keys are built only
 * from validated drop dates, so no user-supplied text ever becomes part of an object name.
 */
import { fileNameFor, type IsoDate } from '../dates/drop-dates.ts';

const ROOT = 'turnstile';
export const MANIFEST_PREFIX = `${ROOT}/_manifests/`;

export interface WeekKeys {
  raw: string;
  parquet: string;
  rejects: string;
  manifest: string;
}

export function weekKeys(date: IsoDate): WeekKeys {
  const partition = `drop_date=${date}`;
  const stem = fileNameFor(date).replace(/\.txt$/, '');
  return {
    raw: `${ROOT}/raw/${partition}/${stem}.txt.gz`,
    parquet: `${ROOT}/parquet/${partition}/${stem}.parquet`,
    rejects: `${ROOT}/rejects/${partition}/${stem}.parquet`,
    manifest: `${MANIFEST_PREFIX}${partition}.json`,
  };
}

/** The drop date a manifest key names, or undefined for anything else under the prefix. */
export function dateOfManifestKey(key: string): IsoDate | undefined {
  const match = /^turnstile\/_manifests\/drop_date=(\d{4}-\d{2}-\d{2})\.json$/.exec(key);
  return match?.[1];
}
