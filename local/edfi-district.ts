/**
 * A generated Ed-Fi sample district (README: "The Ed-Fi example"; pipelines/edfi/pipeline.yaml fetches it):
 * the Grand Bend ISD of school year 2026 (2025-08-18 → 2026-05-29), one local education agency,
 * three schools (high, middle, elementary), its students, staff, sections, calendars and the
 * attendance and discipline of every school day up to "today", in the shapes an Ed-Fi ODS / API
 * 7.x (Data Standard 5.x) serves at `/data/v3/ed-fi/<resource>`.
 *
 * Deterministic: the same options give the same records, byte for byte (a seeded mulberry32; ids
 * are the MD5 of the resource and the record's natural key, 32 hex digits as the ODS serves them).
 * `advance()` moves "today" to the next instructional day and returns that day's changes: new
 * attendance events, one corrected event, one deleted event, one withdrawal, one new enrolment,
 * one discipline incident (and, when asked, one natural-key change).
 *
 * `serveDistrict` fills a stand-in ODS (local/edfi-stand-in.ts) with it; `serveDay` applies a day.
 */
import { createHash } from 'node:crypto';
import { mulberry32 } from '../scripts/random.ts';
import type { EdfiServer } from './edfi-stand-in.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EdfiRecord = Record<string, any>;

/** The resources of the district, in the order an ODS is loaded (references before referrers). */
export const DISTRICT_RESOURCES = [
  'localEducationAgencies',
  'schools',
  'calendarDates',
  'gradingPeriods',
  'sessions',
  'sections',
  'staffs',
  'staffSectionAssociations',
  'students',
  'studentEducationOrganizationAssociations',
  'studentSchoolAssociations',
  'studentSectionAssociations',
  'studentSchoolAttendanceEvents',
  'studentSectionAttendanceEvents',
  'disciplineIncidents',
  'studentDisciplineIncidentBehaviorAssociations',
] as const;
export type DistrictResource = (typeof DISTRICT_RESOURCES)[number];

export const SCHOOL_YEAR = 2026;
export const FIRST_DAY = '2025-08-18';
export const LAST_DAY = '2026-05-29';
export const LEA_ID = 255901;
/** The district's own descriptor namespace (codes a small map of the example translates). */
export const DISTRICT_NAMESPACE = 'uri://grandbend.edu';

const ED_FI = 'uri://ed-fi.org';
const d = (descriptor: string, code: string, namespace = ED_FI) => `${namespace}/${descriptor}#${code}`;

export interface DistrictOptions {
  /** PRNG seed (default 20260).  */
  seed?: number;
  /** Students enrolled on the first day (default 600; the tests use fewer). */
  students?: number;
  /** Instructional days up to and including "today" (default 170; at most the year's). */
  instructionalDays?: number;
}

/** What one `advance()` changed, and the records it concerns (for checks and progress lines). */
export interface DistrictDay {
  date: string;
  /** Records written (inserted or replaced by id), per resource. */
  writes: { resource: DistrictResource; records: EdfiRecord[] }[];
  /** Ids deleted, per resource. */
  deletes: { resource: DistrictResource; ids: string[] }[];
  /** Natural-key changes (same id, new key values): only with `advance({ keyChange: true })`. */
  keyChanges: { resource: DistrictResource; id: string; oldKey: EdfiRecord; record: EdfiRecord }[];
  /** The day's new attendance events (school and section). */
  newEvents: { school: number; section: number };
  /** The studentSchoolAttendanceEvent whose category was corrected (same id). */
  corrected: { id: string; from: string; to: string };
  /** The studentSchoolAttendanceEvent deleted. */
  deleted: { id: string };
  /** The studentSchoolAssociation given an exitWithdrawDate. */
  withdrawn: { id: string; studentUniqueId: string; exitWithdrawDate: string };
  /** The new student (and its associations). */
  enrolled: { studentUniqueId: string; schoolId: number };
  incident: { incidentIdentifier: string; schoolId: number };
}

type Kind = 'Instructional day' | 'Make-up day' | 'Holiday' | 'Teacher only day';

interface School {
  schoolId: number;
  name: string;
  level: 'High' | 'Middle' | 'Elementary';
  grades: string[];
  share: number;
  subjects: { code: string; title: string }[];
}

