/**
 * The Analytics Middle Tier's descriptor_map.json, as the Ed-Fi Alliance publishes it, applied to
 * the Ed-Fi sample data: descriptor URIs in nested tables (addresses, e-mails, telephones) and
 * bare code values in a district's CSV. Expected figures are computed here from the two files
 * with plain JavaScript, not by civic-etl.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../functions/common/aws.ts';
import { cleanLoad, type CleanDeps } from '../../functions/clean/clean-load.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { freshBucket, freshProject, put, rows } from './support.ts';

const MAP_FILE = fileURLToPath(new URL('../fixtures/edfi-descriptor-map/descriptor_map.json', import.meta.url));
const SEOA_FILE = fileURLToPath(new URL('../fixtures/edfi-sample/studentEducationOrganizationAssociations.json', import.meta.url));

interface MapRow {
  constantName: string;
  descriptor: string;
  codeValue: string;
}
const MAP = JSON.parse(readFileSync(MAP_FILE, 'utf8')) as MapRow[];
const SEOA = JSON.parse(readFileSync(SEOA_FILE, 'utf8')) as Record<string, unknown>[];

/** The constant the AMT map gives a descriptor URI, looked up the way the AMT README says (descriptor and code value, case-insensitive). */
function expectedConstant(uri: string): string | undefined {
  const m = /\/([^/#]+)#(.*)$/.exec(uri);
  if (!m) return undefined;
  return MAP.find((r) => r.descriptor.toLowerCase() === m[1]!.toLowerCase() && r.codeValue.toLowerCase() === m[2]!.trim().toLowerCase())?.constantName;
}

/** For one nested array and field of the sample: constant → rows, and unmapped value → rows. */
function expected(array: string, field: string) {
  const mapped = new Map<string, number>();
  const unmapped = new Map<string, number>();
  for (const record of SEOA) {
    for (const item of (record[array] as Record<string, string>[] | undefined) ?? []) {
      const value = item[field];
      if (!value) continue;
      const constant = expectedConstant(value);
      if (constant) mapped.set(constant, (mapped.get(constant) ?? 0) + 1);
      else unmapped.set(value, (unmapped.get(value) ?? 0) + 1);
    }
  }
  return { mapped: Object.fromEntries(mapped), unmapped: Object.fromEntries(unmapped) };
}

const definition: PipelineInput = {
  project: 'it_edfi_descriptors',
  suppliers: [{ name: 'ods' }],
  valueMaps: [{ name: 'amt', file: MAP_FILE }],
  datasets: [
    {
      name: 'seoa',
      source: { type: 'upload', supplier: 'ods' },
      read: { arrays: 'explode' },
      clean: {
        key: ['id'],
        mode: 'upsert',
        maps: [
          { column: 'addresses.addressTypeDescriptor', map: 'amt' },
          { column: 'electronicMails.electronicMailTypeDescriptor', map: 'amt' },
          { column: 'telephones.telephoneNumberTypeDescriptor', map: 'amt', unmapped: 'null' },
          // a detected column of the dataset's own table; the AMT map has no SexDescriptor row
          { column: 'sexDescriptor', map: 'amt' },
        ],
      },
    },
    {
      name: 'staff',
      source: { type: 'upload', supplier: 'ods' },
      clean: {
        columns: [
          { name: 'staff_id', source: 'StaffUniqueId', type: 'integer' },
          // inferred: the source column's name ends with the map's StaffClassificationDescriptor
          { name: 'scope', source: 'StaffClassificationDescriptorId', map: 'amt' },
          { name: 'email_type', source: 'ElectronicMailTypeDescriptor', map: 'amt' },
          // named by the definition: the column's name says nothing
          { name: 'address_type', source: 'Kind', map: 'amt', descriptor: 'uri://ed-fi.org/AddressTypeDescriptor' },
          // neither: a bare code maps only when the map gives it one constant under every descriptor
          { name: 'other', source: 'Other', map: 'amt' },
        ],
      },
    },
    {
      name: 'events',
      source: { type: 'upload', supplier: 'ods' },
      clean: {
        columns: [
          { name: 'n', type: 'integer' },
          { name: 'category', source: 'attendanceEventCategoryDescriptor', map: 'amt' },
        ],
      },
    },
  ],
};

let stageDeps: StageDeps;
let cleanDeps: CleanDeps;
let bucket: string;
let notified: number[] = [];

/** Upload, stage and clean one file; the load of its own table (a JSON file's first, the one its nested tables hang from). */
async function deliver(dataset: string, file: string, body: string) {
  notified = [];
  const ref = await put(bucket, `incoming/ods/${dataset}/${file}`, body);
  const staged = await stageObject(stageDeps, ref);
  if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
  const loadId = notified.length > 0 ? notified[0]! : staged.loadId;
  const outcome = await cleanLoad(cleanDeps, loadId);
  for (const id of notified.slice(1)) await cleanLoad(cleanDeps, id); // nested tables: already cleaned with their parent
  return { loadId, outcome };
}

beforeAll(async () => {
  const { pipeline, pool } = await freshProject(definition);
  bucket = await freshBucket('it-edfi-descriptors');
  stageDeps = { pool, s3: s3Client(), pipeline, notifyClean: async (m) => void notified.push(m.loadId) };
  cleanDeps = { pool, pipeline };
});

describe('the AMT descriptor map on Ed-Fi data', () => {
  it('maps the descriptor URIs of nested tables by (descriptor, code value), and counts the unmapped ones per load', async () => {
    const { loadId, outcome } = await deliver('seoa', 'seoa.json', readFileSync(SEOA_FILE, 'utf8'));
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: SEOA.length });

    const pool = cleanDeps.pool;
    const counts = async (table: string, column: string) =>
      Object.fromEntries(
        (await rows<{ v: string; n: number }>(pool, `SELECT ${column} AS v, count(*)::int AS n FROM it_edfi_descriptors.${table} WHERE ${column} IS NOT NULL GROUP BY 1`)).map((r) => [r.v, r.n]),
      );
    const addresses = expected('addresses', 'addressTypeDescriptor');
    const mails = expected('electronicMails', 'electronicMailTypeDescriptor');
    const phones = expected('telephones', 'telephoneNumberTypeDescriptor');
    // "Work" under three descriptors, three constants (figures from Python's json module on the two files)
    expect([addresses.mapped['Address.Work'], mails.mapped['Email.Work'], phones.mapped['Telephone.Work']]).toEqual([3, 41, 3]);
    expect(Object.values(phones.unmapped).reduce((a, b) => a + b, 0)).toBe(66); // Fax 18, Other 47, Unlisted 1
    // the sample has something on each side, or the test proves nothing
    expect(Object.keys(addresses.mapped).length).toBeGreaterThan(0);
    expect(Object.keys(phones.mapped).length).toBeGreaterThan(0);
    expect(Object.keys(phones.unmapped).length).toBeGreaterThan(0);

    // keep (the default): mapped values become constants, the others stay as sent
    expect(await counts('seoa_addresses', 'addresstypedescriptor')).toEqual({ ...addresses.mapped, ...addresses.unmapped });
    expect(await counts('seoa_electronicmails', 'electronicmailtypedescriptor')).toEqual({ ...mails.mapped, ...mails.unmapped });
    // null: only the constants are left
    expect(await counts('seoa_telephones', 'telephonenumbertypedescriptor')).toEqual(phones.mapped);

    // each nested table's own load reports its unmapped values
    const ledger = await rows<{ child: string; unmapped: { column: string; map: string; rows: number; distinct: number; values: { value: string; rows: number }[] }[] | null }>(
      pool,
      `SELECT detected->>'child' AS child, unmapped FROM etl.loads WHERE owner_id = $1 OR id = $1 ORDER BY id`,
      [loadId],
    );
    const of = (child: string) => ledger.find((l) => l.child === child)?.unmapped ?? null;
    const report = (u: Record<string, number>) => ({
      rows: Object.values(u).reduce((a, b) => a + b, 0),
      distinct: Object.keys(u).length,
      values: expect.arrayContaining(Object.entries(u).map(([value, n]) => ({ value, rows: n }))),
    });
    expect(of('telephones')).toEqual([{ column: 'telephonenumbertypedescriptor', map: 'amt', policy: 'null', ...report(phones.unmapped) }]);
    expect(of('electronicMails')).toEqual([{ column: 'electronicmailtypedescriptor', map: 'amt', policy: 'keep', ...report(mails.unmapped) }]);
    expect(of('addresses')).toEqual([{ column: 'addresstypedescriptor', map: 'amt', policy: 'keep', ...report(addresses.unmapped) }]);
    const sexes: Record<string, number> = {};
    for (const r of SEOA) if (r.sexDescriptor) sexes[r.sexDescriptor as string] = (sexes[r.sexDescriptor as string] ?? 0) + 1;
    expect(ledger.find((l) => l.child === null)?.unmapped).toEqual([{ column: 'sexdescriptor', map: 'amt', policy: 'keep', ...report(sexes) }]);
    expect(await counts('seoa', 'sexdescriptor')).toEqual(sexes);
  });

  it('maps bare code values by the descriptor the column names, and leaves a code that is ambiguous across descriptors unmapped', async () => {
    const csv = [
      'StaffUniqueId,StaffClassificationDescriptorId,ElectronicMailTypeDescriptor,Kind,Other',
      '1,Teacher,Work,Work,Superintendent',
      '2,uri://ed-fi.org/StaffClassificationDescriptor#Principal,uri://ed-fi.org/ElectronicMailTypeDescriptor#Home/Personal,Physical,Work',
      '3, principal ,uri://ed-fi.org/AddressTypeDescriptor#Work,uri://ed-fi.org/AddressTypeDescriptor#Home,uri://ed-fi.org/TelephoneNumberTypeDescriptor#Work',
      '4,uri://district.example.org/StaffClassificationDescriptor#Teacher,Organization,Temporary,Final',
      '',
    ].join('\n');
    const { loadId, outcome } = await deliver('staff', 'staff.csv', csv);
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 4 });

    expect(await rows(cleanDeps.pool, 'SELECT staff_id, scope, email_type, address_type, other FROM it_edfi_descriptors.staff ORDER BY staff_id')).toEqual([
      { staff_id: 1, scope: 'AuthorizationScope.Section', email_type: 'Email.Work', address_type: 'Address.Work', other: 'AuthorizationScope.District' },
      { staff_id: 2, scope: 'AuthorizationScope.School', email_type: 'Email.Personal', address_type: 'Address.Physical', other: 'Work' },
      // a URI names its own descriptor, even in a column of another: an address type in the e-mail column is Address.Work
      { staff_id: 3, scope: 'AuthorizationScope.School', email_type: 'Address.Work', address_type: 'Address.Home', other: 'Telephone.Work' },
      // another namespace, same descriptor name; Organization is no e-mail type of the map
      { staff_id: 4, scope: 'AuthorizationScope.Section', email_type: 'Organization', address_type: 'Address.Temporary', other: 'GradeType.Final' },
    ]);
    const [ledger] = await rows<{ unmapped: unknown }>(cleanDeps.pool, 'SELECT unmapped FROM etl.loads WHERE id = $1', [loadId]);
    expect(ledger!.unmapped).toEqual([
      { column: 'email_type', map: 'amt', policy: 'keep', rows: 1, distinct: 1, values: [{ value: 'Organization', rows: 1 }] },
      { column: 'other', map: 'amt', policy: 'keep', rows: 1, distinct: 1, values: [{ value: 'Work', rows: 1 }] },
    ]);
  });

  it('gives a code value that belongs to several constants the narrowest (AttendanceEvent.Absence covers two codes)', async () => {
    // the published map: Excused Absence → ExcusedAbsence and Absence, Unexcused Absence → UnexcusedAbsence and Absence
    const both = (code: string) =>
      MAP.filter((r) => r.descriptor === 'AttendanceEventCategoryDescriptor' && r.codeValue === code)
        .map((r) => r.constantName)
        .sort();
    expect(both('Excused Absence')).toEqual(['AttendanceEvent.Absence', 'AttendanceEvent.ExcusedAbsence']);
    expect(both('Unexcused Absence')).toEqual(['AttendanceEvent.Absence', 'AttendanceEvent.UnexcusedAbsence']);

    const csv =
      'n,attendanceEventCategoryDescriptor\n1,uri://ed-fi.org/AttendanceEventCategoryDescriptor#Excused Absence\n2,Unexcused Absence\n3,uri://ed-fi.org/AttendanceEventCategoryDescriptor#In Attendance\n';
    const { outcome } = await deliver('events', 'events.csv', csv);
    expect(outcome).toMatchObject({ status: 'loaded', rowsLoaded: 3 });
    expect(await rows(cleanDeps.pool, 'SELECT n, category FROM it_edfi_descriptors.events ORDER BY n')).toEqual([
      { n: 1, category: 'AttendanceEvent.ExcusedAbsence' },
      { n: 2, category: 'AttendanceEvent.UnexcusedAbsence' },
      { n: 3, category: 'AttendanceEvent.Present' },
    ]);
  });
});
