/**
 * The types `civic-etl profile` and `civic-etl load` give each column of one file, side by side,
 * for the agreement tests (test/integration/types.test.ts; the real-data suite can run it on its
 * files too). Geometry columns are left out: the profile has no column for a file's own geometry.
 */
import { createReadStream } from 'node:fs';
import type pg from 'pg';
import { profileStream, profileTable } from '../../functions/profile/profile.ts';
import { openSource } from '../../functions/read/open.ts';
import { loadFile, type LoadFileOptions } from '../../local/load-file.ts';

export async function profileAndLoadTypes(pool: pg.Pool, path: string, table: string, opts: Partial<LoadFileOptions> = {}): Promise<{ profile: string[]; load: string[] }> {
  const opened = await openSource({ name: path, path, open: async () => createReadStream(path) });
  let profile: string[];
  try {
    const entry = opened.entries[0]!;
    const profiled = entry.kind === 'table' ? await profileTable(entry.table, { file: path }) : await profileStream(await entry.open(), { file: path });
    // a file's own geometry is staged as a column the profile also sees: leave it out on both sides
    const geometry = entry.kind === 'table' ? entry.table.geometry?.column : undefined;
    profile = profiled.columns.filter((c) => c.name !== geometry).map((c) => c.clean.type);
  } finally {
    await opened.dispose();
  }
  const loaded = await loadFile(pool, path, { table, recreate: true, ...opts });
  return { profile, load: loaded.columns.filter((c) => c.type !== 'geometry').map((c) => c.type) };
}