const SCHOOLS: School[] = [
  {
    schoolId: 255901001,
    name: 'Grand Bend High School',
    level: 'High',
    grades: ['Ninth grade', 'Tenth grade', 'Eleventh grade', 'Twelfth grade'],
    share: 0.34,
    subjects: [
      { code: 'ALG-1', title: 'Algebra I' },
      { code: 'ENG-1', title: 'English I' },
      { code: 'BIO', title: 'Biology' },
      { code: 'WHIST', title: 'World History' },
    ],
  },
  {
    schoolId: 255901044,
    name: 'Grand Bend Middle School',
    level: 'Middle',
    grades: ['Sixth grade', 'Seventh grade', 'Eighth grade'],
    share: 0.3,
    subjects: [
      { code: 'MATH-7', title: 'Math 7' },
      { code: 'ELA-7', title: 'English Language Arts 7' },
      { code: 'SCI-7', title: 'Science 7' },
      { code: 'SS-7', title: 'Social Studies 7' },
    ],
  },
  {
    schoolId: 255901107,
    name: 'Grand Bend Elementary School',
    level: 'Elementary',
    grades: ['Kindergarten', 'First grade', 'Second grade', 'Third grade', 'Fourth grade', 'Fifth grade'],
    share: 0.36,
    subjects: [
      { code: 'ART', title: 'Art' },
      { code: 'MUSIC', title: 'Music' },
    ],
  },
];

/** Days off and special days of the 2025–2026 calendar (every other weekday is an instructional day). */
const SPECIAL_DAYS: [string, string, Kind][] = [
  ['2025-09-01', '2025-09-01', 'Holiday'], // Labor Day
  ['2025-10-13', '2025-10-13', 'Teacher only day'],
  ['2025-11-24', '2025-11-28', 'Holiday'], // Thanksgiving week
  ['2025-12-22', '2026-01-02', 'Holiday'], // winter break
  ['2026-01-19', '2026-01-19', 'Holiday'], // Martin Luther King Jr. Day
  ['2026-01-26', '2026-01-26', 'Holiday'], // snow day
  ['2026-02-16', '2026-02-16', 'Teacher only day'],
  ['2026-03-16', '2026-03-20', 'Holiday'], // spring break
  ['2026-04-03', '2026-04-03', 'Make-up day'], // for the snow day
];

const SIX_WEEKS = ['First', 'Second', 'Third', 'Fourth', 'Fifth', 'Sixth'].map((n) => `${n} Six Weeks`);
const FALL = '2025-2026 Fall Semester';
const SPRING = '2025-2026 Spring Semester';
const YEAR_ROUND = '2025-2026 Year Round';
const SPRING_BEGINS = '2026-01-05';

/**
 * Attendance categories as the district writes them: mostly the Ed-Fi defaults, some in the
 * district's own namespace (EXA, UNX, TAR: mapped by the example's small map) and a few codes
 * nobody maps (VIRT: counted unmapped).
 */
export const ATTENDANCE = {
  excused: [d('AttendanceEventCategoryDescriptor', 'Excused Absence'), d('AttendanceEventCategoryDescriptor', 'EXA', DISTRICT_NAMESPACE)],
  unexcused: [d('AttendanceEventCategoryDescriptor', 'Unexcused Absence'), d('AttendanceEventCategoryDescriptor', 'UNX', DISTRICT_NAMESPACE)],
  tardy: [d('AttendanceEventCategoryDescriptor', 'Tardy'), d('AttendanceEventCategoryDescriptor', 'TAR', DISTRICT_NAMESPACE)],
  present: [d('AttendanceEventCategoryDescriptor', 'In Attendance')],
  unmapped: [d('AttendanceEventCategoryDescriptor', 'VIRT', DISTRICT_NAMESPACE)],
} as const;

const FIRST_NAMES = [
  'Olivia',
  'Liam',
  'Emma',
  'Noah',
  'Ava',
  'Mateo',
  'Sophia',
  'Elijah',
  'Isabella',
  'Lucas',
  'Mia',
  'Levi',
  'Amelia',
  'Ezra',
  'Harper',
  'Asher',
  'Evelyn',
  'Leo',
  'Luna',
  'James',
  'Camila',
  'Aiden',
  'Sofia',
  'Jayden',
  'Aaliyah',
  'Diego',
  'Maya',
  'Wei',
  'Priya',
  'Kwame',
];
const SURNAMES = [
  'Garcia',
  'Smith',
  'Johnson',
  'Nguyen',
  'Martinez',
  'Brown',
  'Davis',
  'Lopez',
  'Wilson',
  'Anderson',
  'Thomas',
  'Hernandez',
  'Moore',
  'Jackson',
  'Patel',
  'Kim',
  'Okafor',
  'Rossi',
  'Novak',
  'Schmidt',
  'Ramirez',
  'Clark',
  'Lewis',
  'Walker',
  'Young',
];
const RACES = ['White', 'Black - African American', 'Asian', 'American Indian - Alaska Native', 'Native Hawaiian - Pacific Islander'];
const BEHAVIORS = [
  d('BehaviorDescriptor', 'School Code of Conduct'),
  d('BehaviorDescriptor', 'State Offense'),
  d('BehaviorDescriptor', 'School Violation'),
  d('BehaviorDescriptor', 'DRESS', DISTRICT_NAMESPACE),
];

