/**
 * One place decides what a week needs, from the stores themselves: the lake's manifest and the
 * presence and size of its objects, the warehouse's load record and the rows it actually holds
 * (count and counter sums). `run`, `plan`, `status` and `verify` all ask it.
 *
 * - `nothing`: the current version passed the gate, its objects are whole, and the warehouse
 *   holds exactly its rows: a run only asks the source whether it changed;
 * - `load from lake`: the lake is intact but the warehouse lacks the week or drifted from it
 *   (rows deleted behind the tool's back, another version restored): reload from the lake;
 * - `fetch`: no current version, objects missing or resized, a version the gate never passed,
 *   or `--force`: fetch, convert, gate, store, load.
 */
import type { IsoDate } from '../dates/drop-dates.ts';
import type { WeekStore } from '../lake/week-store.ts';
import type { Manifest } from '../manifest/manifest.ts';
import type { LoadRecord, Warehouse } from '../warehouse/warehouse.ts';
import type { WeekHistory } from '../quality/plausibility-gate.ts';

export type WeekNeed = 'nothing' | 'load from lake' | 'fetch';

export interface WeekAssessment {
  manifest: Manifest | undefined;
  /** The warehouse's record of the week's load. */
  loaded: LoadRecord | undefined;
  /** The current version passed the gate (or was accepted past it): its validators can be trusted. */
  trusted: boolean;
  /** What is wrong with the lake's objects for the current version. */
  lakeProblems: string[];
  /** How the warehouse differs from the current version (empty: it holds exactly it). */
  warehouseProblems: string[];
  need: WeekNeed;
}

export async function assessWeek(
  store: WeekStore,
  warehouse: Warehouse,
  date: IsoDate,
  force: boolean,
  /** Read the week's rows even where that is a billed query (`verify`), not only where cheap. */
  readRows = false,
): Promise<WeekAssessment> {
  const manifest = await store.readCurrent();
  const loaded = await warehouse.loadedWeek(date);
  if (manifest === undefined) {
    return { manifest, loaded, trusted: false, lakeProblems: [], warehouseProblems: [], need: 'fetch' };
  }
  const trusted = manifest.gate?.verdict === 'passed' || manifest.gate?.verdict === 'accepted';
  const lakeProblems = await store.checkObjects(manifest);
  const warehouseProblems = await warehouseDrift(warehouse, date, manifest, loaded, readRows);
  const need: WeekNeed =
    force || lakeProblems.length > 0 || !trusted
      ? 'fetch'
      : warehouseProblems.length === 0
        ? 'nothing'
        : 'load from lake';
  return { manifest, loaded, trusted, lakeProblems, warehouseProblems, need };
}

/** How the warehouse's week differs from the manifest's version; empty when it holds exactly it. */
export async function warehouseDrift(
  warehouse: Warehouse,
  date: IsoDate,
  manifest: Manifest,
  loaded: LoadRecord | undefined,
  readRows = false,
): Promise<string[]> {
  if (loaded === undefined) return ['the warehouse has no load of this week'];
  if (loaded.sourceSha256 !== manifest.source.sha256) {
    return [
      `the warehouse holds source ${loaded.sourceSha256.slice(0, 12)}, the lake ${manifest.source.sha256.slice(0, 12)}`,
    ];
  }
  if (loaded.rows !== manifest.rows)
    return [`the warehouse's load has ${loaded.rows} rows, the manifest ${manifest.rows}`];
  const figures = manifest.gate?.figures;
  // A record that kept the sums its rows had (BigQuery's) is checked against them as it is.
  if (figures !== undefined && loaded.entriesSum !== undefined) {
    if (loaded.entriesSum !== figures.entriesSum || loaded.exitsSum !== figures.exitsSum) {
      return [
        "the warehouse's load record has other counter sums than the manifest (another version of the week)",
      ];
    }
  }
  // A warehouse that cannot read its rows cheaply (BigQuery) is trusted on its load record,
  // except by verify.
  if (!warehouse.capabilities.readsWeekFacts && !readRows) return [];
  const facts = await warehouse.weekFacts(date);
  if (facts === undefined) return [];
  const problems: string[] = [];
  if (facts.rows !== manifest.rows)
    problems.push(`the warehouse holds ${facts.rows} rows, the manifest ${manifest.rows}`);
  if (figures !== undefined && facts.rows === manifest.rows) {
    if (facts.entriesSum !== figures.entriesSum || facts.exitsSum !== figures.exitsSum) {
      problems.push(
        'the warehouse rows hold other counter sums than the manifest (another version of the week)',
      );
    }
  }
  return problems;
}

/** How many earlier weeks the gate compares a week with, when it has no trusted version of its own. */
const RECENT_WEEKS = 4;

/**
 * The figures of the weeks before `date` that the lake holds as loaded and gate-passed (at
 * most four, looking back up to eight weeks), most recent first.
 */
export async function recentWeeks(
  readManifest: (date: IsoDate) => Promise<Manifest | undefined>,
  date: IsoDate,
): Promise<WeekHistory['recent']> {
  const recent: WeekHistory['recent'] = [];
  for (let back = 1; back <= 2 * RECENT_WEEKS && recent.length < RECENT_WEEKS; back += 1) {
    const earlier = new Date(Date.parse(`${date}T00:00:00Z`) - back * 7 * 86_400_000)
      .toISOString()
      .slice(0, 10);
    const manifest = await readManifest(earlier).catch(() => undefined);
    if (manifest?.load === undefined || manifest.gate?.verdict !== 'passed') continue;
    recent.push({ dropDate: earlier, rows: manifest.rows, turnstiles: manifest.gate.figures.turnstiles });
  }
  return recent;
}
