/**
 * The design card's stack as a benchmark peer: csv-parse streaming the week's local file into
 * parquetjs-lite, writing one Parquet file (SNAPPY) with typed columns: the six text columns,
 * the reading time as a timestamp (DATE + TIME read as UTC, no time zone), DESC, and ENTRIES and
 * EXITS as INT64. No fetch, no quality figures, no warehouse load.
 *
 * Plain JavaScript: the bench copies it into its throwaway npm folder (.ci/.cache/bench/npm),
 * where csv-parse and parquetjs-lite are installed, and runs it there; they are not the
 * project's dependencies. Usage: node csv-parquet.js <input.csv> <output.parquet>
 */
import { createReadStream } from 'node:fs';
import process from 'node:process';
import { parse } from 'csv-parse';
import parquet from 'parquetjs-lite';

const [input, output] = process.argv.slice(2);
if (!input || !output) throw new Error('usage: csv-parquet.js <input.csv> <output.parquet>');
const text = { type: 'UTF8', compression: 'SNAPPY' };
const schema = new parquet.ParquetSchema({
  ca: text,
  unit: text,
  scp: text,
  station: text,
  linename: text,
  division: text,
  reading_time: { type: 'TIMESTAMP_MILLIS', compression: 'SNAPPY' },
  desc: text,
  entries: { type: 'INT64', compression: 'SNAPPY' },
  exits: { type: 'INT64', compression: 'SNAPPY' },
});
const writer = await parquet.ParquetWriter.openFile(schema, output);
const parser = createReadStream(input).pipe(parse({ from_line: 2, trim: true }));
for await (const r of parser) {
  const [month, day, year] = r[6].split('/');
  await writer.appendRow({
    ca: r[0],
    unit: r[1],
    scp: r[2],
    station: r[3],
    linename: r[4],
    division: r[5],
    reading_time: new Date(`${year}-${month}-${day}T${r[7]}Z`),
    desc: r[8],
    entries: Number(r[9]),
    exits: Number(r[10]),
  });
}
await writer.close();