const pad = (n: number, width: number) => String(n).padStart(width, '0');
const dayMs = 86_400_000;
const addDays = (iso: string, n: number) => new Date(Date.parse(`${iso}T00:00:00Z`) + n * dayMs).toISOString().slice(0, 10);
const weekday = (iso: string) => new Date(`${iso}T00:00:00Z`).getUTCDay();
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** The ODS's id of a record: 32 hex digits, fixed by its resource and natural key. */
export const recordId = (resource: DistrictResource, key: string) => md5(`${resource}|${key}`);

interface Enrolment {
  studentUniqueId: string;
  school: School;
  grade: string;
  homeroom: string;
  sections: string[];
  entryDate: string;
  exitDate?: string;
  /** Chance of a whole-day absence on a school day. */
  absenceRate: number;
  ssaId: string;
}

/** One district, its records per resource, and its days. */
export class EdfiDistrict {
  /** The last school day whose attendance is in the records. */
  today: string;
  /** Every date of the calendar with its kind (weekdays of the school year). */
  readonly calendar: { date: string; kind: Kind }[];
  private readonly random: () => number;
  private readonly tables = new Map<DistrictResource, Map<string, EdfiRecord>>();
  private readonly enrolments: Enrolment[] = [];
  private readonly sectionsOf = new Map<number, { identifier: string; code: string; homeroom: boolean; staff: string }[]>();
  private nextStudent = 0;
  private nextIncident = 0;
  private days = 0;

  constructor(opts: DistrictOptions = {}) {
    this.random = mulberry32(opts.seed ?? 20260);
    for (const r of DISTRICT_RESOURCES) this.tables.set(r, new Map());
    this.calendar = buildCalendar();
    const instructional = this.calendar.filter((c) => isInstructional(c.kind));
    const n = Math.max(1, Math.min(opts.instructionalDays ?? 170, instructional.length));
    this.today = instructional[n - 1]!.date;
    this.build(opts.students ?? 600);
  }

  /** The records of a resource as the ODS holds them now (do not change them: they are the district's). */
  records(resource: DistrictResource): readonly EdfiRecord[] {
    return [...this.tables.get(resource)!.values()];
  }

  /** The instructional days (and make-up days) up to and including today. */
  schoolDays(): string[] {
    return this.calendar.filter((c) => isInstructional(c.kind) && c.date <= this.today).map((c) => c.date);
  }

  // ── the first day's state, then every school day up to today ─────────────────────────────

  private build(studentCount: number): void {
    const stamp = `${FIRST_DAY}T05:00:00Z`;
    this.put('localEducationAgencies', `${LEA_ID}`, stamp, {
      localEducationAgencyId: LEA_ID,
      nameOfInstitution: 'Grand Bend ISD',
      localEducationAgencyCategoryDescriptor: d('LocalEducationAgencyCategoryDescriptor', 'Independent'),
      categories: [{ educationOrganizationCategoryDescriptor: d('EducationOrganizationCategoryDescriptor', 'Local Education Agency') }],
    });
    for (const s of SCHOOLS) {
      this.put('schools', `${s.schoolId}`, stamp, {
        schoolId: s.schoolId,
        nameOfInstitution: s.name,
        localEducationAgencyReference: { localEducationAgencyId: LEA_ID },
        schoolCategories: [{ schoolCategoryDescriptor: d('SchoolCategoryDescriptor', `${s.level} School`) }],
        gradeLevels: s.grades.map((g) => ({ gradeLevelDescriptor: d('GradeLevelDescriptor', g) })),
        educationOrganizationCategories: [{ educationOrganizationCategoryDescriptor: d('EducationOrganizationCategoryDescriptor', 'School') }],
        addresses: [
          {
            addressTypeDescriptor: d('AddressTypeDescriptor', 'Physical'),
            streetNumberName: `${100 + (s.schoolId % 1000)} School Road`,
            city: 'Grand Bend',
            stateAbbreviationDescriptor: d('StateAbbreviationDescriptor', 'TX'),
            postalCode: '78834',
            periods: [],
          },
        ],
      });
      this.buildCalendar(s, stamp);
      this.buildSections(s, studentCount, stamp);
    }
    // students, spread over the schools by share
    for (const s of SCHOOLS) {
      const n = Math.round(studentCount * s.share);
      for (let i = 0; i < n; i++) this.enrol(s, FIRST_DAY, stamp);
    }
    // withdrawals during the year: about 3 % of students, on a school day before today
    const days = this.schoolDays();
    for (const e of this.enrolments) {
      if (this.random() < 0.03 && days.length > 10) {
        const at = days[5 + Math.floor(this.random() * (days.length - 6))]!;
        this.withdraw(e, at, `${at}T16:00:00Z`);
      }
    }
    // a few late entries (students enrolled after the first day)
    for (let i = 0; i < Math.max(1, Math.round(studentCount / 100)) && days.length > 20; i++) {
      const at = days[10 + Math.floor(this.random() * (days.length - 11))]!;
      this.enrol(SCHOOLS[i % SCHOOLS.length]!, at, `${at}T07:30:00Z`);
    }
    for (const day of days) this.schoolDay(day);
  }

