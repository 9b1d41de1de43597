#!/usr/bin/env python3
"""Expected facts about the acceptance files, computed with Python's standard library only.

Reads test/acceptance/sources.json (where each file comes from, and what a person reading it
decided: which line is the header, which columns are dates written how, which values to check)
and writes test/acceptance/facts/<id>.json for every file. Nothing here runs civic-etl.

    python3 test/acceptance/facts/compute_facts.py            # every file
    python3 test/acceptance/facts/compute_facts.py de-foo     # one file

Column names are given as they appear in the file; the facts carry both that heading and the
name the loaded table should have, by the README's rule (ogr2ogr's LAUNDER: accents stripped,
lower case, runs of other characters -> "_", trimmed; a leading digit gets "c_"; at most 56
characters; a repeat gets "_2", "_3"...; an attribute named like the geometry column "geom"
becomes "geom_attribute").
"""
import csv
import datetime as dt
import hashlib
import io
import json
import math
import re
import sqlite3
import struct
import sys
import tempfile
import unicodedata
import zipfile
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FILES = ROOT / 'files'
csv.field_size_limit(10**9)


# ----------------------------------------------------------------------------- names

def launder(headers):
    seen, out = set(), []
    for i, h in enumerate(headers):
        base = unicodedata.normalize('NFKD', h)
        base = ''.join(c for c in base if not unicodedata.combining(c)).lower()
        base = re.sub(r'[^a-z0-9]+', '_', base).strip('_')
        if not base:
            base = f'column_{i + 1}'
        if base[0].isdigit():
            base = 'c_' + base
        base = base[:56]
        name, n = base, 2
        while name in seen:
            name, n = f'{base}_{n}', n + 1
        seen.add(name)
        out.append(name)
    return out


# ----------------------------------------------------------------------------- readers → (header, rows of str|number|None)

def strip_boms(text):
    return text.replace('\ufeff', '')


def read_csv(path, r):
    raw = path.read_bytes()
    text = raw.decode(r.get('encoding', 'utf-8'))
    text = strip_boms(text)
    lines = text.replace('\r\n', '\n').replace('\r', '\n')
    rows = list(csv.reader(io.StringIO(lines), delimiter=r.get('delimiter', ','), quotechar=r.get('quote', '"')))
    # skip counts non-blank records above the header (titles), footer the non-blank records under the data (notes)
    rows = [row for row in rows if any(c.strip() for c in row)][r.get('skip', 0):]
    header = [h.strip() for h in rows[0]]
    data = rows[1:]
    if r.get('skip_repeated_header'):
        data = [row for row in data if [c.strip() for c in row] != header]
    data = [row for row in data if any(c.strip() for c in row)]
    if r.get('footer'):
        data = data[: len(data) - r['footer']]
    if r.get('drop_last_empty_column') and header and header[-1] == '':
        header = header[:-1]
        data = [row[:-1] if len(row) > len(header) else row for row in data]
    return header, data


def xlsx_sheet(path, r):
    z = zipfile.ZipFile(path)
    ns = {'m': 'http://schemas.openxmlformats.org/spreadsheetml/2006/main',
          'r': 'http://schemas.openxmlformats.org/officeDocument/2006/relationships'}
    shared = []
    if 'xl/sharedStrings.xml' in z.namelist():
        for si in ET.fromstring(z.read('xl/sharedStrings.xml')).findall('m:si', ns):
            shared.append(''.join(t.text or '' for t in si.iter('{%s}t' % ns['m'])))
    wb = ET.fromstring(z.read('xl/workbook.xml'))
    rels = ET.fromstring(z.read('xl/_rels/workbook.xml.rels'))
    targets = {rel.get('Id'): rel.get('Target') for rel in rels}
    sheets = wb.findall('m:sheets/m:sheet', ns)
    want = r.get('sheet', 0)
    sheet = sheets[want] if isinstance(want, int) else next(s for s in sheets if s.get('name') == want)
    target = targets[sheet.get('{%s}id' % ns['r'])].lstrip('/')
    target = target if target.startswith('xl/') else 'xl/' + target
    grid = {}
    for c in ET.fromstring(z.read(target)).iter('{%s}c' % ns['m']):
        ref = c.get('r')
        col_letters = re.match(r'[A-Z]+', ref).group(0)
        col = 0
        for ch in col_letters:
            col = col * 26 + ord(ch) - 64
        row = int(ref[len(col_letters):])
        t = c.get('t')
        v = c.find('m:v', ns)
        if t == 's':
            val = shared[int(v.text)]
        elif t == 'inlineStr':
            val = ''.join(x.text or '' for x in c.iter('{%s}t' % ns['m']))
        elif t in ('str', 'e'):
            val = v.text if v is not None else ''
        elif t == 'b':
            val = v.text == '1'
        else:
            val = None if v is None else (int(v.text) if re.fullmatch(r'-?\d+', v.text) else float(v.text))
        grid[(row, col)] = val
    return grid_rows(grid)


