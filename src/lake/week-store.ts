/**
 * One place owns a week's objects in the lake: it reads the week's manifest (with its
 * generation), keeps every version, commits one as current under a precondition, records
 * suspect versions and loads, checks the objects against the manifest, and restores an old
 * version. In the spirit of dlt's load packages: the states live here and nowhere else.
 *
 * Versions: every fetched version of a week is written, whole, to a folder of its own,
 * `turnstile/_versions/drop_date=D/<sha256[:16]>/` (its raw file, Parquet, rejects and a
 * `version.json` record, the version's own manifest), before anything else happens to it. The
 * week's usual keys (`turnstile/raw/…`, `turnstile/parquet/…`, the layout readers glob) hold
 * the current version only, and are replaced only after the version they held is kept in its
 * folder, so no version is ever lost; the leading underscore keeps Hive-style readers of
 * `turnstile/` from counting old versions twice. A suspect version stays in its folder only.
 */
import { join } from 'node:path';
import { fileNameFor, type IsoDate } from '../dates/drop-dates.ts';
import { LakeError, oneLine } from '../errors.ts';
import type { Logger } from '../log.ts';
import {
  MANIFEST_VERSION,
  parseManifest,
  serializeManifest,
  type Manifest,
  type ManifestObject,
  type VersionEntry,
} from '../manifest/manifest.ts';
import { digestFile } from '../util/digest.ts';
import type { LoadRecord } from '../warehouse/warehouse.ts';
import type { Lake } from './lake.ts';
import { weekKeys, type WeekKeys } from './lake-layout.ts';

export const VERSIONS_PREFIX = 'turnstile/_versions/';

type ObjectName = 'raw' | 'parquet' | 'rejects';

/** Local files of one version, as the fetch and convert stages left them. */
export interface VersionFiles {
  raw: string;
  parquet: string;
  rejects?: string | undefined;
}

/** Attempts at a manifest write when another run's write got in between. */
const WRITE_ATTEMPTS = 3;

const CONTENT_TYPES: Record<ObjectName, string> = {
  raw: 'application/gzip',
  parquet: 'application/vnd.apache.parquet',
  rejects: 'application/vnd.apache.parquet',
};

export function versionPrefixOf(date: IsoDate, sha256: string): string {
  return `${VERSIONS_PREFIX}drop_date=${date}/${sha256.slice(0, 16)}/`;
}

export class WeekStore {
  readonly keys: WeekKeys;
  /** The manifest's generation as this run last read or wrote it ('0': there was none). */
  private generation = '0';

  readonly date: IsoDate;
  private readonly lake: Lake;
  private readonly log: Logger;
  /** A scratch folder of this week's, for copies of objects. */
  private readonly scratch: string;

  constructor(lake: Lake, date: IsoDate, log: Logger, scratch: string) {
    this.lake = lake;
    this.date = date;
    this.log = log;
    this.scratch = scratch;
    this.keys = weekKeys(date);
  }

  uriOf(key: string): string {
    return this.lake.uriOf(key);
  }

  /** The week's manifest (the current version), remembering its generation for later writes. */
  async readCurrent(): Promise<Manifest | undefined> {
    const read = await this.lake.getTextWithGeneration(this.keys.manifest);
    this.generation = read?.generation ?? '0';
    return read === undefined ? undefined : parseManifest(read.text, this.uriOf(this.keys.manifest));
  }

  /** The keys a version's objects have in its own folder. */
  versionKeys(sha256: string): Record<ObjectName | 'record', string> {
    const prefix = versionPrefixOf(this.date, sha256);
    const stem = fileNameFor(this.date).replace(/\.txt$/, '');
    return {
      raw: `${prefix}${stem}.txt.gz`,
      parquet: `${prefix}${stem}.parquet`,
      rejects: `${prefix}${stem}.rejects.parquet`,
      record: `${prefix}version.json`,
    };
  }

