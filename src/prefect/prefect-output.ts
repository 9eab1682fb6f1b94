/**
 * How `blocks apply` and `deploy prefect` look in a terminal: one aligned line per record the
 * server holds. Pure functions of the commands' results; `cli.ts` does the printing.
 */
import type { AppliedDocument } from './prefect-blocks.ts';
import type { DeployResult } from './prefect-deploy.ts';

export function formatAppliedBlocks(applied: readonly AppliedDocument[]): string {
  const width = Math.max(0, ...applied.map((a) => a.reference.length));
  return applied.map((a) => `${a.reference.padEnd(width)}  ${a.action.padEnd(9)}  ${a.id}`).join('\n');
}

export function formatDeployResult(result: DeployResult): string {
  const rows: [string, string, string, string][] = [
    ['flow', result.flow.name, result.flow.action, result.flow.id],
    ['work pool', result.workPool.name, result.workPool.action, `(${result.workPool.type})`],
    ...result.deployments.map((d): [string, string, string, string] => [
      'deployment',
      `${result.flow.name}/${d.name}`,
      d.action,
      d.id,
    ]),
  ];
  const width = Math.max(...rows.map((r) => r[1].length));
  const lines = rows.map(
    ([kind, name, action, id]) => `${kind.padEnd(10)}  ${name.padEnd(width)}  ${action.padEnd(7)}  ${id}`,
  );
  lines.push(
    `Runs start when a docker worker polls the pool: prefect worker start --pool ${result.workPool.name}`,
  );
  return lines.join('\n');
}
