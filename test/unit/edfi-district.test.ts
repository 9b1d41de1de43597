import { describe, expect, it } from 'vitest';
import { DISTRICT_RESOURCES, generateDistrict, type EdfiRecord } from '../../local/edfi-district.ts';

/** The generated Ed-Fi district, as the spec the example's views are written against describes it. */
describe('the generated Ed-Fi district', () => {
  const district = generateDistrict();
  const all = (r: (typeof DISTRICT_RESOURCES)[number]) => district.records(r);

  it('is the same, record for record, for the same options, and another for another seed', () => {
    const dump = (seed?: number) => JSON.stringify(DISTRICT_RESOURCES.map((r) => generateDistrict({ students: 50, instructionalDays: 20, seed }).records(r)));
    expect(dump()).toBe(dump());
    expect(dump(1)).not.toBe(dump());
  });

  it('has one LEA, three schools, about 600 students, 40 staff and 90 sections, 170 school days to today', () => {
    expect(all('localEducationAgencies')).toHaveLength(1);
    expect(all('schools').map((s) => s.schoolCategories[0].schoolCategoryDescriptor.split('#')[1])).toEqual(['High School', 'Middle School', 'Elementary School']);
    expect(all('students').length).toBeGreaterThanOrEqual(590);
    expect(all('students').length).toBeLessThanOrEqual(620);
    expect(all('staffs').length).toBeGreaterThanOrEqual(35);
    expect(all('staffs').length).toBeLessThanOrEqual(45);
    expect(all('sections').length).toBeGreaterThanOrEqual(80);
    expect(all('sections').length).toBeLessThanOrEqual(100);
    const schoolDays = new Set(
      all('calendarDates')
        .filter((c) => /#(Instructional day|Make-up day)$/.test(c.calendarEvents[0].calendarEventDescriptor) && c.date <= district.today)
        .map((c) => c.date),
    );
    expect(schoolDays.size).toBe(170);
    expect(district.today > '2025-08-18' && district.today < '2026-05-29').toBe(true);
  });

  it('serves ids of 32 hex digits, unique per resource, with _etag and _lastModifiedDate', () => {
    for (const r of DISTRICT_RESOURCES) {
      const ids = all(r).map((x) => x.id as string);
      expect(
        ids.every((id) => /^[0-9a-f]{32}$/.test(id)),
        r,
      ).toBe(true);
      expect(new Set(ids).size, r).toBe(ids.length);
      expect(
        all(r).every((x) => typeof x._etag === 'string' && /^\d{4}-\d\d-\d\dT/.test(x._lastModifiedDate)),
        r,
      ).toBe(true);
    }
  });

  it('records absences and tardies (few "In Attendance"), on school days up to today only; about one student in ten chronically absent', () => {
    const events = all('studentSchoolAttendanceEvents');
    const codes = (e: EdfiRecord) => (e.attendanceEventCategoryDescriptor as string).split('#')[1]!;
    const present = events.filter((e) => codes(e) === 'In Attendance').length;
    expect(present / events.length).toBeLessThan(0.1);
    const calendar = new Map(
      all('calendarDates')
        .filter((c) => c.calendarReference.schoolId === 255901001)
        .map((c) => [c.date, c.calendarEvents[0].calendarEventDescriptor as string]),
    );
    expect(events.every((e) => e.eventDate <= district.today && /#(Instructional day|Make-up day)$/.test(calendar.get(e.eventDate) ?? ''))).toBe(true);
    // per student: absences over the school days enrolled
    const days = [...calendar].filter(([date, kind]) => date <= district.today && /#(Instructional day|Make-up day)$/.test(kind)).map(([date]) => date);
    const enrolled = new Map(
      all('studentSchoolAssociations').map((a) => [a.studentReference.studentUniqueId as string, days.filter((d) => d >= a.entryDate && (!a.exitWithdrawDate || d <= a.exitWithdrawDate)).length]),
    );
    const absences = new Map<string, number>();
    for (const e of events) if (/Absence|#EXA|#UNX/.test(e.attendanceEventCategoryDescriptor)) absences.set(e.studentReference.studentUniqueId, (absences.get(e.studentReference.studentUniqueId) ?? 0) + 1);
    const chronic = [...enrolled].filter(([id, n]) => n >= 20 && (absences.get(id) ?? 0) / n >= 0.1).length;
    expect(chronic / enrolled.size).toBeGreaterThan(0.05);
    expect(chronic / enrolled.size).toBeLessThan(0.2);
    // the district's own codes, and a handful nobody maps
    expect(events.filter((e) => e.attendanceEventCategoryDescriptor.startsWith('uri://grandbend.edu/')).length).toBeGreaterThan(events.length * 0.05);
    expect(events.filter((e) => codes(e) === 'VIRT').length).toBeGreaterThan(0);
  });

  it('gives every student one homeroom, has some withdrawals mid-year and some section-only absences', () => {
    const homerooms = new Map<string, number>();
    for (const a of all('studentSectionAssociations')) if (a.homeroomIndicator) homerooms.set(a.studentReference.studentUniqueId, (homerooms.get(a.studentReference.studentUniqueId) ?? 0) + 1);
    expect(homerooms.size).toBe(all('students').length);
    expect([...homerooms.values()].every((n) => n === 1)).toBe(true);
    expect(all('studentSchoolAssociations').filter((a) => a.exitWithdrawDate).length).toBeGreaterThan(5);
    const schoolEvents = new Set(all('studentSchoolAttendanceEvents').map((e) => `${e.studentReference.studentUniqueId}|${e.eventDate}`));
    const sectionOnly = all('studentSectionAttendanceEvents').filter((e) => !schoolEvents.has(`${e.studentReference.studentUniqueId}|${e.eventDate}`));
    expect(sectionOnly.length).toBeGreaterThan(50);
  });

  it("advance(): the next school day's events, one corrected event, one deleted, one withdrawal, one enrolment, one incident", () => {
    const d = generateDistrict({ students: 80, instructionalDays: 30 });
    const before = new Map(DISTRICT_RESOURCES.map((r) => [r, new Map(d.records(r).map((x) => [x.id as string, x]))]));
    const day = d.advance();
    const after = (r: (typeof DISTRICT_RESOURCES)[number]) => new Map(d.records(r).map((x) => [x.id as string, x]));
    expect(day.date > '2025-09-29').toBe(true);
    expect(d.today).toBe(day.date);
    const events = after('studentSchoolAttendanceEvents');
    expect(before.get('studentSchoolAttendanceEvents')!.has(day.deleted.id)).toBe(true);
    expect(events.has(day.deleted.id)).toBe(false);
    expect(day.deletes).toEqual([{ resource: 'studentSchoolAttendanceEvents', ids: [day.deleted.id] }]);
    expect(before.get('studentSchoolAttendanceEvents')!.get(day.corrected.id)!.attendanceEventCategoryDescriptor).toBe(day.corrected.from);
    expect(events.get(day.corrected.id)!.attendanceEventCategoryDescriptor).toBe(day.corrected.to);
    expect([...events.values()].filter((e) => e.eventDate === day.date)).toHaveLength(day.newEvents.school);
    expect(after('studentSchoolAssociations').get(day.withdrawn.id)!.exitWithdrawDate).toBe(day.date);
    expect(after('students').size).toBe(before.get('students')!.size + 1);
    expect(after('disciplineIncidents').size).toBe(before.get('disciplineIncidents')!.size + 1);
    // the writes are exactly the records new or changed
    for (const r of DISTRICT_RESOURCES) {
      const changed = [...after(r)]
        .filter(([id, x]) => before.get(r)!.get(id) !== x)
        .map(([id]) => id)
        .sort();
      expect((day.writes.find((w) => w.resource === r)?.records ?? []).map((x) => x.id as string).sort(), r).toEqual(changed);
    }
    expect(day.keyChanges).toEqual([]);
  });

  it('advance({ keyChange: true }): one studentSchoolAssociation keeps its id with a new entryDate', () => {
    const d = generateDistrict({ students: 80, instructionalDays: 30 });
    const day = d.advance({ keyChange: true });
    expect(day.keyChanges).toHaveLength(1);
    const k = day.keyChanges[0]!;
    expect(k.record.id).toBe(k.id);
    expect(k.record.entryDate).not.toBe(k.oldKey.entryDate);
    expect(d.records('studentSchoolAssociations').find((a) => a.id === k.id)!.entryDate).toBe(k.record.entryDate);
  });
});