  private buildCalendar(s: School, stamp: string): void {
    const calendarReference = { calendarCode: calendarCode(s), schoolId: s.schoolId, schoolYear: SCHOOL_YEAR };
    for (const c of this.calendar) {
      this.put('calendarDates', `${calendarReference.calendarCode}|${c.date}`, stamp, {
        calendarReference,
        date: c.date,
        calendarEvents: [{ calendarEventDescriptor: d('CalendarEventDescriptor', c.kind) }],
      });
    }
    // six grading periods of about six weeks each, over the instructional days
    const instructional = this.calendar.filter((c) => isInstructional(c.kind)).map((c) => c.date);
    const per = Math.ceil(instructional.length / SIX_WEEKS.length);
    const periods = SIX_WEEKS.map((name, i) => {
      const days = instructional.slice(i * per, (i + 1) * per);
      const record = {
        gradingPeriodDescriptor: d('GradingPeriodDescriptor', name),
        gradingPeriodName: `${SCHOOL_YEAR} ${name}`,
        schoolReference: { schoolId: s.schoolId },
        schoolYearTypeReference: { schoolYear: SCHOOL_YEAR },
        beginDate: days[0]!,
        endDate: days.at(-1)!,
        periodSequence: i + 1,
        totalInstructionalDays: days.length,
      };
      this.put('gradingPeriods', `${s.schoolId}|${name}`, stamp, record);
      return record;
    });
    const ref = (p: EdfiRecord) => ({
      gradingPeriodReference: { gradingPeriodDescriptor: p.gradingPeriodDescriptor, gradingPeriodName: p.gradingPeriodName, schoolId: s.schoolId, schoolYear: SCHOOL_YEAR },
    });
    const session = (name: string, term: string, begin: string, end: string, gradingPeriods: EdfiRecord[]) =>
      this.put('sessions', `${s.schoolId}|${name}`, stamp, {
        sessionName: name,
        schoolReference: { schoolId: s.schoolId },
        schoolYearTypeReference: { schoolYear: SCHOOL_YEAR },
        beginDate: begin,
        endDate: end,
        termDescriptor: d('TermDescriptor', term),
        totalInstructionalDays: instructional.filter((x) => x >= begin && x <= end).length,
        gradingPeriods: gradingPeriods.map(ref),
      });
    session(FALL, 'Fall Semester', FIRST_DAY, addDays(SPRING_BEGINS, -3), periods.slice(0, 3));
    session(SPRING, 'Spring Semester', SPRING_BEGINS, LAST_DAY, periods.slice(3));
    session(YEAR_ROUND, 'Year Round', FIRST_DAY, LAST_DAY, periods);
  }

