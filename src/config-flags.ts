/**
 * The settings as flags give them, before resolution (config.ts): a leaf type over the settings
 * table, so that the block files (blocks.ts), which name the same settings, and config.ts, which
 * reads blocks, do not import each other.
 */
import type { SettingValues } from './settings/settings-table.ts';

/** Settings as given by flags; undefined means "not given". */
export type ConfigFlags = SettingValues;
