/**
 * DuckDB cannot bind parameters inside COPY targets or table-function arguments, so those few
 * values are inlined. Only our own paths and validated dates reach here, and they are quoted.
 */
export function sqlString(value: string): string {
  if (value.includes('\0')) throw new Error('NUL byte in SQL string');
  return `'${value.replaceAll("'", "''")}'`;
}

/** An identifier we generate ourselves (table names); anything else is a programming error. */
export function sqlIdentifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a safe SQL identifier: ${name}`);
  return name;
}