  private buildSections(s: School, studentCount: number, stamp: string): void {
    const students = Math.round(studentCount * s.share);
    const homerooms = Math.max(1, Math.ceil(students / 25));
    const perSubject = Math.max(1, Math.ceil(students / 30));
    const sections: { identifier: string; code: string; title: string; homeroom: boolean }[] = [];
    for (let h = 1; h <= homerooms; h++) sections.push({ identifier: `${s.schoolId}-HR-${pad(h, 2)}`, code: 'HR', title: `Homeroom ${h}`, homeroom: true });
    for (const subject of s.subjects) {
      for (let k = 1; k <= perSubject; k++) sections.push({ identifier: `${s.schoolId}-${subject.code}-${pad(k, 2)}`, code: subject.code, title: `${subject.title} (${k})`, homeroom: false });
    }
    // teachers: about one per two and a half sections; each homeroom's teacher also teaches a subject
    const teachers = Math.max(1, Math.ceil(sections.length / 2.5));
    const staffIds: string[] = [];
    const staff = (uniqueId: string) => {
      const first = FIRST_NAMES[Math.floor(this.random() * FIRST_NAMES.length)]!;
      const last = SURNAMES[Math.floor(this.random() * SURNAMES.length)]!;
      this.put('staffs', uniqueId, stamp, { staffUniqueId: uniqueId, firstName: first, lastSurname: last });
    };
    staff(`${s.schoolId}-P`); // the principal: no section
    for (let t = 1; t <= teachers; t++) {
      const id = `${String(s.schoolId).slice(-3)}${pad(t, 3)}`;
      staffIds.push(id);
      staff(id);
    }
    const list: { identifier: string; code: string; homeroom: boolean; staff: string }[] = [];
    sections.forEach((section, i) => {
      const teacher = staffIds[i % staffIds.length]!;
      const courseOfferingReference = { localCourseCode: section.code, schoolId: s.schoolId, schoolYear: SCHOOL_YEAR, sessionName: YEAR_ROUND };
      this.put('sections', `${s.schoolId}|${section.identifier}`, stamp, {
        sectionIdentifier: section.identifier,
        courseOfferingReference,
        sectionName: section.title,
        ...(section.homeroom ? {} : { availableCreditTypeDescriptor: d('CreditTypeDescriptor', 'Carnegie unit') }),
        ...(i % 3 === 0 ? { locationReference: { classroomIdentificationCode: `R${100 + i}`, schoolId: s.schoolId } } : {}),
      });
      this.put('staffSectionAssociations', `${s.schoolId}|${section.identifier}|${teacher}`, stamp, {
        sectionReference: sectionReference(s, section.identifier, section.code),
        staffReference: { staffUniqueId: teacher },
        classroomPositionDescriptor: d('ClassroomPositionDescriptor', 'Teacher of Record'),
        beginDate: FIRST_DAY,
        endDate: LAST_DAY,
      });
      list.push({ identifier: section.identifier, code: section.code, homeroom: section.homeroom, staff: teacher });
    });
    this.sectionsOf.set(s.schoolId, list);
  }

  /** A new student at school `s` from `entryDate`: student, demographics, school and section associations. */
  private enrol(s: School, entryDate: string, stamp: string): Enrolment {
    const k = this.nextStudent++;
    const studentUniqueId = String(604_000 + k);
    const r = this.random;
    const gradeIndex = Math.floor(r() * s.grades.length);
    const grade = s.grades[gradeIndex]!;
    const age = { High: 14, Middle: 11, Elementary: 5 }[s.level] + gradeIndex;
    const birth = addDays(`${SCHOOL_YEAR - 1 - age}-09-01`, -Math.floor(r() * 365));
    this.put('students', studentUniqueId, stamp, {
      studentUniqueId,
      firstName: FIRST_NAMES[Math.floor(r() * FIRST_NAMES.length)]!,
      lastSurname: SURNAMES[Math.floor(r() * SURNAMES.length)]!,
      birthDate: birth,
    });
    const races = [RACES[Math.floor(r() * RACES.length)]!];
    if (r() < 0.08) races.push(RACES[(RACES.indexOf(races[0]!) + 1) % RACES.length]!);
    const characteristics: string[] = [];
    if (r() < 0.45) characteristics.push('Economic Disadvantaged');
    if (r() < 0.04) characteristics.push('Homeless');
    if (r() < 0.02) characteristics.push('Migrant');
    const indicators = r() < 0.1 ? [{ indicatorName: 'Gifted/Talented', indicator: 'Yes' }] : undefined;
    this.put('studentEducationOrganizationAssociations', `${LEA_ID}|${studentUniqueId}`, stamp, {
      educationOrganizationReference: { educationOrganizationId: LEA_ID },
      studentReference: { studentUniqueId },
      sexDescriptor: d('SexDescriptor', r() < 0.5 ? 'Female' : 'Male'),
      hispanicLatinoEthnicity: r() < 0.3,
      races: races.map((x) => ({ raceDescriptor: d('RaceDescriptor', x) })),
      limitedEnglishProficiencyDescriptor: d('LimitedEnglishProficiencyDescriptor', r() < 0.12 ? 'Limited' : 'NotLimited'),
      studentCharacteristics: characteristics.map((x) => ({ studentCharacteristicDescriptor: d('StudentCharacteristicDescriptor', x), periods: [] })),
      ...(indicators ? { studentIndicators: indicators } : {}),
    });
    const ssaId = this.put('studentSchoolAssociations', `${s.schoolId}|${studentUniqueId}|${entryDate}`, stamp, {
      schoolReference: { schoolId: s.schoolId },
      studentReference: { studentUniqueId },
      entryDate,
      entryGradeLevelDescriptor: d('GradeLevelDescriptor', grade),
      calendarReference: { calendarCode: calendarCode(s), schoolId: s.schoolId, schoolYear: SCHOOL_YEAR },
      schoolYearTypeReference: { schoolYear: SCHOOL_YEAR },
    });
    const sections = this.sectionsOf.get(s.schoolId)!;
    const homerooms = sections.filter((x) => x.homeroom);
    const homeroom = homerooms[k % homerooms.length]!;
    const chosen = [homeroom];
    for (const code of new Set(sections.filter((x) => !x.homeroom).map((x) => x.code))) {
      const options = sections.filter((x) => x.code === code);
      chosen.push(options[Math.floor(r() * options.length)]!);
    }
    for (const section of chosen) {
      this.put('studentSectionAssociations', `${s.schoolId}|${section.identifier}|${studentUniqueId}|${entryDate}`, stamp, {
        sectionReference: sectionReference(s, section.identifier, section.code),
        studentReference: { studentUniqueId },
        beginDate: entryDate,
        endDate: LAST_DAY,
        homeroomIndicator: section.homeroom,
      });
    }
    // most students miss a few days; about one in ten is chronically absent (≥ 10 % of days)
    const chronic = r() < 0.1;
    const absenceRate = chronic ? 0.11 + r() * 0.14 : r() * 0.06;
    const e: Enrolment = { studentUniqueId, school: s, grade, homeroom: homeroom.identifier, sections: chosen.map((x) => x.identifier), entryDate, absenceRate, ssaId };
    this.enrolments.push(e);
    return e;
  }

