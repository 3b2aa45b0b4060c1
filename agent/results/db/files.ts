/**
 * The database from the files: ingesting night directories, and rebuilding
 * the whole database from a nights directory. The files are the truth
 * ("files first, database second"); reading a night's directory into a
 * NightRecord is the loader's business, given as a parameter.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { NightRecord } from '../record.js';
import { checkNightRecord, InvalidNightRecord, type IngestResult, type ResultsDb } from './store.js';

export type LoadNight = (dir: string) => NightRecord;

export interface NightFailure {
  dir: string;
  message: string;
}

export interface FilesResult {
  ingested: IngestResult[];
  /** Night directories that could not be read or stored; the others were. */
  failed: NightFailure[];
}

/** A directory that holds no nights: rebuilding from it would empty the database, so it is refused. */
export class NoNightsThere extends Error {
  override readonly name = 'NoNightsThere';
}

/**
 * Reads a night, or says why it cannot be read. Whatever the loader throws
 * is taken as this night's files being unreadable (a journal.json cut short
 * or edited by hand can make it throw a TypeError too): the night is
 * reported, with the error's kind when it is not a plain one, and the others
 * go on.
 */
function tryLoad(loadNight: LoadNight, dir: string): NightRecord | NightFailure {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return { dir, message: 'no such directory' };
  try {
    const record = loadNight(dir);
    checkNightRecord(record);
    return record;
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    const plain = e.constructor === Error || e instanceof InvalidNightRecord || e.name === 'NotANight';
    return { dir, message: plain ? e.message : `${e.name}: ${e.message}` };
  }
}

function isFailure(x: NightRecord | NightFailure): x is NightFailure {
  return 'message' in x && !('night' in x);
}

/** Ingests each night directory in its own transaction; one that cannot be read does not stop the others. */
export async function ingestNightDirs(
  db: ResultsDb,
  dirs: readonly string[],
  loadNight: LoadNight,
  onIngested?: (r: IngestResult, dir: string) => void,
): Promise<FilesResult> {
  const out: FilesResult = { ingested: [], failed: [] };
  for (const given of dirs) {
    const dir = resolve(given);
    const record = tryLoad(loadNight, dir);
    if (isFailure(record)) {
      out.failed.push(record);
      continue;
    }
    const r = await db.ingest(record);
    out.ingested.push(r);
    onIngested?.(r, dir);
  }
  return out;
}

/** The nights directory of DIR: DIR/nights for a state directory, else DIR itself. */
export function nightsDirectory(dir: string): string {
  const nights = join(dir, 'nights');
  return existsSync(nights) && statSync(nights).isDirectory() ? nights : dir;
}

/** The night directories (those with a journal.json) under a nights directory, oldest first by name. */
export function nightDirectories(nightsDir: string): string[] {
  return readdirSync(nightsDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(nightsDir, e.name, 'journal.json')))
    .map((e) => join(nightsDir, e.name))
    .sort();
}

/**
 * Replaces the database's content with every night under DIR (a state
 * directory or its nights/), in one transaction: until it commits, the
 * database stays as it was, and a rebuild that is killed changes nothing.
 */
export async function rebuildFromFiles(
  db: ResultsDb,
  dir: string,
  loadNight: LoadNight,
  onIngested?: (r: IngestResult) => void,
): Promise<FilesResult & { nightsDir: string }> {
  const nightsDir = nightsDirectory(resolve(dir));
  const dirs = nightDirectories(nightsDir);
  if (dirs.length === 0) throw new NoNightsThere(`${nightsDir} holds no nights (no directory with a journal.json)`);
  const failed: NightFailure[] = [];
  function* records(): Generator<NightRecord> {
    for (const d of dirs) {
      const r = tryLoad(loadNight, d);
      if (isFailure(r)) failed.push(r);
      else yield r;
    }
  }
  const ingested = await db.rebuild(records(), onIngested);
  return { ingested, failed, nightsDir };
}
