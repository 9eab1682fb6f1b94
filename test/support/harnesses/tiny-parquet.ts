/**
 * A minimal Parquet writer for tests that need a column DuckDB will not write: DuckDB (1.5.6)
 * writes every column OPTIONAL, so a REQUIRED column (what pyarrow writes for a non-nullable
 * field) has to be written by hand. One row group, one uncompressed PLAIN data page (v1) per
 * column, no NULLs; the footer is Thrift compact protocol, per the format's parquet.thrift
 * (https://github.com/apache/parquet-format). DuckDB reads the result back, which the tests check.
 */

export type TinyParquetType = 'BOOLEAN' | 'INT32' | 'INT64' | 'DOUBLE' | 'BYTE_ARRAY';

export interface TinyParquetColumn {
  name: string;
  type: TinyParquetType;
  repetition: 'REQUIRED' | 'OPTIONAL';
  /** The legacy ConvertedType, by name (UTF8, DATE, INT_64, TIMESTAMP_MICROS), if any. */
  converted?: 'UTF8' | 'DATE' | 'INT_64' | 'TIMESTAMP_MICROS';
  /** One value per row, none null: numbers (INT32: days since the epoch for DATE), bigints (INT64), strings, booleans. */
  values: (number | bigint | string | boolean)[];
}

const PHYSICAL: Record<TinyParquetType, number> = {
  BOOLEAN: 0,
  INT32: 1,
  INT64: 2,
  DOUBLE: 5,
  BYTE_ARRAY: 6,
};
const CONVERTED = { UTF8: 0, DATE: 6, TIMESTAMP_MICROS: 10, INT_64: 18 } as const;
const REPETITION = { REQUIRED: 0, OPTIONAL: 1 } as const;

// Thrift compact protocol: field types.
const I32 = 5;
const I64 = 6;
const BINARY = 8;
const LIST = 9;
const STRUCT = 12;

type Field =
  | [id: number, kind: 'i32', value: number]
  | [id: number, kind: 'i64', value: number | bigint]
  | [id: number, kind: 'bin', value: string]
  | [id: number, kind: 'struct', value: Field[]]
  | [id: number, kind: 'i32s', value: number[]]
  | [id: number, kind: 'bins', value: string[]]
  | [id: number, kind: 'structs', value: Field[][]];

function varint(value: bigint): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

const zigzag = (value: number | bigint): number[] => {
  const v = BigInt(value);
  return varint(v >= 0n ? v << 1n : (-v << 1n) - 1n);
};

const binary = (text: string): number[] => {
  const bytes = [...Buffer.from(text, 'utf8')];
  return [...varint(BigInt(bytes.length)), ...bytes];
};

const listHeader = (size: number, type: number): number[] =>
  size < 15 ? [(size << 4) | type] : [0xf0 | type, ...varint(BigInt(size))];

function struct(fields: Field[]): number[] {
  const out: number[] = [];
  let last = 0;
  for (const [id, kind, value] of fields) {
    const type = { i32: I32, i64: I64, bin: BINARY, struct: STRUCT, i32s: LIST, bins: LIST, structs: LIST }[
      kind
    ];
    const delta = id - last;
    if (delta < 1 || delta > 15) throw new Error(`field ids must ascend by 1..15 (${id})`);
    out.push((delta << 4) | type);
    last = id;
    if (kind === 'i32' || kind === 'i64') out.push(...zigzag(value));
    else if (kind === 'bin') out.push(...binary(value));
    else if (kind === 'struct') out.push(...struct(value));
    else if (kind === 'i32s') out.push(...listHeader(value.length, I32), ...value.flatMap((v) => zigzag(v)));
    else if (kind === 'bins') out.push(...listHeader(value.length, BINARY), ...value.flatMap(binary));
    else out.push(...listHeader(value.length, STRUCT), ...value.flatMap(struct));
  }
  out.push(0);
  return out;
}

function plain(column: TinyParquetColumn): Buffer {
  const { type, values } = column;
  if (type === 'BOOLEAN') {
    const bytes = Buffer.alloc(Math.ceil(values.length / 8));
    values.forEach((v, i) => {
      if (v) bytes[i >> 3]! |= 1 << (i & 7);
    });
    return bytes;
  }
  return Buffer.concat(
    values.map((v) => {
      if (type === 'BYTE_ARRAY') {
        const text = Buffer.from(String(v), 'utf8');
        const length = Buffer.alloc(4);
        length.writeUInt32LE(text.length);
        return Buffer.concat([length, text]);
      }
      const b = Buffer.alloc(type === 'INT32' ? 4 : 8);
      if (type === 'INT32') b.writeInt32LE(Number(v));
      else if (type === 'INT64') b.writeBigInt64LE(BigInt(v));
      else b.writeDoubleLE(Number(v));
      return b;
    }),
  );
}

/** Definition levels of an OPTIONAL column with no NULLs: one RLE run of 1s, length-prefixed. */
function allDefined(rows: number): Buffer {
  const run = Buffer.from([...varint(BigInt(rows) << 1n), 1]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(run.length);
  return Buffer.concat([length, run]);
}

/** The bytes of a Parquet file holding `columns` (all of the same length). */
export function tinyParquet(columns: TinyParquetColumn[]): Buffer {
  const rows = columns[0]?.values.length ?? 0;
  const parts: Buffer[] = [Buffer.from('PAR1')];
  let offset = 4;
  const chunks: Field[][] = [];
  for (const column of columns) {
    if (column.values.length !== rows) throw new Error('every column needs one value per row');
    const data = Buffer.concat([
      column.repetition === 'OPTIONAL' ? allDefined(rows) : Buffer.alloc(0),
      plain(column),
    ]);
    const header = Buffer.from(
      struct([
        [1, 'i32', 0], // DATA_PAGE
        [2, 'i32', data.length],
        [3, 'i32', data.length],
        [
          5,
          'struct',
          [
            [1, 'i32', rows],
            [2, 'i32', 0], // PLAIN
            [3, 'i32', 3], // RLE
            [4, 'i32', 3],
          ],
        ],
      ]),
    );
    const size = header.length + data.length;
    chunks.push([
      [2, 'i64', offset],
      [
        3,
        'struct',
        [
          [1, 'i32', PHYSICAL[column.type]],
          [2, 'i32s', [0, 3]],
          [3, 'bins', [column.name]],
          [4, 'i32', 0], // UNCOMPRESSED
          [5, 'i64', rows],
          [6, 'i64', size],
          [7, 'i64', size],
          [9, 'i64', offset],
        ],
      ],
    ]);
    parts.push(header, data);
    offset += size;
  }
  const schema: Field[][] = [
    [
      [4, 'bin', 'schema'],
      [5, 'i32', columns.length],
    ],
    ...columns.map((c): Field[] => [
      [1, 'i32', PHYSICAL[c.type]],
      [3, 'i32', REPETITION[c.repetition]],
      [4, 'bin', c.name],
      ...(c.converted !== undefined ? [[6, 'i32', CONVERTED[c.converted]] as Field] : []),
    ]),
  ];
  const footer = Buffer.from(
    struct([
      [1, 'i32', 1],
      [2, 'structs', schema],
      [3, 'i64', rows],
      [
        4,
        'structs',
        [
          [
            [1, 'structs', chunks],
            [2, 'i64', offset - 4],
            [3, 'i64', rows],
          ],
        ],
      ],
    ]),
  );
  const length = Buffer.alloc(4);
  length.writeUInt32LE(footer.length);
  parts.push(footer, length, Buffer.from('PAR1'));
  return Buffer.concat(parts);
}