  private withdraw(e: Enrolment, date: string, stamp: string): EdfiRecord {
    e.exitDate = date;
    const record = structuredClone(this.tables.get('studentSchoolAssociations')!.get(e.ssaId)!);
    record.exitWithdrawDate = date;
    record.exitWithdrawTypeDescriptor = d('ExitWithdrawTypeDescriptor', this.random() < 0.7 ? 'Transferred' : 'Withdrawn');
    return this.replace('studentSchoolAssociations', record, stamp);
  }

  /** Attendance of one school day: absences and tardies (few "In Attendance" records), and some section-only absences. */
  private schoolDay(day: string, incidents = true): { school: number; section: number } {
    const r = this.random;
    const stamp = `${day}T15:30:00Z`;
    let school = 0;
    let section = 0;
    const session = day < SPRING_BEGINS ? FALL : SPRING;
    for (const e of this.enrolments) {
      if (day < e.entryDate || (e.exitDate !== undefined && day > e.exitDate)) continue;
      const x = r();
      let category: string | undefined;
      if (x < e.absenceRate) category = r() < 0.55 ? this.spell('excused') : this.spell('unexcused');
      else if (x < e.absenceRate + 0.02) category = this.spell('tardy');
      else if (x < e.absenceRate + 0.025) category = ATTENDANCE.present[0];
      if (category) {
        this.put('studentSchoolAttendanceEvents', `${e.school.schoolId}|${e.studentUniqueId}|${day}`, stamp, {
          schoolReference: { schoolId: e.school.schoolId },
          sessionReference: { schoolId: e.school.schoolId, schoolYear: SCHOOL_YEAR, sessionName: session },
          studentReference: { studentUniqueId: e.studentUniqueId },
          eventDate: day,
          attendanceEventCategoryDescriptor: category,
        });
        school++;
      } else if (e.sections.length > 1 && r() < 0.008) {
        // in school, but missed one class
        const identifier = e.sections[1 + Math.floor(r() * (e.sections.length - 1))]!;
        const code = this.sectionsOf.get(e.school.schoolId)!.find((s) => s.identifier === identifier)!.code;
        this.put('studentSectionAttendanceEvents', `${identifier}|${e.studentUniqueId}|${day}`, stamp, {
          sectionReference: sectionReference(e.school, identifier, code),
          studentReference: { studentUniqueId: e.studentUniqueId },
          eventDate: day,
          attendanceEventCategoryDescriptor: r() < 0.5 ? this.spell('unexcused') : this.spell('tardy'),
        });
        section++;
      }
    }
    // about one discipline incident every third day
    if (incidents && r() < 0.33) this.incident(day);
    this.days++;
    return { school, section };
  }

  /** A category as the district writes it: 85 % the Ed-Fi default, else its own code; now and then a code nobody maps. */
  private spell(meaning: 'excused' | 'unexcused' | 'tardy'): string {
    const x = this.random();
    if (x < 0.01) return ATTENDANCE.unmapped[0];
    return x < 0.86 ? ATTENDANCE[meaning][0] : ATTENDANCE[meaning][1];
  }

