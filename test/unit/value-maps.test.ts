import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadPipeline, parsePipeline, PipelineDefinitionError } from '../../contract/load.ts';
import { parseValueMap, readValueMapFile } from '../../contract/value-map-files.ts';
import { mapConflicts, mapKey, ValueMapError } from '../../contract/value-maps.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/value-maps/', import.meta.url));

/** A minimal definition with one value map and one mapped column. */
function withMap(map: Record<string, unknown>, column: Record<string, unknown> = { name: 'category', map: 'attendance_category' }) {
  return {
    project: 'schools',
    suppliers: [{ name: 'district' }],
    valueMaps: [{ name: 'attendance_category', ...map }],
    datasets: [{ name: 'attendance', source: { type: 'upload', supplier: 'district' }, clean: { columns: [column] } }],
  };
}

function problemsOf(input: unknown, baseDir = FIXTURES): string[] {
  try {
    parsePipeline(input, 'pipeline.yaml', baseDir);
  } catch (error) {
    expect(error).toBeInstanceOf(PipelineDefinitionError);
    return [...(error as PipelineDefinitionError).problems];
  }
  throw new Error('expected the definition to be rejected');
}

function errorOf(read: () => unknown): ValueMapError {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(ValueMapError);
    return error as ValueMapError;
  }
  throw new Error('expected the map to be rejected');
}

describe('value map files', () => {
  it('keys each Ed-Fi descriptor row on its descriptor name and code value, whatever namespace the row writes', () => {
    const entries = readValueMapFile(join(FIXTURES, 'attendance-event-categories.csv'), 'attendance-event-categories.csv');

    expect(entries).toHaveLength(8);
    expect(entries.filter((e) => e.line === 6)).toEqual([{ source: 'EXA', constant: 'Excused Absence', descriptor: 'AttendanceEventCategoryDescriptor', line: 6 }]);
  });

  it('accepts the AMT descriptor_map.json as published, "Work" under three descriptors and "Excused Absence" under two constants included', () => {
    const file = fileURLToPath(new URL('../fixtures/edfi-descriptor-map/descriptor_map.json', import.meta.url));
    const entries = readValueMapFile(file, 'descriptor_map.json');
    // independent reading of the same file
    const rows = JSON.parse(readFileSync(file, 'utf8')) as { constantName: string; descriptor: string; codeValue: string }[];

    expect(entries.map((e) => [e.descriptor, e.source, e.constant])).toEqual(rows.map((r) => [r.descriptor, r.codeValue, r.constantName]));
    expect(mapConflicts(entries, 'descriptor_map.json')).toEqual([]);
    expect(
      entries
        .filter((e) => e.source === 'Work')
        .map((e) => e.constant)
        .sort(),
    ).toEqual(['Address.Work', 'Email.Work', 'Telephone.Work']);
  });

  it('accepts an Ed-Fi code value under several constants (the AMT map is many-to-many), but not a plain one', () => {
    const json = `[
  {"constantName": "AttendanceEvent.ExcusedAbsence", "descriptor": "AttendanceEventCategoryDescriptor", "codeValue": "Excused Absence"},
  {"constantName": "AttendanceEvent.Absence", "descriptor": "uri://ed-fi.org/AttendanceEventCategoryDescriptor", "codeValue": " excused absence "}
]`;
    expect(mapConflicts(parseValueMap(json, 'm.json'), 'm.json')).toEqual([]);
    expect(
      mapConflicts([
        { source: 'EXA', constant: 'Excused' },
        { source: 'exa', constant: 'Absence' },
      ]),
    ).toHaveLength(1);
  });

  it('reads a YAML mapping of source values to constants, keeping codes such as 09 as written', () => {
    const entries = readValueMapFile(join(FIXTURES, 'grade-levels.yaml'));

    expect(entries.map((e) => [e.source, e.constant, e.line])).toEqual([
      ['09', 'Ninth grade', 2],
      ['9', 'Ninth grade', 3],
      ['10', 'Tenth grade', 4],
      ['K', 'Kindergarten', 5],
    ]);
  });

  it('reads JSON rows in either layout, whatever the case of the field names', () => {
    const json = `[
  {"ConstantName": "Excused Absence", "Descriptor": "uri://ed-fi.org/AttendanceEventCategoryDescriptor#", "CodeValue": "Excused Absence"},
  {"ConstantName": "Tardy", "Descriptor": "uri://ed-fi.org/AttendanceEventCategoryDescriptor", "CodeValue": "Tardy"}
]`;

    expect(parseValueMap(json, 'categories.json').map((e) => [e.descriptor, e.source])).toEqual([
      ['AttendanceEventCategoryDescriptor', 'Excused Absence'],
      ['AttendanceEventCategoryDescriptor', 'Tardy'],
    ]);
    expect(parseValueMap('[{"source": "Y", "constant": "Yes"}]', 'yes-no.json')).toEqual([{ source: 'Y', constant: 'Yes', line: 1 }]);
  });

  it('names the file and line of a row without a constant', () => {
    const error = errorOf(() => parseValueMap('source,constant\nEXA,Excused Absence\nUNX,\n', 'maps/codes.csv'));

    expect(error.message).toBe('maps/codes.csv line 3: constant is empty');
  });

  it('names the columns a file should have when it has neither layout', () => {
    const error = errorOf(() => parseValueMap('code,label\nEXA,Excused Absence\n', 'maps/codes.csv'));

    expect(error.message).toMatch(/^maps\/codes\.csv line 1: a value map needs the columns source and constant, or the Ed-Fi .* \(found: code, label\)$/);
  });

  it('names the line of a YAML key written twice, and refuses a file type it cannot read', () => {
    expect(errorOf(() => parseValueMap('EXA: Excused Absence\nEXA: Unexcused Absence\n', 'codes.yaml')).message).toMatch(/^codes\.yaml line 2: not valid YAML: Map keys must be unique/);
    expect(errorOf(() => parseValueMap('EXA\tExcused', 'codes.txt')).message).toBe('codes.txt: a value map must be a .csv, .yaml, .yml or .json file');
  });
});

