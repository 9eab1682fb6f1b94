/**
 * Stage 3, measure and gate: the converted week's quality figures (week-quality.ts), then the
 * plausibility gate's verdict on its figures against the current version and recent weeks
 * (plausibility-gate.ts). With `--strict`, a week whose quality falls short is refused here,
 * before anything is stored.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { IsoDate } from '../dates/drop-dates.ts';
import { weekKeys } from '../lake/lake-layout.ts';
import type { Lake } from '../lake/lake.ts';
import { parseManifest, type Manifest } from '../manifest/manifest.ts';
import { judgeWeek, measureFigures, type GateVerdict } from '../quality/plausibility-gate.ts';
import { measureWeek, strictFailure, type WeekQuality } from '../quality/week-quality.ts';
import { recentWeeks } from './week-decision.ts';
import type { WeekOptions } from './week-result.ts';

export interface GatedWeek {
  quality: WeekQuality;
  gate: GateVerdict;
  /** Why `--strict` refuses the week, if it does. */
  refused: string | undefined;
}

export async function gateWeek(
  lake: Lake,
  db: DuckDBConnection,
  date: IsoDate,
  converted: { parquetPath: string; rejects: number; unmatchedStations?: number | undefined },
  /** The week's manifest when the run began: the current version, which the gate compares with. */
  manifest: Manifest | undefined,
  options: Pick<WeekOptions, 'accept' | 'strict'>,
): Promise<GatedWeek> {
  const quality = await measureWeek(db, converted.parquetPath, date, {
    rejects: converted.rejects,
    unmatchedStations: converted.unmatchedStations ?? 0,
  });
  const figures = await measureFigures(db, converted.parquetPath, date);
  const gate = judgeWeek(
    figures,
    {
      current:
        manifest?.gate?.verdict === 'passed'
          ? {
              sha256: manifest.source.sha256,
              rows: manifest.rows,
              turnstiles: manifest.gate.figures.turnstiles,
            }
          : undefined,
      recent: await recentWeeks((earlier) => readManifestOf(lake, earlier), date),
    },
    options.accept ?? false,
  );
  return { quality, gate, refused: options.strict ? strictFailure(quality) : undefined };
}

async function readManifestOf(lake: Lake, date: IsoDate): Promise<Manifest | undefined> {
  const key = weekKeys(date).manifest;
  const text = await lake.getText(key);
  return text === undefined ? undefined : parseManifest(text, lake.uriOf(key));
}