  private incident(day: string, school?: School): { incidentIdentifier: string; schoolId: number } {
    const r = this.random;
    const s = school ?? SCHOOLS[Math.floor(r() * SCHOOLS.length)]!;
    const incidentIdentifier = `INC-${pad(++this.nextIncident, 5)}`;
    const behaviors = [BEHAVIORS[Math.floor(r() * BEHAVIORS.length)]!];
    const stamp = `${day}T17:00:00Z`;
    this.put('disciplineIncidents', `${s.schoolId}|${incidentIdentifier}`, stamp, {
      incidentIdentifier,
      schoolReference: { schoolId: s.schoolId },
      incidentDate: day,
      behaviors: behaviors.map((behaviorDescriptor) => ({ behaviorDescriptor })),
    });
    const present = this.enrolments.filter((e) => e.school === s && day >= e.entryDate && (e.exitDate === undefined || day <= e.exitDate));
    const involved = new Set<Enrolment>();
    const n = 1 + (r() < 0.3 ? 1 : 0);
    while (present.length > 0 && involved.size < Math.min(n, present.length)) involved.add(present[Math.floor(r() * present.length)]!);
    for (const e of involved) {
      this.put('studentDisciplineIncidentBehaviorAssociations', `${s.schoolId}|${incidentIdentifier}|${e.studentUniqueId}|${behaviors[0]}`, stamp, {
        disciplineIncidentReference: { incidentIdentifier, schoolId: s.schoolId },
        studentReference: { studentUniqueId: e.studentUniqueId },
        behaviorDescriptor: behaviors[0]!,
      });
    }
    return { incidentIdentifier, schoolId: s.schoolId };
  }

  // ── the next day ──────────────────────────────────────────────────────────────────────────

  /**
   * Move to the next instructional day and return its changes: the day's attendance events, one
   * corrected event (category changed, same id), one deleted event, one withdrawal, one new
   * enrolment, one discipline incident; with `keyChange`, one studentSchoolAssociation's entryDate
   * corrected (same id, new key values).
   */
  advance(opts: { keyChange?: boolean } = {}): DistrictDay {
    const next = this.calendar.find((c) => c.date > this.today && isInstructional(c.kind));
    if (!next) throw new Error(`the school year ${SCHOOL_YEAR} ends on ${LAST_DAY}: no school day after ${this.today}`);
    const date = next.date;
    const stamp = `${date}T16:00:00Z`;
    const touched = new Map<DistrictResource, Map<string, EdfiRecord>>();
    const before = new Map(DISTRICT_RESOURCES.map((r) => [r, new Map(this.tables.get(r)!)]));
    const r = this.random;

    // a correction of an earlier day: an unexcused absence was excused after all (same id)
    const events = this.records('studentSchoolAttendanceEvents');
    const unexcused = events.filter((e) => (ATTENDANCE.unexcused as readonly string[]).includes(e.attendanceEventCategoryDescriptor));
    if (unexcused.length === 0) throw new Error('the district has no unexcused absence to correct yet: generate more students or days');
    const toCorrect = unexcused[Math.floor(r() * unexcused.length)]!;
    const corrected: EdfiRecord = { ...structuredClone(toCorrect), attendanceEventCategoryDescriptor: ATTENDANCE.excused[0] };
    this.replace('studentSchoolAttendanceEvents', corrected, stamp);
    // an event recorded in error: deleted (never the corrected one)
    const deletable = events.filter((e) => e.id !== toCorrect.id && (ATTENDANCE.tardy as readonly string[]).includes(e.attendanceEventCategoryDescriptor));
    if (deletable.length === 0) throw new Error('the district has no tardy to delete yet: generate more students or days');
    const toDelete = deletable[Math.floor(r() * deletable.length)]!;
    this.tables.get('studentSchoolAttendanceEvents')!.delete(toDelete.id);

    // a withdrawal (as of today) and a new enrolment (from today)
    const enrolled = this.enrolments.filter((e) => e.exitDate === undefined && e.entryDate < date);
    const leaving = enrolled[Math.floor(r() * enrolled.length)]!;
    const withdrawn = this.withdraw(leaving, date, stamp);
    const school = SCHOOLS[this.days % SCHOOLS.length]!;
    const newcomer = this.enrol(school, date, `${date}T07:30:00Z`);

    // the key change (served by serveDay through the stand-in's changeKey): a studentSchoolAssociation's entryDate was entered wrong
    const keyChanges: DistrictDay['keyChanges'] = [];
    if (opts.keyChange) {
      const candidates = this.enrolments.filter((e) => e !== newcomer && e !== leaving && e.entryDate === FIRST_DAY && e.exitDate === undefined);
      const e = candidates[Math.floor(r() * candidates.length)]!;
      const old = this.tables.get('studentSchoolAssociations')!.get(e.ssaId)!;
      const record = { ...structuredClone(old), entryDate: addDays(FIRST_DAY, 1) };
      e.entryDate = record.entryDate;
      keyChanges.push({
        resource: 'studentSchoolAssociations',
        id: e.ssaId,
        oldKey: { entryDate: old.entryDate, schoolId: e.school.schoolId, studentUniqueId: e.studentUniqueId },
        record: this.replace('studentSchoolAssociations', record, stamp),
      });
    }

    const counts = this.schoolDay(date, false);
    const incident = this.incident(date, school);
    this.today = date;

    // the writes: every record new or changed since `before` (ids kept, key-changed records aside)
    const keyChanged = new Set(keyChanges.map((k) => k.id));
    for (const resource of DISTRICT_RESOURCES) {
      const was = before.get(resource)!;
      for (const [id, record] of this.tables.get(resource)!) {
        if (was.get(id) !== record && !keyChanged.has(id)) {
          if (!touched.has(resource)) touched.set(resource, new Map());
          touched.get(resource)!.set(id, record);
        }
      }
    }
    return {
      date,
      writes: [...touched].map(([resource, records]) => ({ resource, records: [...records.values()] })),
      deletes: [{ resource: 'studentSchoolAttendanceEvents', ids: [toDelete.id] }],
      keyChanges,
      newEvents: counts,
      corrected: { id: corrected.id, from: toCorrect.attendanceEventCategoryDescriptor, to: corrected.attendanceEventCategoryDescriptor },
      deleted: { id: toDelete.id },
      withdrawn: { id: withdrawn.id, studentUniqueId: leaving.studentUniqueId, exitWithdrawDate: date },
      enrolled: { studentUniqueId: newcomer.studentUniqueId, schoolId: school.schoolId },
      incident,
    };
  }