  /**
   * Writes a version's objects and record into its own folder. The same source converts to the
   * same bytes, so writing a version that is already there rewrites identical objects.
   */
  async putVersion(
    draft: Omit<Manifest, 'objects' | 'versionPrefix'>,
    files: VersionFiles,
    onBytes?: (bytes: number) => void,
  ): Promise<Manifest> {
    const keys = this.versionKeys(draft.source.sha256);
    let written = 0;
    const put = async (name: ObjectName, path: string): Promise<ManifestObject> => {
      const digest = await digestFile(path);
      const stored = await this.lake.putFile(keys[name], path, CONTENT_TYPES[name]);
      written += digest.bytes;
      onBytes?.(written);
      this.log.info({ event: 'store.object', object: name, key: keys[name], bytes: digest.bytes }, 'stored');
      return { ...stored, ...digest };
    };
    const version: Manifest = {
      ...draft,
      manifestVersion: MANIFEST_VERSION,
      objects: {
        raw: await put('raw', files.raw),
        parquet: await put('parquet', files.parquet),
        rejects: files.rejects === undefined ? undefined : await put('rejects', files.rejects),
      },
      versionPrefix: versionPrefixOf(this.date, draft.source.sha256),
    };
    try {
      await this.lake.putText(keys.record, serializeManifest(version), 'application/json');
    } catch (error) {
      // Another run of the week kept this same version meanwhile: its record differs only in
      // the run's own fields (run id, times), its objects are these bytes. The version is kept.
      const kept = await this.lake.getText(keys.record).catch(() => undefined);
      if (
        kept === undefined ||
        parseManifest(kept, this.uriOf(keys.record)).source.sha256 !== draft.source.sha256
      ) {
        throw error;
      }
      this.log.info(
        { event: 'store.version-kept', key: keys.record },
        'another run kept this version meanwhile',
      );
    }
    return version;
  }

  /** Every version the lake keeps of this week (their records), oldest first. */
  async versions(): Promise<Manifest[]> {
    const records = (await this.lake.list(`${VERSIONS_PREFIX}drop_date=${this.date}/`)).filter((key) =>
      key.endsWith('/version.json'),
    );
    const versions: Manifest[] = [];
    for (const key of records) {
      const text = await this.lake.getText(key);
      if (text !== undefined) versions.push(parseManifest(text, this.uriOf(key)));
    }
    return versions.sort((a, b) => a.writtenAt.localeCompare(b.writtenAt));
  }

  /**
   * Makes a stored version current: the version the week's keys hold now is kept in its folder
   * first (manifests written before versions had none), then the week's keys get this
   * version's objects, then the manifest is written under the generation read before.
   */
  async commitCurrent(
    version: Manifest,
    files: VersionFiles,
    before: Manifest | undefined,
    onBytes?: (bytes: number) => void,
  ): Promise<Manifest> {
    if (before !== undefined && before.source.sha256 !== version.source.sha256) await this.keep(before);
    let written = 0;
    const put = async (name: ObjectName, path: string, from: ManifestObject): Promise<ManifestObject> => {
      const stored = await this.lake.putFile(this.keys[name], path, CONTENT_TYPES[name]);
      written += from.bytes;
      onBytes?.(written);
      return { ...stored, bytes: from.bytes, sha256: from.sha256 };
    };
    const objects: Manifest['objects'] = {
      raw: await put('raw', files.raw, version.objects.raw),
      parquet: await put('parquet', files.parquet, version.objects.parquet),
      rejects:
        files.rejects === undefined || version.objects.rejects === undefined
          ? undefined
          : await put('rejects', files.rejects, version.objects.rejects),
    };
    const current: Manifest = {
      ...version,
      objects,
      history: withEntry(historyOf(before), entryOf(version, 'current')),
    };
    try {
      await this.writeManifest(current);
    } catch (error) {
      // Another run of the same week committed meanwhile. If it committed this same source
      // version (the same bytes: the engine keeps row order), its manifest is adopted and the
      // load goes on (one load: the job id is the same); anything else is this week's failure.
      const committed = await this.readCurrent().catch(() => undefined);
      if (committed?.source.sha256 !== version.source.sha256 || committed.runId === version.runId)
        throw error;
      this.log.info(
        { event: 'store.adopted', adoptedRunId: committed.runId, error: oneLine(error) },
        'another run stored this source version meanwhile; loading from its manifest',
      );
      return committed;
    }
    if (objects.rejects === undefined) await this.lake.delete(this.keys.rejects);
    this.log.info({ event: 'store.manifest', key: this.keys.manifest }, 'manifest written');
    return current;
  }

  /**
   * Records a suspect version in the week's history (when the week has a current version; if
   * not, the version's own record in its folder is the only trace, and the week stays
   * uncommitted).
   */
  async recordSuspect(version: Manifest, before: Manifest | undefined, reasons: string[]): Promise<void> {
    if (before === undefined) return;
    const entry = { ...entryOf(version, 'suspect'), reasons };
    await this.writeManifest({ ...before, history: withEntry(historyOf(before), entry) });
  }

