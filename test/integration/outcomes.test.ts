/**
 * Honest outcomes (issue 13, outcome 7): what the command line and the pipeline say when a load
 * cannot do what was asked — all of it output a user reads through a pipe, exit codes, the ledger.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Run the real command with stdout and stderr on pipes, as `civic-etl … | jq` does. */
function civicEtl(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args], {
    encoding: 'utf8',
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'civic-etl-outcomes-'));
const file = (name: string, body: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
};

/** A CSV of `columns` columns named c1…, with `rows` rows of distinct words. */
const wideCsv = (columns: number, rows: number) =>
  [Array.from({ length: columns }, (_, i) => `c${i + 1}`).join(','), ...Array.from({ length: rows }, (_, r) => Array.from({ length: columns }, (_, i) => `w${r}x${i}`).join(','))].join('\n') + '\n';

describe('piped output', () => {
  it('profile --json through a pipe is the whole document, far past 64 KiB', () => {
    const wide = file('wide.csv', wideCsv(400, 30));

    const r = civicEtl('profile', '--json', wide);

    expect(r.code, r.stderr).toBe(0);
    expect(Buffer.byteLength(r.stdout)).toBeGreaterThan(4 * 64 * 1024);
    const profile = JSON.parse(r.stdout) as { columns: { name: string }[]; rowCount: number };
    expect(profile.columns).toHaveLength(400);
    expect(profile.columns.at(-1)!.name).toBe('c400');
    expect(profile.rowCount).toBe(30);
  });
});