  // ── records ───────────────────────────────────────────────────────────────────────────────

  /** Add a record under its natural key's id; returns the id. */
  private put(resource: DistrictResource, key: string, stamp: string, fields: EdfiRecord): string {
    const id = recordId(resource, key);
    const record = { id, ...fields, _etag: etag(id, stamp), _lastModifiedDate: stamp };
    this.tables.get(resource)!.set(id, record);
    return id;
  }

  /** Replace a record (same id) with new values; returns the stored record. */
  private replace(resource: DistrictResource, record: EdfiRecord, stamp: string): EdfiRecord {
    const stored: EdfiRecord = { ...record, _etag: etag(record.id as string, stamp + JSON.stringify(record)), _lastModifiedDate: stamp };
    this.tables.get(resource)!.set(stored.id as string, stored);
    return stored;
  }
}

function etag(id: string, salt: string): string {
  return String(parseInt(md5(`${id}|${salt}`).slice(0, 12), 16));
}

function calendarCode(s: School): string {
  return `${s.schoolId}_${SCHOOL_YEAR}`;
}

function sectionReference(s: School, sectionIdentifier: string, localCourseCode: string) {
  return { localCourseCode, schoolId: s.schoolId, schoolYear: SCHOOL_YEAR, sectionIdentifier, sessionName: YEAR_ROUND };
}

const isInstructional = (kind: Kind) => kind === 'Instructional day' || kind === 'Make-up day';

function buildCalendar(): { date: string; kind: Kind }[] {
  const out: { date: string; kind: Kind }[] = [];
  for (let date = FIRST_DAY; date <= LAST_DAY; date = addDays(date, 1)) {
    const wd = weekday(date);
    if (wd === 0 || wd === 6) continue;
    const special = SPECIAL_DAYS.find(([from, to]) => date >= from && date <= to);
    out.push({ date, kind: special ? special[2] : 'Instructional day' });
  }
  return out;
}

/** A generated district (see EdfiDistrict). */
export function generateDistrict(opts: DistrictOptions = {}): EdfiDistrict {
  return new EdfiDistrict(opts);
}

/** Write every record of the district into a stand-in ODS (copies: the stand-in keeps what it is given). */
export function serveDistrict(server: EdfiServer, district: EdfiDistrict): number {
  let n = 0;
  for (const resource of DISTRICT_RESOURCES) {
    const records = district.records(resource).map((r) => structuredClone(r));
    server.write(resource, records);
    n += records.length;
  }
  return n;
}

/**
 * Apply a day's changes to a stand-in ODS: its writes, its deletes, and its key changes (the same
 * `id` under new natural-key values, served at `<resource>/keyChanges`). Returns what was applied.
 */
export function serveDay(server: EdfiServer, day: DistrictDay): { written: number; deleted: number; keyChanges: number } {
  let written = 0;
  for (const w of day.writes) {
    server.write(
      w.resource,
      w.records.map((r) => structuredClone(r)),
    );
    written += w.records.length;
  }
  let deleted = 0;
  for (const x of day.deletes) {
    server.remove(x.resource, x.ids);
    deleted += x.ids.length;
  }
  for (const k of day.keyChanges) server.changeKey(k.resource, String(k.record.id), structuredClone(k.record));
  return { written, deleted, keyChanges: day.keyChanges.length };
}
