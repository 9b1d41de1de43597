/**
 * The docs and the command line stay in step: every `civic-etl <command> --option` that README.md,
 * a page of docs/, pipelines/README.md or test/acceptance/README.md names is in that command's
 * `--help`, every command of `civic-etl --help` is named in the docs, the help pasted in
 * docs/operating.md is the real one, and every relative link of the docs points at a file (and a
 * heading) that exists.
 *
 * The help comes from the real CLI, spawned as a user runs it (`node bin/civic-etl.mjs … --help`):
 * local/cli.ts runs its command on import, so it cannot be asked in-process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'civic-etl.mjs');

/** README.md, every page of docs/, and the notes beside the example pipelines and the acceptance suite: the files people read. */
const DOC_FILES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join('docs', f)),
  'pipelines/README.md',
  'test/acceptance/README.md',
];

function cli(...args: string[]): string {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, COLUMNS: '100' }, timeout: 60_000 });
  if (result.status !== 0) throw new Error(`civic-etl ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

/** A piece of the docs that is code: an inline code span or a line of a fenced block. */
interface CodePiece {
  file: string;
  line: number;
  text: string;
}

/** Fenced blocks line by line, and inline code spans of the other lines. */
function codePieces(file: string, source: string): CodePiece[] {
  const pieces: CodePiece[] = [];
  let fenced = false;
  source.split('\n').forEach((text, i) => {
    if (/^\s*```/.test(text)) {
      fenced = !fenced;
      return;
    }
    if (fenced) {
      // a shell comment says what a command does; it names no option of it
      pieces.push({ file, line: i + 1, text: text.replace(/\s#\s.*$/, '') });
      return;
    }
    for (const span of text.matchAll(/(`+)(.+?)\1/g)) pieces.push({ file, line: i + 1, text: span[2]! });
  });
  return pieces;
}

/** Text outside fenced blocks, for links: a link inside a code block is not one. */
function proseLines(source: string): { line: number; text: string }[] {
  let fenced = false;
  const lines: { line: number; text: string }[] = [];
  source.split('\n').forEach((text, i) => {
    if (/^\s*```/.test(text)) fenced = !fenced;
    else if (!fenced) lines.push({ line: i + 1, text: text.replace(/`[^`]*`/g, '') });
  });
  return lines;
}

/** A command named in the docs: `civic-etl <command> <what follows, up to the next mention>`. */
interface Mention {
  where: string;
  command: string;
  next: string | undefined;
  options: string[];
}

function mentionsIn(piece: CodePiece): Mention[] {
  // "civic-etl " then the command; civic-etl-chicago-landing, civic-etl:pipeline and civic-etl's are not mentions
  const parts = piece.text.split(/(?<![\w/-])civic-etl (?=\S)/).slice(1);
  const named = parts.map((part) => {
    const words = part.trim().split(/\s+/);
    const command = words[0]!.replace(/[`'’),.:;]+$|['’]s$/g, '');
    const next = words[1]?.replace(/\\\|/g, '|');
    const options = [...part.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!);
    return { where: `${piece.file}:${piece.line}`, command, next, options };
  });
  // `civic-etl <command>`, `civic-etl …` stand for any command
  return named.filter((m) => /^(--)?[a-z]/.test(m.command));
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces → hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(source: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of source.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const heading = /^#{1,6} (.*)$/.exec(line);
    if (heading) {
      const base = slug(heading[1]!);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const id of line.matchAll(/<a id="([^"]+)"><\/a>/g)) anchors.add(id[1]!);
  }
  return anchors;
}

interface Help {
  /** every command of `civic-etl --help`, with its synopsis line(s) there */
  commands: Map<string, string>;
  /** each command's own `--help` */
  own: Map<string, string>;
  main: string;
}

let help: Help;
let mentions: Mention[];

beforeAll(() => {
  const main = cli('--help');
  const commands = new Map<string, string>();
  for (const m of main.matchAll(/^ {2}civic-etl ([a-z][a-z-]*)(.*)$/gm)) commands.set(m[1]!, (commands.get(m[1]!) ?? '') + m[2]!);
  const own = new Map([...commands.keys()].map((command) => [command, cli(command, '--help')]));
  help = { commands, own, main };
  mentions = DOC_FILES.flatMap((file) => codePieces(file, readFileSync(join(ROOT, file), 'utf8'))).flatMap(mentionsIn);
}, 120_000);

/** The options a command answers to: those its own help and its line in the main help name. */
function optionsOf(command: string): Set<string> {
  // quoted commands of other programs (`cdk deploy --outputs-file FILE`) name their own options
  const text = `${help.commands.get(command) ?? ''}\n${help.own.get(command) ?? ''}`.replace(/`(?!civic-etl )[^`]*`/g, '');
  return new Set(['--help', ...[...text.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!)]);
}

/** Words a command takes first, when its synopsis lists them (`start|stop|…`, `list|redrive`, `edfi`). */
function subcommandsOf(command: string): Set<string> | undefined {
  const synopsis = [...(help.own.get(command) ?? '').matchAll(new RegExp(`civic-etl ${command} (\\S+)`, 'g'))].map((m) => m[1]!);
  const words = synopsis.filter((w) => /^[a-z]+(\|[a-z]+)*$/.test(w)).flatMap((w) => w.split('|'));
  return words.length === 0 || synopsis.some((w) => !/^[a-z]+(\|[a-z]+)*$/.test(w)) ? undefined : new Set(words);
}

describe('the docs and civic-etl --help', () => {
  it('finds the commands of the help and mentions of them in the docs (the parsers work)', () => {
    // the help's own first lines name these; a parser that found nothing would pass everything below
    for (const command of ['run', 'load', 'profile', 'validate', 'status']) expect(help.commands.has(command), command).toBe(true);
    expect(optionsOf('load')).toContain('--source-srid');
    expect(subcommandsOf('services')).toEqual(new Set(['start', 'stop', 'status', 'env', 'clean']));
    expect(mentions.length).toBeGreaterThan(50);
  });

  it('names only commands that exist', () => {
    const unknown = mentions.filter((m) => !help.commands.has(m.command) && !['--version', '--help', 'help'].includes(m.command)).map((m) => `${m.where}: civic-etl ${m.command}`);
    expect(unknown).toEqual([]);
  });

  it('names only options the command answers to', () => {
    const wrong = mentions.filter((m) => help.commands.has(m.command)).flatMap((m) => m.options.filter((o) => !optionsOf(m.command).has(o)).map((o) => `${m.where}: civic-etl ${m.command} … ${o}`));
    expect(wrong).toEqual([]);
  });

  it('gives commands with fixed first words only those words', () => {
    const wrong = mentions.flatMap((m) => {
      const words = help.commands.has(m.command) ? subcommandsOf(m.command) : undefined;
      if (words === undefined || m.next === undefined || m.next.startsWith('-') || m.next.startsWith('[')) return [];
      // `list|redrive` in a synopsis names several at once
      return m.next
        .split('|')
        .filter((w) => !words.has(w.replace(/[`'’),.:;]+$/, '')))
        .map((w) => `${m.where}: civic-etl ${m.command} ${w}`);
    });
    expect(wrong).toEqual([]);
  });

  it('documents every command and every option of the help', () => {
    const named = new Map<string, Set<string>>();
    for (const m of mentions) named.set(m.command, new Set([...(named.get(m.command) ?? []), ...m.options]));
    const missing = [...help.commands.keys()].flatMap((command) => {
      if (!named.has(command)) return [`civic-etl ${command}`];
      return [...optionsOf(command)].filter((o) => o !== '--help' && !named.get(command)!.has(o)).map((o) => `civic-etl ${command} ${o}`);
    });
    expect(missing).toEqual([]);
  });

  it('answers --version and help as the docs say', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(cli('--version').trim()).toBe(`civic-etl ${version}`);
    expect(cli('help')).toBe(help.main);
  });

  it('pastes the real output of civic-etl --help in docs/operating.md', () => {
    const page = readFileSync(join(ROOT, 'docs', 'operating.md'), 'utf8');
    const pasted = /<!-- output of: civic-etl --help -->\n```\n([\s\S]*?)```\n/.exec(page);
    expect(pasted, 'docs/operating.md has a block after <!-- output of: civic-etl --help -->').not.toBeNull();
    expect(pasted![1]).toBe(help.main);
  });
});

