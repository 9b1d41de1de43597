/**
 * Read one file the way the stage step does (`openSource`, then every entry's rows to the end) in
 * this process, and print one line of JSON: the verdict, the error's message and position, peak
 * RSS and time. Tests run it in a child with a small heap (`node --max-old-space-size=…`), so a
 * hostile file that escapes the limits kills the child, not the test run.
 *
 *   node --max-old-space-size=256 --import tsx test/helpers/read-child.ts <path> <name> [limits JSON]
 */
import { createReadStream } from 'node:fs';
import { openSource } from '../../functions/read/open.ts';

const [path, name, limits] = process.argv.slice(2) as [string, string, string?];
const started = performance.now();
let rows = 0;
let verdict: 'read' | 'failed' = 'read';
let message: string | undefined;
let position: unknown;
let kind: string | undefined;
try {
  const opened = await openSource({ name, path, open: async () => createReadStream(path) }, limits ? { limits: JSON.parse(limits) as Record<string, number> } : {});
  try {
    for (const entry of opened.entries) {
      if (entry.kind === 'csv') for await (const _ of await entry.open()) rows++;
      else for await (const _ of entry.table.rows()) rows++;
    }
  } finally {
    await opened.dispose();
  }
} catch (error) {
  verdict = 'failed';
  message = (error as Error).message;
  position = (error as { position?: unknown }).position;
  kind = (error as Error).name;
}
const out = { verdict, kind, message, position, rows, maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024), ms: Math.round(performance.now() - started) };
process.stdout.write(`${JSON.stringify(out)}\n`);