  /**
   * Rewrites the manifest with the load's record. Another run may have written it since this
   * one read it: when that names another source version, it is not overwritten (that run
   * records its own load); when it names this version, the write is made again on it.
   */
  async recordLoad(manifest: Manifest, loaded: LoadRecord, warehouse: string): Promise<Manifest> {
    const recorded: Manifest = {
      ...manifest,
      load: { warehouse, jobId: loaded.jobId, rows: loaded.rows, loadedAt: loaded.loadedAt },
    };
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.writeManifest(recorded);
        this.log.info(
          { event: 'record.done', key: this.keys.manifest, jobId: loaded.jobId },
          'load recorded',
        );
        return recorded;
      } catch (error) {
        const current = await this.readCurrent();
        if (current && current.source.sha256 !== manifest.source.sha256) {
          this.log.warn(
            { event: 'record.superseded', sha256: current.source.sha256 },
            'another run stored a newer source version of this week meanwhile; its run records its own load',
          );
          return recorded;
        }
        if (attempt >= WRITE_ATTEMPTS) throw error;
        this.log.warn(
          { event: 'record.retry', attempt, error: oneLine(error) },
          'the manifest changed while it was written; writing it again',
        );
      }
    }
  }

  /** What is wrong with the objects a manifest names: missing, or of another size. */
  async checkObjects(manifest: Manifest): Promise<string[]> {
    const problems: string[] = [];
    for (const name of ['raw', 'parquet', 'rejects'] as const) {
      const object = manifest.objects[name];
      if (object === undefined) continue;
      const size = await this.lake.sizeOf(object.key);
      if (size === undefined) problems.push(`${name} object ${object.uri} is missing`);
      else if (size !== object.bytes) {
        problems.push(`${name} object ${object.uri} has ${size} bytes, the manifest ${object.bytes}`);
      }
    }
    return problems;
  }

  /** Copies a kept version's objects to local files in the scratch folder (for restore). */
  async fetchVersion(version: Manifest): Promise<VersionFiles> {
    const local = (name: ObjectName): string => join(this.scratch, `restore-${name}`);
    const get = async (name: ObjectName): Promise<string | undefined> => {
      const object = version.objects[name];
      if (object === undefined) return undefined;
      await this.lake.getFile(object.key, local(name));
      const digest = await digestFile(local(name));
      if (digest.sha256 !== object.sha256) {
        throw new LakeError(`${object.uri} does not match its version record (sha256 differs)`);
      }
      return local(name);
    };
    const raw = await get('raw');
    const parquet = await get('parquet');
    if (raw === undefined || parquet === undefined)
      throw new LakeError('the version record names no objects');
    return { raw, parquet, rejects: await get('rejects') };
  }

  /** Keeps the version the week's keys hold in its own folder, if it is not there yet. */
  private async keep(before: Manifest): Promise<void> {
    const keys = this.versionKeys(before.source.sha256);
    if ((await this.lake.sizeOf(keys.record)) !== undefined) return;
    const files = await this.fetchVersion(before);
    await this.putVersion(before, files);
    this.log.info({ event: 'store.kept', sha256: before.source.sha256 }, 'kept the previous version');
  }

  private async writeManifest(manifest: Manifest): Promise<void> {
    const stored = await this.lake.putText(
      this.keys.manifest,
      serializeManifest(manifest),
      'application/json',
      {
        ifGeneration: this.generation,
      },
    );
    this.generation =
      stored.generation ?? (await this.lake.getTextWithGeneration(this.keys.manifest))?.generation ?? '0';
  }
}

function entryOf(version: Manifest, outcome: VersionEntry['outcome']): VersionEntry {
  return {
    sha256: version.source.sha256,
    bytes: version.source.bytes,
    rows: version.rows,
    rejects: version.rejects,
    fetchedAt: version.writtenAt,
    outcome,
    prefix: version.versionPrefix ?? versionPrefixOf(version.dropDate, version.source.sha256),
  };
}

/** A manifest's history; for one written before versions, the manifest itself as its one entry. */
function historyOf(manifest: Manifest | undefined): VersionEntry[] {
  if (manifest === undefined) return [];
  return manifest.history ?? [entryOf(manifest, 'current')];
}

/**
 * The history with `entry` in it: an earlier entry of the same source is replaced, and when
 * the new entry is current, the one current before becomes superseded.
 */
function withEntry(history: VersionEntry[], entry: VersionEntry): VersionEntry[] {
  return [
    ...history
      .filter((e) => e.sha256 !== entry.sha256)
      .map((e) =>
        entry.outcome === 'current' && e.outcome === 'current' ? { ...e, outcome: 'superseded' as const } : e,
      ),
    entry,
  ];
}