describe('links in the docs', () => {
  it('point at files that exist, and at headings those files have', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of DOC_FILES) {
      const source = readFileSync(join(ROOT, file), 'utf8');
      for (const { line, text } of proseLines(source)) {
        for (const link of text.matchAll(/\]\(([^)\s]+)\)|<a href="([^"]+)"/g)) {
          const target = (link[1] ?? link[2])!;
          if (/^[a-z][a-z+.-]*:/i.test(target)) continue; // https:, mailto:
          checked++;
          const [path, anchor] = target.split('#') as [string, string | undefined];
          const resolved = path === '' ? join(ROOT, file) : resolve(join(ROOT, dirname(file)), decodeURIComponent(path));
          const where = `${file}:${line}: ${target}`;
          if (!resolved.startsWith(ROOT) || !existsSync(resolved)) {
            broken.push(`${where} (no ${relative(ROOT, resolved)})`);
            continue;
          }
          if (anchor !== undefined) {
            if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) broken.push(`${where} (an anchor into a file that is not Markdown)`);
            else if (!anchorsOf(readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${where} (no heading or <a id> "${anchor}" there)`);
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(broken).toEqual([]);
  });

  it('find a heading as GitHub names it', () => {
    expect(slug('Exports ("gold" files)')).toBe('exports-gold-files');
    expect(slug('Limits, for now')).toBe('limits-for-now');
    expect([...anchorsOf('# A\n```\n# not a heading\n```\n## B <a id="b-id"></a>\n## A')]).toEqual(['a', 'b', 'b-id', 'a-1']);
  });
});