describe('conflicting entries', () => {
  it('compares source values ignoring case and surrounding spaces', () => {
    expect(mapKey('  Excused ABSENCE\u00a0')).toBe('excused absence');
    expect(mapKey('ÉCOLE')).toBe('école');
  });

  it('names both lines when one source value maps to two constants', () => {
    const entries = readValueMapFile(join(FIXTURES, 'conflicting.csv'), 'maps/conflicting.csv');

    expect(mapConflicts(entries, 'maps/conflicting.csv')).toEqual([
      'maps/conflicting.csv line 4: " exa " maps to "Unexcused Absence", but maps/conflicting.csv line 2 maps "EXA" to "Excused Absence" (source values are compared ignoring case and surrounding spaces)',
    ]);
  });

  it('accepts a value repeated with the same constant', () => {
    expect(
      mapConflicts([
        { source: 'EXA', constant: 'Excused Absence' },
        { source: 'exa', constant: 'Excused Absence' },
      ]),
    ).toEqual([]);
  });
});

describe('value maps in a pipeline definition', () => {
  it('reads map files relative to the pipeline file, as civic-etl validate and cdk synth do', () => {
    const pipeline = loadPipeline(join(FIXTURES, 'pipeline.yaml'));

    const [categories, grades] = pipeline.valueMaps;
    expect(categories).toMatchObject({ name: 'attendance_category', file: 'attendance-event-categories.csv' });
    expect(categories!.entries).toContainEqual({ source: 'TAR', constant: 'Tardy', descriptor: 'AttendanceEventCategoryDescriptor', line: 9 });
    expect(grades!.entries).toHaveLength(4);
    expect(pipeline.datasets[0]!.clean.columns?.[1]).toMatchObject({ name: 'category', map: 'attendance_category', unmapped: 'quarantine' });
  });

  it('keeps the entries in the definition, so the copy bundled into the Lambdas needs no map file', () => {
    const pipeline = loadPipeline(join(FIXTURES, 'pipeline.yaml'));
    const bundle = mkdtempSync(join(tmpdir(), 'civic-etl-bundle-'));
    writeFileSync(join(bundle, 'pipeline.json'), JSON.stringify(pipeline));

    expect(loadPipeline(join(bundle, 'pipeline.json'))).toEqual(pipeline);
  });

  it('rejects a map file with conflicting entries, naming the map, the file and both lines', () => {
    expect(problemsOf(withMap({ file: 'conflicting.csv' }))).toEqual([
      'valueMap "attendance_category": conflicting.csv line 4: " exa " maps to "Unexcused Absence", but conflicting.csv line 2 maps "EXA" to "Excused Absence" (source values are compared ignoring case and surrounding spaces)',
    ]);
  });

  it('rejects conflicting inline entries, naming them by position', () => {
    const entries = [
      { source: 'EXA', constant: 'Excused Absence' },
      { source: 'Exa', constant: 'Tardy' },
    ];

    expect(problemsOf(withMap({ entries }))).toEqual([
      'valueMap "attendance_category": entries[1]: "Exa" maps to "Tardy", but entries[0] maps "EXA" to "Excused Absence" (source values are compared ignoring case and surrounding spaces)',
    ]);
  });

  it('refuses a descriptor on a column without a map, and a clean.maps entry naming an unknown map', () => {
    const input = withMap({ entries: [{ source: 'Work', constant: 'Address.Work', descriptor: 'AddressTypeDescriptor' }] }, { name: 'kind', descriptor: 'AddressTypeDescriptor' });
    (input.datasets[0]!.clean as Record<string, unknown>).maps = [{ column: 'addresses.addressTypeDescriptor', map: 'amt' }];

    const problems = problemsOf(input);
    expect(problems).toHaveLength(2);
    expect(problems.join('\n')).toContain('descriptor names the descriptor of a mapped column: add map');
    expect(problems.join('\n')).toContain('unknown value map "amt" (declare it under valueMaps)');
  });

  it('names a map file that cannot be read', () => {
    expect(problemsOf(withMap({ file: 'maps/missing.csv' }))).toEqual(['valueMap "attendance_category" → file: maps/missing.csv: cannot read the value map: ENOENT']);
  });

  it('rejects a column naming an unknown map, and unmapped on a column without a map', () => {
    const input = withMap({ entries: [] }, { name: 'category', map: 'categories' });
    input.datasets[0]!.clean.columns.push({ name: 'reason', unmapped: 'null' });

    expect(problemsOf(input)).toEqual([
      'dataset "attendance" → clean.columns[0].map: unknown value map "categories" (declare it under valueMaps)',
      'dataset "attendance" → clean.columns[1].unmapped: only a column with a map has unmapped values',
    ]);
  });
});
