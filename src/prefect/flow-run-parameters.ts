/**
 * A Prefect flow run's parameters as a run's selection: `year`, `month`, `day` select drop dates
 * the way `--year/--month/--day` do, and `force` is `--force`. The deployments' parameter schemas
 * (deployments/prefect/) say the same, and Prefect enforces them when a run is created, but a run
 * can be created without enforcement, so they are checked again here: a bad parameter is a usage
 * error, which fails the flow run with the reason.
 */
import type { DropDateSelection } from '../dates/drop-dates.ts';
import { UsageError } from '../errors.ts';

export const FLOW_RUN_PARAMETERS = ['year', 'month', 'day', 'force'] as const;

export interface RunChoice {
  selection: DropDateSelection;
  force: boolean;
}

/** The flow run's parameters over the command line's: they may not both select dates. */
export function choiceFromParameters(parameters: Record<string, unknown>, flags: RunChoice): RunChoice {
  const selection: DropDateSelection = {};
  let force: boolean | undefined;
  for (const [key, value] of Object.entries(parameters)) {
    // Prefect's UI sends null for an optional parameter left empty.
    if (value === null || value === undefined) continue;
    if (key === 'force') {
      if (typeof value !== 'boolean')
        throw new UsageError(`flow run parameter force ${show(value)} is not true or false`);
      force = value;
    } else if (key === 'year' || key === 'month' || key === 'day') {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        throw new UsageError(`flow run parameter ${key} ${show(value)} is not a whole number`);
      }
      selection[key] = String(value);
    } else {
      throw new UsageError(
        `flow run parameter ${key} is not one of ${FLOW_RUN_PARAMETERS.join(', ')} (give year [month [day]], and force)`,
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
    force: force ?? flags.force,
  };
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}
