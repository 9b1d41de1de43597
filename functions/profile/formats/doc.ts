import { formatsTable } from './index.ts';

/** docs/formats.md: the semantic formats, generated from their definitions (a test keeps it in step). */
export function formatsDoc(): string {
  return `# Semantic formats

Generated from \`functions/profile/formats/\` by \`npx tsx scripts/formats-table.ts\`; a test fails
when this page and the code disagree. The international formats are always on; a pipeline switches
the locale packs on with \`profile.locales\` (\`civic-etl profile --locale fr,nl,us\`).

A column gets a format when at least *threshold* of its non-empty values pass the format's test
(formats marked "hint" also need a matching header word). Its score is
\`0.85 × share + 0.15 if the header matches\`, in [0, 1]. The csv-detective column names the
format csv-detective gives the same concept, where it has one.

${formatsTable()}
`;
}