def ods_sheet(path, r):
    z = zipfile.ZipFile(path)
    T = 'urn:oasis:names:tc:opendocument:xmlns:table:1.0'
    O = 'urn:oasis:names:tc:opendocument:xmlns:office:1.0'
    X = 'urn:oasis:names:tc:opendocument:xmlns:text:1.0'
    root = ET.fromstring(z.read('content.xml'))
    tables = list(root.iter('{%s}table' % T))
    want = r.get('sheet', 0)
    table = tables[want] if isinstance(want, int) else next(t for t in tables if t.get('{%s}name' % T) == want)
    grid, rown = {}, 0
    for row in table.iter('{%s}table-row' % T):
        reps = int(row.get('{%s}number-rows-repeated' % T, '1'))
        for _ in range(min(reps, 1000)):
            rown += 1
            coln = 0
            for cell in row:
                if cell.tag not in ('{%s}table-cell' % T, '{%s}covered-table-cell' % T):
                    continue
                creps = int(cell.get('{%s}number-columns-repeated' % T, '1'))
                vt = cell.get('{%s}value-type' % O)
                if vt in ('float', 'percentage', 'currency'):
                    s = cell.get('{%s}value' % O)
                    val = int(s) if re.fullmatch(r'-?\d+', s) else float(s)
                elif vt == 'date':
                    val = cell.get('{%s}date-value' % O)
                elif vt == 'boolean':
                    val = cell.get('{%s}boolean-value' % O) == 'true'
                elif vt:
                    val = '\n'.join(''.join(p.itertext()) for p in cell.findall('{%s}p' % X))
                else:
                    val = None
                for _ in range(min(creps, 1000)):
                    coln += 1
                    if val is not None and val != '':
                        grid[(rown, coln)] = val
    return grid_rows(grid)


def grid_rows(grid):
    if not grid:
        return []
    nrows = max(r for r, _ in grid)
    ncols = max(c for _, c in grid)
    return [[grid.get((r, c)) for c in range(1, ncols + 1)] for r in range(1, nrows + 1)]


def read_sheet(path, r):
    rows = {'.xlsx': xlsx_sheet, '.xls': xls_sheet}.get(path.suffix, ods_sheet)(path, r)
    rows = rows[r.get('skip', 0):]
    header = ['' if h is None else str(h).strip() for h in rows[0]]
    data = [row for row in rows[1: len(rows) - r.get('footer', 0)] if any(v not in (None, '') for v in row)]
    while header and header[-1] == '' and all(row[len(header) - 1] in (None, '') for row in data):
        header.pop()
        data = [row[: len(header)] for row in data]
    return header, data


def read_json(path, r):
    """An array of objects, or the array under `member` ({"records": [...]}); nested objects become dotted keys."""
    doc = json.loads(strip_boms(path.read_text(encoding='utf-8')))
    if r.get('member'):
        doc = doc[r['member']]
    return objects_table([flatten(o) for o in doc])


def read_ndjson(path, r):
    """One JSON object a line (blank lines skipped); nested objects become dotted keys."""
    lines = strip_boms(path.read_text(encoding='utf-8')).splitlines()
    return objects_table([flatten(json.loads(line)) for line in lines if line.strip()])


def objects_table(objs):
    header = []
    for o in objs:
        for k in o:
            if k not in header:
                header.append(k)
    return header, [[o.get(k) for k in header] for o in objs]


# ----------------------------------------------------------------------------- xls (BIFF8 in an OLE2 compound file)

