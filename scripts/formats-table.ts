/** Regenerate docs/formats.md from the format definitions: `npx tsx scripts/formats-table.ts`. */
import { writeFileSync } from 'node:fs';
import { formatsDoc } from '../functions/profile/formats/doc.ts';

writeFileSync(new URL('../docs/formats.md', import.meta.url), formatsDoc());
