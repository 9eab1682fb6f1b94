/**
 * The environment variable behind `run --accept`: a module of its own so that the command line
 * names it in `run`'s help without loading the run's pipeline (cli/commands.ts).
 */
export const ACCEPT_ENV = 'MTA_INGEST_ACCEPT';