def ole_stream(raw, wanted):
    """The bytes of the stream named one of `wanted` in an OLE2 compound file (regular sectors only)."""
    ssz = 1 << struct.unpack('<H', raw[0x1E:0x20])[0]
    nfat, first_dir = struct.unpack('<II', raw[0x2C:0x34])
    cutoff = struct.unpack('<I', raw[0x38:0x3C])[0]
    first_difat, ndifat = struct.unpack('<II', raw[0x44:0x4C])
    sector = lambda i: raw[512 + i * ssz: 512 + (i + 1) * ssz]
    difat = list(struct.unpack('<109I', raw[0x4C:0x200]))
    d = first_difat
    for _ in range(ndifat):
        ids = struct.unpack('<%dI' % (ssz // 4), sector(d))
        difat += ids[:-1]
        d = ids[-1]
    fat = []
    for i in difat[:nfat]:
        fat += struct.unpack('<%dI' % (ssz // 4), sector(i))

    def chain(start):
        out, i = [], start
        while i < 0xFFFFFFFA:
            out.append(sector(i))
            i = fat[i]
        return b''.join(out)
    dirs = chain(first_dir)
    entries = [dirs[off: off + 128] for off in range(0, len(dirs), 128)]
    for e in entries:
        nlen = struct.unpack('<H', e[64:66])[0]
        name = e[: max(nlen - 2, 0)].decode('utf-16-le')
        if name in wanted and e[66] == 2:
            start, size = struct.unpack('<II', e[116:124])
            if size >= cutoff:
                return chain(start)[:size]
            # a small stream lives in the mini stream (64-byte sectors inside the root entry's stream)
            first_minifat, nminifat = struct.unpack('<II', raw[0x3C:0x44])
            minifat = struct.unpack('<%dI' % (len(chain(first_minifat)) // 4), chain(first_minifat)) if nminifat else ()
            container = chain(struct.unpack('<I', entries[0][116:120])[0])
            msz = 1 << struct.unpack('<H', raw[0x20:0x22])[0]
            out, i = [], start
            while i < 0xFFFFFFFA:
                out.append(container[i * msz: (i + 1) * msz])
                i = minifat[i]
            return b''.join(out)[:size]
    raise ValueError(f'no {wanted} stream')


def biff_records(stream, pos=0):
    while pos + 4 <= len(stream):
        typ, ln = struct.unpack('<HH', stream[pos: pos + 4])
        yield pos, typ, stream[pos + 4: pos + 4 + ln]
        pos += 4 + ln


class Segments:
    """The SST and its CONTINUE records: strings run across them, characters restart with a flags byte."""

    def __init__(self, segs):
        self.segs, self.i, self.p = segs, 0, 0

    def take(self, n):
        out = b''
        while n:
            if self.p >= len(self.segs[self.i]):
                self.i, self.p = self.i + 1, 0
            seg = self.segs[self.i]
            k = min(n, len(seg) - self.p)
            out += seg[self.p: self.p + k]
            self.p += k
            n -= k
        return out

    def chars(self, cch, high):
        out = ''
        while cch:
            if self.p >= len(self.segs[self.i]):
                self.i, self.p = self.i + 1, 0
                high = self.segs[self.i][0] & 1
                self.p = 1
            width = 2 if high else 1
            k = min(cch, (len(self.segs[self.i]) - self.p) // width)
            chunk = self.segs[self.i][self.p: self.p + k * width]
            out += chunk.decode('utf-16-le' if high else 'latin-1')
            self.p += k * width
            cch -= k
        return out


def rk_value(rk):
    if rk & 2:
        v = (rk >> 2) - (1 << 30 if rk & 0x80000000 else 0)  # a signed 30-bit integer
    else:
        v = struct.unpack('<d', struct.pack('<Q', (rk & 0xFFFFFFFC) << 32))[0]
    return v / 100 if rk & 1 else v


def xls_sheet(path, r):
    stream = ole_stream(path.read_bytes(), ('Workbook', 'Book'))
    sheets, sst, segs, total, prev = [], [], None, 0, None
    for pos, typ, data in biff_records(stream):  # the workbook globals, up to their EOF
        if typ == 0x000A:
            break
        if typ == 0x0085:  # BOUNDSHEET: name and offset of each sheet
            cch, flags = data[6], data[7]
            name = data[8: 8 + cch * (2 if flags & 1 else 1)].decode('utf-16-le' if flags & 1 else 'latin-1')
            sheets.append((name, struct.unpack('<I', data[:4])[0]))
        elif typ == 0x00FC:  # SST: the shared strings, continued in CONTINUE records
            total, segs = struct.unpack('<I', data[4:8])[0], [data[8:]]
        elif typ == 0x003C and prev in (0x00FC, 0x003C) and segs is not None:
            segs.append(data)
        prev = typ
    if segs is not None:
        rd = Segments(segs)
        for _ in range(total):
            cch, flags = struct.unpack('<HB', rd.take(3))
            runs = struct.unpack('<H', rd.take(2))[0] if flags & 8 else 0
            ext = struct.unpack('<I', rd.take(4))[0] if flags & 4 else 0
            sst.append(rd.chars(cch, flags & 1))
            rd.take(4 * runs + ext)
    want = r.get('sheet', 0)
    offset = sheets[want][1] if isinstance(want, int) else next(o for n, o in sheets if n == want)
    grid, pending = {}, None
    for pos, typ, data in biff_records(stream, offset):
        if typ == 0x000A:  # EOF of the sheet
            break
        if typ in (0x0203, 0x027E, 0x00FD, 0x0204, 0x0006, 0x0205):
            row, col = struct.unpack('<HH', data[:4])
        if typ == 0x0203:
            grid[(row + 1, col + 1)] = struct.unpack('<d', data[6:14])[0]
        elif typ == 0x027E:
            grid[(row + 1, col + 1)] = rk_value(struct.unpack('<I', data[6:10])[0])
        elif typ == 0x00BD:  # MULRK
            row, col = struct.unpack('<HH', data[:4])
            for k in range((len(data) - 6) // 6):
                grid[(row + 1, col + 1 + k)] = rk_value(struct.unpack('<I', data[6 + 6 * k: 10 + 6 * k])[0])
        elif typ == 0x00FD:
            grid[(row + 1, col + 1)] = sst[struct.unpack('<I', data[6:10])[0]]
        elif typ == 0x0204:
            cch, flags = struct.unpack('<HB', data[6:9])
            grid[(row + 1, col + 1)] = data[9: 9 + cch * (2 if flags & 1 else 1)].decode('utf-16-le' if flags & 1 else 'latin-1')
        elif typ == 0x0006:  # FORMULA: its cached result
            res = data[6:14]
            if res[6:8] != b'\xff\xff':
                grid[(row + 1, col + 1)] = struct.unpack('<d', res)[0]
            elif res[0] == 0:
                pending = (row + 1, col + 1)
            elif res[0] == 1:
                grid[(row + 1, col + 1)] = bool(res[2])
        elif typ == 0x0207 and pending:  # STRING after a formula
            cch, flags = struct.unpack('<HB', data[:3])
            grid[pending] = data[3: 3 + cch * (2 if flags & 1 else 1)].decode('utf-16-le' if flags & 1 else 'latin-1')
            pending = None
        elif typ == 0x0205 and data[7] == 0:
            grid[(row + 1, col + 1)] = bool(data[6])
    grid = {k: v for k, v in grid.items() if v not in (None, '')}
    return grid_rows(grid)


# ----------------------------------------------------------------------------- geometry

def ring_area(ring):
    a = 0.0
    for (x1, y1, *_), (x2, y2, *_) in zip(ring, ring[1:]):
        a += x1 * y2 - x2 * y1
    return a / 2


def polygon_area(rings):
    """Area of one polygon: outer ring minus its holes (orientation ignored)."""
    return abs(ring_area(rings[0])) - sum(abs(ring_area(h)) for h in rings[1:])


def geojson_geom(g, acc):
    t = g['type']
    c = g.get('coordinates')
    acc['types'].add(t)
    pts = []
    if t == 'Point':
        pts = [c]
    elif t in ('LineString', 'MultiPoint'):
        pts = c
    elif t in ('MultiLineString', 'Polygon'):
        pts = [p for part in c for p in part]
        if t == 'Polygon':
            acc['area'] += polygon_area(c)
    elif t == 'MultiPolygon':
        pts = [p for poly in c for ring in poly for p in ring]
        acc['area'] += sum(polygon_area(poly) for poly in c)
    elif t == 'GeometryCollection':
        for sub in g['geometries']:
            geojson_geom(sub, acc)
    for p in pts:
        acc['xs'].append(p[0])
        acc['ys'].append(p[1])


def flatten(obj, prefix='', depth=3):
    """Nested objects become dotted keys (README: `address.city`), down to 3 levels."""
    out = {}
    for k, v in obj.items():
        key = f'{prefix}{k}'
        if isinstance(v, dict) and depth > 1 and v:
            out.update(flatten(v, key + '.', depth - 1))
        else:
            out[key] = v
    return out


def read_geojson(path, r):
    doc = json.loads(strip_boms(path.read_text(encoding='utf-8')))
    acc = {'types': set(), 'area': 0.0, 'xs': [], 'ys': []}
    header, data = [], []
    flat = [flatten(f.get('properties') or {}) for f in doc['features']]
    for props in flat:
        for k in props:
            if k not in header:
                header.append(k)
    for f, props in zip(doc['features'], flat):
        data.append([props.get(k) for k in header])
        if f.get('geometry'):
            geojson_geom(f['geometry'], acc)
    crs = (doc.get('crs') or {}).get('properties', {}).get('name', 'EPSG:4326')
    m = re.search(r'(\d+)$', crs)
    srid = 4326 if 'CRS84' in crs else int(m.group(1))
    return header, data, geo_summary(acc, len(doc['features']), srid)


def geo_summary(acc, count, srid):
    fam = {'Point': 'point', 'MultiPoint': 'point', 'LineString': 'line', 'MultiLineString': 'line',
           'Polygon': 'polygon', 'MultiPolygon': 'polygon'}
    families = sorted({fam.get(t, 'collection') for t in acc['types']})
    return {
        'count': count,
        'source_srid': srid,
        'family': families[0] if len(families) == 1 else 'mixed',
        'bbox': [min(acc['xs']), min(acc['ys']), max(acc['xs']), max(acc['ys'])],
        'area': acc['area'],
    }


def shp_geoms(shp):
    """(count of records with a shape, families, area, bbox) of a .shp's records."""
    acc = {'types': set(), 'area': 0.0, 'xs': [], 'ys': []}
    pos, count = 100, 0
    while pos < len(shp):
        _, length = struct.unpack('>ii', shp[pos: pos + 8])
        rec = shp[pos + 8: pos + 8 + length * 2]
        pos += 8 + length * 2
        st = struct.unpack('<i', rec[:4])[0]
        if st == 0:
            continue  # a null shape: a record without geometry
        count += 1
        if st in (1, 11, 21):
            acc['types'].add('Point')
            x, y = struct.unpack('<dd', rec[4:20])
            acc['xs'].append(x)
            acc['ys'].append(y)
            continue
        nparts, npts = struct.unpack('<ii', rec[36:44])
        parts = list(struct.unpack('<%di' % nparts, rec[44: 44 + 4 * nparts]))
        off = 44 + 4 * nparts
        pts = [struct.unpack('<dd', rec[off + 16 * i: off + 16 * i + 16]) for i in range(npts)]
        acc['xs'] += [p[0] for p in pts]
        acc['ys'] += [p[1] for p in pts]
        if st in (5, 15, 25):
            acc['types'].add('Polygon')
            rings = [pts[a:b] for a, b in zip(parts, parts[1:] + [npts])]
            # shapefile: outer rings clockwise (negative shoelace), holes counter-clockwise
            acc['area'] += sum(-ring_area(rg) for rg in rings)
        elif st in (3, 13, 23):
            acc['types'].add('LineString')
        else:
            acc['types'].add('MultiPoint')
    return count, acc


def dbf_table(dbf, encoding):
    nrec, hlen, rlen = struct.unpack('<IHH', dbf[4:12])
    fields, pos = [], 32
    while dbf[pos] != 0x0D:
        name = dbf[pos: pos + 11].split(b'\0')[0].decode('ascii')
        fields.append((name, chr(dbf[pos + 11]), dbf[pos + 16], dbf[pos + 17]))
        pos += 32
    rows = []
    for i in range(nrec):
        rec = dbf[hlen + i * rlen: hlen + (i + 1) * rlen]
        if rec[:1] == b'*':
            continue
        off, row = 1, []
        for name, typ, ln, dec in fields:
            raw = rec[off: off + ln].decode(encoding).replace('\x00', '').strip()  # some writers pad with NUL, not spaces
            off += ln
            if typ in ('N', 'F'):
                row.append(None if raw == '' or set(raw) <= {'*'} else (int(raw) if re.fullmatch(r'-?\d+', raw) else float(raw)))
            elif typ == 'D':
                row.append(f'{raw[:4]}-{raw[4:6]}-{raw[6:]}' if raw else None)
            elif typ == 'L':
                row.append(None if raw in ('', '?') else raw in ('T', 't', 'Y', 'y'))
            else:
                row.append(raw if raw else None)
        rows.append(row)
    return [f[0] for f in fields], rows


def read_shapefile_zip(path, r):
    z = zipfile.ZipFile(path)
    names = z.namelist()
    base = next(n[:-4] for n in names if n.lower().endswith('.shp'))
    shp = z.read(base + '.shp')
    dbf = z.read(base + '.dbf')
    count, acc = shp_geoms(shp)
    header, data = dbf_table(dbf, r.get('encoding', 'utf-8'))
    geo = geo_summary(acc, count, r['source_srid'])
    return header, data, geo


def wkb_geom(b, off, acc):
    bo = '<' if b[off] == 1 else '>'
    t = struct.unpack(bo + 'I', b[off + 1: off + 5])[0]
    off += 5
    base = t % 1000
    dims = 2 + (1 if t // 1000 in (1, 2) else 0) + (1 if t // 1000 == 3 else 0)
    if t // 1000 == 3:
        dims = 4

    def pts(off):
        n = struct.unpack(bo + 'I', b[off: off + 4])[0]
        off += 4
        out = [struct.unpack(bo + 'dd', b[off + 8 * dims * i: off + 8 * dims * i + 16]) for i in range(n)]
        return out, off + 8 * dims * n

    def rings(off):
        n = struct.unpack(bo + 'I', b[off: off + 4])[0]
        off += 4
        rs = []
        for _ in range(n):
            p, off = pts(off)
            rs.append(p)
        return rs, off

    names = {1: 'Point', 2: 'LineString', 3: 'Polygon', 4: 'MultiPoint', 5: 'MultiLineString', 6: 'MultiPolygon'}
    acc['types'].add(names.get(base, 'Other'))
    if base == 1:
        p = struct.unpack(bo + 'dd', b[off: off + 16])
        acc['xs'].append(p[0])
        acc['ys'].append(p[1])
        return off + 8 * dims
    if base == 2:
        p, off = pts(off)
    elif base == 3:
        rs, off = rings(off)
        acc['area'] += polygon_area(rs)
        p = [q for rg in rs for q in rg]
    elif base in (4, 5, 6, 7):
        n = struct.unpack(bo + 'I', b[off: off + 4])[0]
        off += 4
        for _ in range(n):
            off = wkb_geom(b, off, acc)
        return off
    acc['xs'] += [q[0] for q in p]
    acc['ys'] += [q[1] for q in p]
    return off


def read_gpkg(path, r):
    con = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    layer = r.get('layer') or con.execute("SELECT table_name FROM gpkg_contents WHERE data_type='features'").fetchone()[0]
    gcol, srid = con.execute('SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name=?', (layer,)).fetchone()
    cols = [c[1] for c in con.execute(f'PRAGMA table_info("{layer}")')]
    # every column but the geometry, the feature id (fid) included: it is a column of the table
    header = [c for c in cols if c != gcol]
    acc = {'types': set(), 'area': 0.0, 'xs': [], 'ys': []}
    data = []
    for row in con.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in header + [gcol])} FROM "{layer}"'):
        data.append(list(row[:-1]))
        blob = row[-1]
        if blob:
            flags = blob[3]
            env = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(flags >> 1) & 7]
            wkb_geom(blob, 8 + env, acc)
    return header, data, geo_summary(acc, len(data), srid)


# ----------------------------------------------------------------------------- values

def parse_number(v, spec):
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    s = v.strip().replace('\u00a0', '').replace('\u202f', '')
    if s == '' or s in spec.get('nulls', []):
        return None
    if spec.get('thousands'):
        s = s.replace(spec['thousands'], '')
    if spec.get('decimal') == ',':
        s = s.replace(',', '.')
    d = Decimal(s)
    return int(d) if d == d.to_integral_value() and 'e' not in s.lower() and '.' not in s else float(d)


def excel_date(n):
    return dt.date(1899, 12, 30) + dt.timedelta(days=int(n))


def parse_date(v, fmt):
    if v is None or v == '':
        return None
    if isinstance(v, (int, float)):
        return excel_date(v).isoformat()
    s = v.strip()
    if fmt == 'iso':
        return dt.date.fromisoformat(s[:10]).isoformat()
    return dt.datetime.strptime(s, fmt).date().isoformat()


def typed(v, t, col, spec):
    if v is None:
        return None
    if t == 'text' and spec.get('blank_is_value') and isinstance(v, str) and v.strip() == '':
        return v  # a cell holding only spaces: no rule on blanks is asserted for this file
    if isinstance(v, str) and (v.strip() == '' or v.strip() in spec.get('nulls', [])):
        return None
    if t in ('integer', 'number'):
        return parse_number(v, spec)
    if t == 'date':
        return parse_date(v, spec.get('dates', {}).get(col, 'iso'))
    if t == 'timestamp':
        return dt.datetime.fromisoformat(v.strip().replace('Z', '+00:00')).isoformat()
    if t == 'boolean':
        if isinstance(v, bool):
            return v
        return v.strip().lower() in ('true', 't', 'yes', 'y', '1', 'oui', 'ja', 'vrai')
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v if isinstance(v, str) else str(v)


# ----------------------------------------------------------------------------- facts

def compute(spec):
    path = FILES / spec['file']
    r = spec.get('read', {})
    fmt = spec['format']
    geo = None
    if fmt == 'csv':
        header, data = read_csv(path, r)
    elif fmt in ('xlsx', 'xls', 'ods'):
        header, data = read_sheet(path, r)
    elif fmt == 'json':
        header, data = read_json(path, r)
    elif fmt == 'ndjson':
        header, data = read_ndjson(path, r)
    elif fmt == 'geojson':
        header, data, geo = read_geojson(path, r)
    elif fmt == 'shapefile':
        header, data, geo = read_shapefile_zip(path, r)
    elif fmt == 'gpkg':
        header, data, geo = read_gpkg(path, r)
    else:
        raise ValueError(f'{spec["id"]}: unknown format {fmt}')
    if spec.get('ragged'):
        return ragged_facts(spec, path, r)
    if spec.get('geo_from_columns'):
        # decimal longitude/latitude columns become a point; the columns stay (as ogr2ogr keeps them)
        lon, lat = header.index(spec['geo_from_columns']['lon']), header.index(spec['geo_from_columns']['lat'])
        acc = {'types': {'Point'}, 'area': 0.0, 'xs': [], 'ys': []}
        for row in data:
            x, y = parse_number(row[lon], spec), parse_number(row[lat], spec)
            if x is not None and y is not None:
                acc['xs'].append(x)
                acc['ys'].append(y)
        geo = geo_summary(acc, len(acc['xs']), 4326)
    names = launder(header)
    if geo:
        names = [n + '_attribute' if n == 'geom' else n for n in names]
    idx = {h: i for i, h in enumerate(header)}
    idx.update({f'#{i}': i for i in range(len(header))})  # a column named by its position (blank or repeated headings)
    facts = []
    facts.append({'id': 'rows', 'kind': 'rows', 'expected': len(data)})
    facts.append({'id': 'columns', 'kind': 'columns', 'expected': len(header)})
    facts.append({'id': 'header', 'kind': 'header', 'expected': names, 'source': header, **({'unchecked': True} if 'header' in spec.get('unchecked', []) else {})})
    for i, text in enumerate(spec.get('absent', []), 1):
        # text that is in the file but not in the table (a footnote, a title): no row may hold it
        facts.append({'id': f'absent:{i}', 'kind': 'absent', 'expected': 0, 'text': text})
    for col, t in spec.get('types', {}).items():
        if col not in idx:
            raise KeyError(f'{spec["id"]}: no column {col!r} in {header}')
        name = names[idx[col]]
        pos = idx[col]
        facts.append({'id': f'type:{name}', 'kind': 'type', 'column': name, 'heading': header[pos], 'position': pos, 'expected': t})
        values = [typed(row[idx[col]] if idx[col] < len(row) else None, t, col, spec) for row in data]
        facts.append({'id': f'nulls:{name}', 'kind': 'nulls', 'column': name, 'heading': header[pos], 'position': pos, 'expected': sum(v is None for v in values)})
        if t in ('integer', 'number'):
            nums = [v for v in values if v is not None]
            total = sum(Decimal(str(v)) for v in nums)
            facts.append({'id': f'sum:{name}', 'kind': 'sum', 'column': name, 'heading': header[pos], 'position': pos, 'type': t,
                          'expected': float(total), 'tolerance': max(1e-6, abs(float(total)) * 1e-9)})
    for pick in spec.get('values', []):
        col, row_no = pick['column'], pick['row']
        t = spec.get('types', {}).get(col, 'text')
        raw = data[row_no - 1][idx[col]]
        value = typed(raw, t, col, spec)
        same = sum(1 for row in data if typed(row[idx[col]] if idx[col] < len(row) else None, t, col, spec) == value)
        name = names[idx[col]]
        facts.append({'id': f'value:{name}:{row_no}', 'kind': 'value', 'column': name, 'heading': header[idx[col]], 'position': idx[col], 'type': t,
                      'row': row_no, 'raw': raw, 'expected': value, 'count': same})
    if geo:
        facts.append({'id': 'geo:count', 'kind': 'geo_count', 'expected': geo['count']})
        facts.append({'id': 'geo:srid', 'kind': 'geo_srid', 'expected': spec.get('load', {}).get('srid', 4326)})
        facts.append({'id': 'geo:family', 'kind': 'geo_family', 'expected': geo['family']})
        facts.append({'id': 'geo:column_type', 'kind': 'geo_column_type', 'expected': geo['family'],
                      'note': 'geometry_columns says the layer type (after promotion to multi) and SRID, as ogr2ogr writes'})
        tol = 1e-6 if geo['source_srid'] == 4326 else 0.01
        facts.append({'id': 'geo:bbox', 'kind': 'geo_bbox', 'expected': geo['bbox'], 'srid': geo['source_srid'], 'tolerance': tol})
        if geo['family'] == 'polygon':
            facts.append({'id': 'geo:area', 'kind': 'geo_area', 'expected': geo['area'], 'srid': geo['source_srid'], 'relative': 1e-6})
    return {'id': spec['id'], 'file': spec['file'], 'format': fmt, 'load': spec.get('load', {}), 'classes': spec.get('classes', []),
            'computed_by': 'test/acceptance/facts/compute_facts.py', 'facts': facts}


def ragged_facts(spec, path, r):
    """A file whose records do not have the header's field count: the load must fail naming the first such line."""
    text = strip_boms(path.read_bytes().decode(r.get('encoding', 'utf-8')))
    reader = csv.reader(io.StringIO(text.replace('\r\n', '\n').replace('\r', '\n')), delimiter=r.get('delimiter', ','))
    records, start = [], 1
    for row in reader:  # each record with the physical line it starts on
        if any(c.strip() for c in row):
            records.append((start, row))
        start = reader.line_num + 1
    records = records[r.get('skip', 0):]  # titles above the header
    width = len(records[0][1])
    odd = [(line, row) for line, row in records[1:] if len(row) != width]
    line, row = odd[0]
    return {'id': spec['id'], 'file': spec['file'], 'format': spec['format'], 'load': spec.get('load', {}), 'classes': spec.get('classes', []),
            'computed_by': 'test/acceptance/facts/compute_facts.py',
            'facts': [{'id': 'load:fails', 'kind': 'load_fails', 'expected': line, 'note': f'{len(odd)} records do not have the {width} fields of the header; the first, line {line}, has {len(row)}'},
                      {'id': 'profile:ragged', 'kind': 'profile_ragged', 'expected': len(odd)}]}


def main():
    """Write facts/<id>.json; with --check, write nothing and exit 1 when a stored file differs from what is computed."""
    args = sys.argv[1:]
    check = '--check' in args
    only = {a for a in args if a != '--check'}
    sources = json.loads((ROOT / 'sources.json').read_text(encoding='utf-8'))
    stale = []
    for spec in sources['files']:
        if only and spec['id'] not in only:
            continue
        digest = hashlib.sha256((FILES / spec['file']).read_bytes()).hexdigest()
        if digest != spec.get('sha256'):
            print(f'{spec["file"]}: sha256 {digest} is not the one sources.json records', file=sys.stderr)
            stale.append(spec['id'])
        text = json.dumps(compute(spec), ensure_ascii=False, indent=1) + '\n'
        target = HERE / f'{spec["id"]}.json'
        if check:
            if not target.exists() or target.read_text(encoding='utf-8') != text:
                stale.append(spec['id'])
            continue
        target.write_text(text, encoding='utf-8')
        print(f'{spec["id"]}: {text.count(chr(34) + "kind" + chr(34))} facts')
    if check:
        known = {spec['id'] for spec in sources['files']}
        extra = sorted(p.stem for p in HERE.glob('*.json') if p.stem not in known)
        if stale or extra:
            print(f'facts out of date: {", ".join(stale)}; facts without a source: {", ".join(extra)}', file=sys.stderr)
            sys.exit(1)
        print(f'{len(sources["files"])} fact files match sources.json and the files')


if __name__ == '__main__':
    main()
