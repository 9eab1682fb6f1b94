/**
 * The demo's default folder: a module of its own so that the command line shows it in `demo`'s
 * help without loading the demo and the pipeline (cli/commands.ts).
 */
export const DEFAULT_DEMO_DIR = './data/demo';
