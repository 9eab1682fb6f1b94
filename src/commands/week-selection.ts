/**
 * Which weeks a run (and the plan of the same run) takes, once the selection resolved
 * (dates/selection.ts): with no date selection, a catch-up (dates/catch-up.ts) from the
 * warehouse's load state and the MTA's index page; with `--missing`, only the selected weeks the
 * warehouse does not hold, which are then not even fetched. `run` and `plan` both ask here, so
 * a plan shows the dates the run would take.
 *
 * "Loaded" is the warehouse's load state: every week at once where it lists them
 * (`capabilities.listsWeeks`), else asked week by week. Returns notes for the caller to log or
 * print: it logs and prints nothing itself.
 */
import type { BackendOverrides } from '../backends.ts';
import type { Config } from '../config.ts';
import { catchUp, catchUpWindow } from '../dates/catch-up.ts';
import { latestDropDate, todayInNewYork, type IsoDate } from '../dates/drop-dates.ts';
import { shareOf, type TaskShare } from '../dates/shard.ts';
import { selectsNothing } from '../dates/selection.ts';
import type { DropDateSelection } from '../dates/drop-dates.ts';
import { UsageError } from '../errors.ts';
import { readSourceIndex } from '../fetch/source-index.ts';
import type { Warehouse } from '../warehouse/warehouse.ts';
import { withReadOnlyBackends } from './read-only-backends.ts';

/** A line about the selection: why weeks were added, left out, or cut off. */
export interface SelectionNote {
  level: 'info' | 'warn';
  event: 'catch-up' | 'catch-up.cut-off' | 'catch-up.unlisted' | 'source-index' | 'missing';
  message: string;
}

export interface WeekSelection {
  /** The weeks to take, ascending. */
  dates: IsoDate[];
  notes: SelectionNote[];
}

/** What `run` and `plan` both take: their options are passed through as they are. */
export interface SelectWeeksOptions {
  /** The selection as given: none at all means catch up (unless one task of a fan-out). */
  selection: DropDateSelection;
  /** The selection's drop dates (resolveSelection), before any share is taken. */
  resolved: IsoDate[];
  /** `--missing`: leave out the weeks the warehouse holds. */
  missing?: boolean | undefined;
  config: Config;
  now: Date;
  share?: TaskShare | undefined;
  overrides?: BackendOverrides | undefined;
  signal?: AbortSignal | undefined;
}

/** `--missing` skips loaded weeks, `--force` reloads them: together they mean nothing. */
export function refuseMissingWithForce(missing: boolean | undefined, force: boolean): void {
  if (missing === true && force) {
    throw new UsageError(
      '--missing cannot be combined with --force: --missing skips the loaded weeks, --force reloads them',
    );
  }
}

export async function selectWeeks(options: SelectWeeksOptions): Promise<WeekSelection> {
  const { config, now, share } = options;
  const missing = options.missing === true;
  // A fan-out's tasks start at different moments, while the others load weeks: a catch-up
  // computed by each would differ between them, and weeks would change hands or be lost. Its
  // tasks take their share of the plain selection (a backfill's), never a catch-up. A job of one
  // task (Cloud Run's weekly job says task 0 of 1) catches up like any run.
  const catchingUp = selectsNothing(options.selection) && (share === undefined || share.count === 1);
  const shared = share ? shareOf(options.resolved, share) : options.resolved;
  if (!catchingUp && !missing) return { dates: shared, notes: [] };

  return withReadOnlyBackends(
    config,
    async (_lake, warehouse) => {
      const notes: SelectionNote[] = [];
      let dates = shared;
      let loaded: ReadonlySet<IsoDate>;
      if (catchingUp) {
        const index = await readSourceIndex(config.sourceUrl, config.fetch.timeoutMs, options.signal);
        if (index.problem !== undefined) {
          notes.push({
            level: 'warn',
            event: 'source-index',
            message: `the index page ${index.url} could not be used (${index.problem}): taking Saturdays as drop dates and asking for each file`,
          });
        }
        const today = todayInNewYork(now);
        const base = {
          latest: latestDropDate(now),
          today,
          weeks: config.catchUpWeeks,
          published: index.dates,
        };
        const known = await loadedWeeks(warehouse, catchUpWindow(base));
        loaded = known.loaded;
        const result = catchUp({ ...base, loaded, complete: known.complete });
        dates = result.dates;
        notes.push(...catchUpNotes(result, config.catchUpWeeks, config.tool ?? 'mta-ingest'));
      } else {
        loaded = (await loadedWeeks(warehouse, shared)).loaded;
      }
      if (missing) {
        const held = dates.filter((date) => loaded.has(date));
        dates = dates.filter((date) => !loaded.has(date));
        if (held.length > 0) {
          notes.push({
            level: 'info',
            event: 'missing',
            message: `--missing: ${held.length} selected week${held.length === 1 ? ' is' : 's are'} loaded already and not fetched; ${dates.length} to load`,
          });
        }
      }
      return { dates, notes };
    },
    options.overrides,
    options.signal,
  );
}

/** The weeks the warehouse holds: all of them where it lists them, else those of `dates`. */
async function loadedWeeks(
  warehouse: Warehouse,
  dates: readonly IsoDate[],
): Promise<{ loaded: Set<IsoDate>; complete: boolean }> {
  if (warehouse.capabilities.listsWeeks) {
    const records = await warehouse.listLoadedWeeks();
    return { loaded: new Set(records.map((record) => record.dropDate)), complete: true };
  }
  const loaded = new Set<IsoDate>();
  for (const date of dates) if ((await warehouse.loadedWeek(date)) !== undefined) loaded.add(date);
  return { loaded, complete: false };
}

function catchUpNotes(
  result: ReturnType<typeof catchUp>,
  bound: number,
  /** How the user types the tool (Config.tool). */
  tool: string,
): SelectionNote[] {
  const notes: SelectionNote[] = [];
  const earlier = result.dates.filter((date) => date !== result.latest);
  if (earlier.length > 0) {
    notes.push({
      level: 'info',
      event: 'catch-up',
      message: `catch-up: ${earlier.length} missing earlier week${earlier.length === 1 ? '' : 's'} (${earlier.join(', ')}) before the latest, ${result.latest}`,
    });
  }
  if (result.unlisted.length > 0) {
    notes.push({
      level: 'info',
      event: 'catch-up.unlisted',
      message: `catch-up: ${result.unlisted.join(', ')} not listed on the index page: not published yet, not asked for`,
    });
  }
  const cut = result.cutOff;
  if (cut !== undefined) {
    const span = cut.first === cut.last ? cut.first : `from ${cut.first} to ${cut.last}`;
    notes.push({
      level: 'warn',
      event: 'catch-up.cut-off',
      message: `catch-up: ${cut.weeks} missing week${cut.weeks === 1 ? '' : 's'} ${span} ${cut.weeks === 1 ? 'is' : 'are'} older than the last ${bound} drop dates (--catch-up-weeks): load ${cut.weeks === 1 ? 'it' : 'them'} with ${tool} run --from ${cut.first} --to ${cut.last} --missing`,
    });
  }
  return notes;
}
