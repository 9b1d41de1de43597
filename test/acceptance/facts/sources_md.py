#!/usr/bin/env python3
"""Writes test/acceptance/files/SOURCES.md from sources.json: origin and licence of every file."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
d = json.loads((ROOT / 'sources.json').read_text(encoding='utf-8'))
lines = ['# Origins of the acceptance files', '',
         'Written by `python3 test/acceptance/facts/sources_md.py` from `test/acceptance/sources.json`. Each file is a byte copy of',
         '`<path>` at `<commit>` of the GitHub repository named, unless the note says how it was cut.', '',
         '| file | publisher | country | repository @ commit : path | licence | note |', '|---|---|---|---|---|---|']
for f in d['files']:
    lines.append(f"| {f['file']} | {f['publisher']} | {f['country']} | {f['repository']} @ {f['commit'][:12]} : `{f['path']}` | {f['licence']} | {f.get('note', '')} |")
lines += ['', f"{len(d['files'])} files, {len({f['organisation'] for f in d['files']})} publishers (organisations), {len({f['country'] for f in d['files']})} countries.", '']
(ROOT / 'files' / 'SOURCES.md').write_text('\n'.join(lines), encoding='utf-8')
