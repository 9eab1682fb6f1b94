/**
 * A Prefect flow run's parameters as a run's selection: `year`, `month`, `day`, `date`, `from`,
 * `to` and `week_of` select drop dates the way `--year/--month/--day/--date/--from/--to/--week-of`
 * do, `missing` is `--missing` and `force` is `--force`. The deployments' parameter schemas
 * (deployments/prefect/) say the same, and Prefect enforces them when a run is created, but a run
 * can be created without enforcement, so they are checked again here: a bad parameter is a usage
 * error, which fails the flow run with the reason.
 */
import type { DropDateSelection } from '../dates/drop-dates.ts';
import { UsageError } from '../errors.ts';

export const FLOW_RUN_PARAMETERS = [
  'year',
  'month',
  'day',
  'date',
  'from',
  'to',
  'week_of',
  'missing',
  'force',
] as const;

/** Whole-number parameters and date (YYYY-MM-DD text) parameters, as the selection names them. */
const NUMBERS = { year: 'year', month: 'month', day: 'day' } as const;
const DATES = { date: 'date', from: 'from', to: 'to', week_of: 'weekOf' } as const;
const FLAGS = ['missing', 'force'] as const;

export interface RunChoice {
  selection: DropDateSelection;
  force: boolean;
  missing?: boolean | undefined;
}

/** The flow run's parameters over the command line's: they may not both select dates. */
export function choiceFromParameters(parameters: Record<string, unknown>, flags: RunChoice): RunChoice {
  const selection: DropDateSelection = {};
  const given: { force?: boolean; missing?: boolean } = {};
  for (const [key, value] of Object.entries(parameters)) {
    // Prefect's UI sends null for an optional parameter left empty.
    if (value === null || value === undefined) continue;
    if ((FLAGS as readonly string[]).includes(key)) {
      if (typeof value !== 'boolean')
        throw new UsageError(`flow run parameter ${key} ${show(value)} is not true or false`);
      given[key as (typeof FLAGS)[number]] = value;
    } else if (key in NUMBERS) {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        throw new UsageError(`flow run parameter ${key} ${show(value)} is not a whole number`);
      }
      selection[NUMBERS[key as keyof typeof NUMBERS]] = String(value);
    } else if (key in DATES) {
      // The date itself is checked where the command line's is (drop-dates.ts, week-of.ts).
      if (typeof value !== 'string') {
        throw new UsageError(`flow run parameter ${key} ${show(value)} is not a date (YYYY-MM-DD)`);
      }
      selection[DATES[key as keyof typeof DATES]] = value;
    } else {
      throw new UsageError(
        `flow run parameter ${key} is not one of ${FLOW_RUN_PARAMETERS.join(', ')} (give year [month [day]], date, from [to], or week_of; and missing, force)`,
      );
    }
  }
  const fromParameters = Object.keys(selection).length > 0;
  const fromFlags = Object.values(flags.selection).some((v) => v !== undefined);
  if (fromParameters && fromFlags) {
    throw new UsageError(
      'the flow run parameters and the command line both select drop dates: give them in one place',
    );
  }
  return {
    selection: fromParameters ? selection : flags.selection,
    force: given.force ?? flags.force,
    missing: given.missing ?? flags.missing,
  };
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}
