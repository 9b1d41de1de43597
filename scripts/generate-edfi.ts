/**
 * Deterministic generator for the Ed-Fi example's data in `pipelines/edfi/data/`, shaped like the
 * Ed-Fi ODS API's JSON (as a fetch of `/ed-fi/schools` and `/ed-fi/studentSchoolAttendanceEvents`
 * would save it):
 *
 *   npx tsx scripts/generate-edfi.ts
 *
 * - `schools.json`: 5 schools (`schoolId`, `nameOfInstitution`, nested address);
 * - `attendance.json`: 600 attendance events; the category is an Ed-Fi descriptor URI, written
 *   the way each installation writes it — the Ed-Fi default namespace, a district namespace with
 *   its own code values (EXA, MED, UNX, TAR), different case — and some with a code value the map
 *   does not know (XYZ, 6 of them), which the clean step reports as unmapped.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from './random.ts';

const OUT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'pipelines', 'edfi', 'data');
const rand = mulberry32(0xedf1);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const schools = [
  { schoolId: 255901001, nameOfInstitution: 'Grand Bend High School', city: 'Grand Bend' },
  { schoolId: 255901044, nameOfInstitution: 'Grand Bend Middle School', city: 'Grand Bend' },
  { schoolId: 255901107, nameOfInstitution: 'Grand Bend Elementary School', city: 'Grand Bend' },
  { schoolId: 255902001, nameOfInstitution: 'Lakeview High School', city: 'Lakeview' },
  { schoolId: 255902010, nameOfInstitution: 'Lakeview Elementary School', city: 'Lakeview' },
].map((s) => ({
  schoolId: s.schoolId,
  nameOfInstitution: s.nameOfInstitution,
  addresses: [{ city: s.city, stateAbbreviationDescriptor: 'uri://ed-fi.org/StateAbbreviationDescriptor#TX', postalCode: '78' + String(s.schoolId).slice(-3) }],
}));

const EDFI = 'uri://ed-fi.org/AttendanceEventCategoryDescriptor#';
const DISTRICT = 'uri://district.example.org/AttendanceEventCategoryDescriptor#';
const CATEGORIES = [
  `${EDFI}Excused Absence`,
  `${EDFI}Unexcused Absence`,
  `${EDFI}Tardy`,
  `${DISTRICT}EXA`,
  `${DISTRICT}MED`,
  `${DISTRICT}UNX`,
  `${DISTRICT}TAR`,
  `${EDFI}excused absence`, // case varies between installations
];

const events = [];
for (let i = 1; i <= 600; i++) {
  const school = pick(schools);
  const day = 1 + Math.floor(rand() * 28);
  events.push({
    id: `e${String(i).padStart(5, '0')}`,
    studentReference: { studentUniqueId: String(604800 + Math.floor(rand() * 250)) },
    schoolReference: { schoolId: school.schoolId },
    sessionReference: { schoolId: school.schoolId, schoolYear: 2026, sessionName: '2025-2026 Spring Semester' },
    attendanceEventCategoryDescriptor: i % 86 === 0 ? `${DISTRICT}XYZ` : pick(CATEGORIES),
    eventDate: `2026-02-${String(day).padStart(2, '0')}`,
  });
}

mkdirSync(OUT_DIR, { recursive: true });
writeFileSync(join(OUT_DIR, 'schools.json'), `${JSON.stringify(schools, null, 2)}\n`, 'utf8');
writeFileSync(join(OUT_DIR, 'attendance.json'), `${JSON.stringify(events, null, 2)}\n`, 'utf8');
console.log(`wrote ${schools.length} schools and ${events.length} attendance events to ${OUT_DIR}`);
