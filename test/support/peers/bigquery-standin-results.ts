/**
 * Query results in BigQuery's REST form, for the stand-in (bigquery-standin.ts): schema field types
 * as BigQuery reports them, inferred from DuckDB's result types, and cell values as strings
 * (`{f:[{v}]}` rows), with TIMESTAMP kept as microseconds until the answer picks its format.
 */
import type { DuckDBType, DuckDBValue } from '@duckdb/node-api';

export interface RestField {
  name: string;
  type: string;
  mode: 'NULLABLE' | 'REPEATED';
}

/** A cell: a string, null, or a REPEATED field's list of cells. */
export type Cell = string | null | { v: Cell }[];
export type RestRow = { f: { v: Cell }[] };

/** An error with BigQuery's HTTP code and reason, answered as BigQuery's error body. */
export class SqlError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

const INTEGERS = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT)$/;

/** The BigQuery type name of a DuckDB type (as DuckDB prints it), for a result schema. */
export function bigQueryType(duckdb: string): string {
  if (INTEGERS.test(duckdb)) return 'INTEGER';
  if (duckdb === 'DOUBLE' || duckdb === 'FLOAT') return 'FLOAT';
  if (duckdb.startsWith('DECIMAL')) return 'NUMERIC';
  if (duckdb === 'BOOLEAN') return 'BOOLEAN';
  if (duckdb === 'DATE') return 'DATE';
  if (duckdb === 'TIME') return 'TIME';
  if (duckdb === 'TIMESTAMP WITH TIME ZONE') return 'TIMESTAMP';
  if (duckdb.startsWith('TIMESTAMP')) return 'DATETIME';
  if (duckdb === 'BLOB') return 'BYTES';
  return 'STRING';
}

/** The result schema's fields, from DuckDB's column names and types. */
export function restFields(names: string[], types: DuckDBType[]): RestField[] {
  return names.map((name, i) => {
    const printed = String(types[i]);
    const repeated = printed.endsWith('[]');
    return {
      name,
      type: bigQueryType(repeated ? printed.slice(0, -2) : printed),
      mode: repeated ? 'REPEATED' : 'NULLABLE',
    };
  });
}

const pad = (n: bigint | number, width: number): string => String(n).padStart(width, '0');

/** Microseconds since the epoch → YYYY-MM-DDTHH:MM:SS[.ffffff] (no zone), as BigQuery writes DATETIME. */
export function datetimeText(micros: bigint): string {
  const seconds = micros >= 0n ? micros / 1_000_000n : -((-micros + 999_999n) / 1_000_000n);
  const fraction = micros - seconds * 1_000_000n;
  const text = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  return fraction === 0n ? text : `${text}.${pad(fraction, 6)}`;
}

/** A double as Java's Double.toString writes it (BigQuery's FLOAT and float-seconds TIMESTAMP text). */
export function javaDouble(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(x);
  if (abs >= 1e-3 && abs < 1e7) {
    const text = String(x);
    return text.includes('.') || text.includes('e') ? text : `${text}.0`;
  }
  const [mantissa = '', exponent = ''] = x.toExponential().split('e');
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}E${exponent.replace('+', '')}`;
}

/** One DuckDB value as a REST cell of the given BigQuery type (TIMESTAMP as microseconds). */
export function cell(value: DuckDBValue, field: RestField): Cell {
  if (value === null || value === undefined) return null;
  if (field.mode === 'REPEATED') {
    const items = (value as { items?: DuckDBValue[] }).items ?? [];
    return items.map((item) => ({ v: cell(item, { ...field, mode: 'NULLABLE' }) }));
  }
  switch (field.type) {
    case 'FLOAT':
      return javaDouble(Number(value));
    case 'NUMERIC': {
      const text = String(value);
      return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
    }
    case 'DATETIME':
      return datetimeText((value as { micros: bigint }).micros);
    case 'TIMESTAMP':
      return String((value as { micros: bigint }).micros);
    case 'BYTES':
      return Buffer.from((value as { bytes: Uint8Array }).bytes).toString('base64');
    default:
      return String(value);
  }
}

/** Rows as answered: TIMESTAMP cells as microseconds (useInt64Timestamp) or Java-style float seconds. */
export function answerRows(rows: RestRow[], fields: RestField[], useInt64Timestamp: boolean): RestRow[] {
  const stamps = fields.map((f) => f.type === 'TIMESTAMP');
  if (useInt64Timestamp || !stamps.includes(true)) return rows;
  const seconds = (c: Cell): Cell =>
    c === null ? null : Array.isArray(c) ? c.map((x) => ({ v: seconds(x.v) })) : javaDouble(Number(c) / 1e6);
  return rows.map((row) => ({ f: row.f.map((c, i) => (stamps[i] ? { v: seconds(c.v) } : c)) }));
}
