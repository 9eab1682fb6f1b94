/**
 * The BigQuery stand-in's transpiler: test/support/peers/bigquery_sql.py (sqlglot, pinned, in the
 * venv .ci/install-test-servers makes) as one long-lived child process, JSON lines over
 * stdin/stdout (the script's docstring has the protocol). Started on the first request; it exits
 * when its stdin closes, so it cannot outlive the test process.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SqlError } from './bigquery-standin-results.ts';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const SQLGLOT_PYTHON = join(REPO_ROOT, '.ci/.cache/sqlglot-venv/bin/python');
const SCRIPT = fileURLToPath(new URL('./bigquery_sql.py', import.meta.url));

/** A base table a statement reads: the columns it references, the days it is pinned to (or null: all). */
export interface Read {
  table: string;
  columns: string[];
  days: [string, string][] | null;
}

export interface Transpiled {
  /** The statement in DuckDB's SQL, parameters bound. */
  sql: string;
  /** BigQuery's statementType: SELECT, INSERT, UPDATE, DELETE, MERGE, CREATE_VIEW, ... */
  statementType: string;
  reads: Read[];
}

export interface Transpiler {
  /** Rejects with a SqlError: 400 invalidQuery (syntax, parameters) or 404 notFound (a table). */
  transpile: (request: Record<string, unknown>) => Promise<Transpiled>;
  close: () => void;
}

export function createTranspiler(): Transpiler {
  let child: ChildProcessWithoutNullStreams | undefined;
  const waiting = new Map<number, (answer: Record<string, unknown>) => void>();
  let nextId = 1;

  function started(): ChildProcessWithoutNullStreams {
    if (child) return child;
    if (!existsSync(SQLGLOT_PYTHON))
      throw new Error(
        `sqlglot is not installed (looked for ${SQLGLOT_PYTHON}): run .ci/install-test-servers`,
      );
    const process = spawn(SQLGLOT_PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    process.stderr.on('data', (data: Buffer) =>
      globalThis.process.stderr.write(`bigquery_sql.py: ${data.toString()}`),
    );
    createInterface({ input: process.stdout }).on('line', (line) => {
      const answer = JSON.parse(line) as Record<string, unknown>;
      const id = Number(answer.id);
      waiting.get(id)?.(answer);
      waiting.delete(id);
    });
    // A transpiler that exits (killed by close, or crashed) fails what is waiting for it.
    process.on('exit', (code, signal) => {
      for (const answer of waiting.values())
        answer({ ok: false, kind: 'exit', message: `bigquery_sql.py exited (${String(signal ?? code)})` });
      waiting.clear();
      if (child === process) child = undefined;
    });
    child = process;
    return process;
  }

  return {
    transpile(request) {
      const process = started();
      const id = nextId++;
      return new Promise((resolve, reject) => {
        waiting.set(id, (answer) => {
          if (answer.ok) return resolve(answer as unknown as Transpiled);
          if (answer.kind === 'exit') return reject(new Error(String(answer.message)));
          const notFound = answer.kind === 'notFound';
          reject(
            new SqlError(
              notFound ? 404 : 400,
              notFound ? 'notFound' : 'invalidQuery',
              String(answer.message),
            ),
          );
        });
        process.stdin.write(`${JSON.stringify({ ...request, id })}\n`);
      });
    },
    close() {
      child?.stdin.end();
      child?.kill();
      child = undefined;
    },
  };
}
