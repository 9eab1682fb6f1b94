/**
 * A fake Warehouse (src/warehouse/warehouse.ts) held in memory: a load record and the facts of
 * the rows per week, which tests set directly to play a warehouse that drifted behind the tool's
 * back (rows deleted, another version restored) or that cannot read its rows cheaply
 * (`answersFacts: false`, as BigQuery). `loadWeek` records the load and takes the week's facts
 * from the `factsFor` hook (by default: the promised rows, sums unknown to the fake as '0').
 */
import type { IsoDate } from '../../../src/dates/drop-dates.ts';
import type {
  LoadRecord,
  StationReport,
  Warehouse,
  WarehouseCapabilities,
  WeekFacts,
  LoadRequest,
} from '../../../src/warehouse/warehouse.ts';

export interface FakeWarehouseOptions {
  /** Whether `weekFacts` answers from the rows (DuckDB) or not at all (BigQuery): default true. */
  answersFacts?: boolean;
  loadsFrom?: WarehouseCapabilities['loadsFrom'];
}

export class FakeWarehouse implements Warehouse {
  readonly description = 'fake warehouse (in memory)';
  readonly capabilities: WarehouseCapabilities;
  /** The load record per week. */
  readonly loads = new Map<IsoDate, LoadRecord>();
  /** What the table's rows hold per week. */
  readonly facts = new Map<IsoDate, WeekFacts>();
  /** Every load asked for, in order. */
  readonly requests: LoadRequest[] = [];
  /** The `recorded` argument of each `loadedWeek` call. */
  /** The weeks `loadedWeek` was asked for, in order. */
  readonly lookups: IsoDate[] = [];
  /** The facts a load leaves in the table. */
  factsFor: (load: LoadRequest) => WeekFacts = (load) => ({
    rows: load.rows,
    entriesSum: '0',
    exitsSum: '0',
  });
  closed = false;
  private readonly answersFacts: boolean;
  private jobs = 0;

  constructor(options: FakeWarehouseOptions = {}) {
    this.answersFacts = options.answersFacts ?? true;
    // An embedded warehouse's (DuckDB's) capabilities, but for what the options change.
    this.capabilities = {
      loadsFrom: options.loadsFrom ?? 'local-file',
      lakeSchemes: 'any',
      loadState: 'same-transaction',
      exclusivePerProcess: true,
      listsWeeks: true,
      answersQueries: false,
      readsWeekFacts: this.answersFacts,
    };
  }

  loadedWeek(dropDate: IsoDate): Promise<LoadRecord | undefined> {
    this.lookups.push(dropDate);
    return Promise.resolve(this.loads.get(dropDate));
  }

  weekFacts(dropDate: IsoDate): Promise<WeekFacts | undefined> {
    return Promise.resolve(this.answersFacts ? this.facts.get(dropDate) : undefined);
  }

  listLoadedWeeks(): Promise<LoadRecord[]> {
    return Promise.resolve([...this.loads.values()].sort((a, b) => a.dropDate.localeCompare(b.dropDate)));
  }

  /** Not offered (`answersQueries` false): the fake holds no rows to query. */
  topStations(): Promise<StationReport> {
    return Promise.reject(new Error('the fake warehouse answers no queries'));
  }

  loadWeek(load: LoadRequest): Promise<LoadRecord> {
    this.requests.push(load);
    const loaded: LoadRecord = {
      dropDate: load.dropDate,
      sourceSha256: load.sourceSha256,
      rows: load.rows,
      loadedAt: new Date(Date.UTC(2023, 5, 5, 16, 0, this.jobs)).toISOString(),
      jobId: `fake-job-${++this.jobs}`,
    };
    this.loads.set(load.dropDate, loaded);
    this.facts.set(load.dropDate, this.factsFor(load));
    return Promise.resolve(loaded);
  }

  /** Plays a week loaded earlier: its record and the rows it left, as given. */
  hold(loaded: LoadRecord, facts?: WeekFacts): void {
    this.loads.set(loaded.dropDate, loaded);
    if (facts !== undefined) this.facts.set(loaded.dropDate, facts);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
