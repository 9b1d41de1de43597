#!/usr/bin/env python3
"""
Independent figures for the AMT-equivalent views of the Ed-Fi example (pipelines/edfi/pipeline.yaml),
computed from the raw Ed-Fi records with the Python standard library only: no civic-etl code, no SQL.

Input (argv[1]): a JSON file
  {"records": {"<resource>": [ {...Ed-Fi record...}, ... ], ...},
   "maps": ["<descriptor map file: constantName, descriptor, codeValue rows, JSON or CSV>", ...],
   "today": "YYYY-MM-DD"}
Output (stdout): a JSON object of figures, keyed as the test compares them.

The rules follow the Analytics Middle Tier's published view definitions, as the views do:
- a descriptor belongs to a constant when the map has (its descriptor name, its code value),
  compared ignoring case and surrounding spaces, whatever the URI's namespace; one descriptor
  may belong to several constants ("Excused Absence" is an absence and an excused absence);
- a student-school's days are the calendar dates of its school from the entry date through the
  exit-withdraw date (inclusive), up to the "as of" date: the latest date with attendance
  reported (school or section), or today if earlier;
- instructional days are dates with a calendar event in CalendarEvent.InstructionalDay.
"""
import csv
import json
import sys
from collections import defaultdict


def load_map(path):
    if path.lower().endswith('.csv'):
        with open(path, newline='', encoding='utf-8-sig') as f:
            rows = list(csv.DictReader(f))
    else:
        with open(path, encoding='utf-8') as f:
            rows = json.load(f)
    out = defaultdict(set)
    for row in rows:
        fields = {k.replace('_', '').replace(' ', '').lower(): v for k, v in row.items()}
        descriptor = fields['descriptor'].strip().split('#')[0].rstrip('/').split('/')[-1].lower()
        out[(descriptor, fields['codevalue'].strip().lower())].add(fields['constantname'].strip())
    return out


def parse_descriptor(value, default_descriptor):
    value = (value or '').strip()
    if '://' in value and '#' in value:
        head, code = value.split('#', 1)
        return head.split('/')[-1].lower(), code.strip().lower()
    return default_descriptor.lower(), value.lower()


def main():
    with open(sys.argv[1], encoding='utf-8') as f:
        spec = json.load(f)
    records = spec['records']
    desc_map = defaultdict(set)
    for path in spec['maps']:
        for key, constants in load_map(path).items():
            desc_map[key] |= constants

    def constants(value, descriptor):
        return desc_map.get(parse_descriptor(value, descriptor), set())

    def get(resource):
        return records.get(resource, [])

    event_dates = [e['eventDate'] for e in get('studentSchoolAttendanceEvents')] + [e['eventDate'] for e in get('studentSectionAttendanceEvents')]
    as_of = min([spec['today']] + ([max(event_dates)] if event_dates else []))

    # calendar: per school, date -> instructional?
    calendar = defaultdict(dict)
    for c in get('calendarDates'):
        school = c['calendarReference']['schoolId']
        instructional = any('CalendarEvent.InstructionalDay' in constants(e.get('calendarEventDescriptor'), 'CalendarEventDescriptor') for e in c.get('calendarEvents', []))
        calendar[school][c['date']] = calendar[school].get(c['date'], False) or instructional

    # enrolment: (student, school) -> set of enrolled calendar dates up to as_of
    enrolled = defaultdict(set)
    for a in get('studentSchoolAssociations'):
        student, school = a['studentReference']['studentUniqueId'], a['schoolReference']['schoolId']
        exit_date = a.get('exitWithdrawDate')
        for d in calendar.get(school, {}):
            if a['entryDate'] <= d <= as_of and (not exit_date or d <= exit_date):
                enrolled[(student, school)].add(d)

    # school attendance: (student, school, date) -> set of constants
    school_events = defaultdict(set)
    for e in get('studentSchoolAttendanceEvents'):
        key = (e['studentReference']['studentUniqueId'], e['schoolReference']['schoolId'], e['eventDate'])
        school_events[key] |= constants(e['attendanceEventCategoryDescriptor'], 'AttendanceEventCategoryDescriptor')

    # homeroom sections per student
    def section_key(ref):
        return (ref['localCourseCode'], ref['schoolId'], ref['schoolYear'], ref['sectionIdentifier'], ref['sessionName'])

    homeroom = set()
    for a in get('studentSectionAssociations'):
        if a.get('homeroomIndicator'):
            homeroom.add((a['studentReference']['studentUniqueId'], section_key(a['sectionReference'])))

    section_events = defaultdict(set)  # (student, school, date) -> constants in any section
    homeroom_events = defaultdict(set)
    for e in get('studentSectionAttendanceEvents'):
        student, ref = e['studentReference']['studentUniqueId'], e['sectionReference']
        key = (student, ref['schoolId'], e['eventDate'])
        c = constants(e['attendanceEventCategoryDescriptor'], 'AttendanceEventCategoryDescriptor')
        section_events[key] |= c
        if (student, section_key(ref)) in homeroom:
            homeroom_events[key] |= c

    # discipline: (student, school, date) -> behaviour constants
    incident_dates = {(i['incidentIdentifier'], i['schoolReference']['schoolId']): i['incidentDate'] for i in get('disciplineIncidents')}
    behaviours = defaultdict(set)
    for b in get('studentDisciplineIncidentBehaviorAssociations'):
        ref = b['disciplineIncidentReference']
        date = incident_dates.get((ref['incidentIdentifier'], ref['schoolId']))
        if date is None:
            continue
        behaviours[(b['studentReference']['studentUniqueId'], ref['schoolId'], date)] |= constants(b['behaviorDescriptor'], 'BehaviorDescriptor')

    chronic = {}
    chronic_per_school = defaultdict(int)
    ews = {}
    for (student, school), dates in enrolled.items():
        key = f'{student}-{school}'
        instructional = [d for d in dates if calendar[school][d]]
        row = {'days_enrolled': len(instructional), 'present_school': 0, 'absent_school': 0, 'present_homeroom': 0,
               'absent_homeroom': 0, 'present_all_sections': 0, 'absent_any_section': 0}
        for d in instructional:
            k = (student, school, d)
            row['present_school'] += 'AttendanceEvent.Present' in school_events[k]
            row['absent_school'] += 'AttendanceEvent.Absence' in school_events[k]
            row['present_homeroom'] += 'AttendanceEvent.Present' in homeroom_events[k]
            row['absent_homeroom'] += 'AttendanceEvent.Absence' in homeroom_events[k]
            row['absent_any_section'] += 'AttendanceEvent.Absence' in section_events[k]
            row['present_all_sections'] += ('AttendanceEvent.Absence' not in section_events[k]) and ('AttendanceEvent.Present' in section_events[k])
        chronic[key] = row
        if row['days_enrolled'] > 0 and row['absent_school'] * 10 >= row['days_enrolled']:
            chronic_per_school[str(school)] += 1

        w = defaultdict(int)
        for d in dates:
            k = (student, school, d)
            w['days'] += 1
            w['instructional_days'] += calendar[school][d]
            for name, events in (('school', school_events[k]), ('homeroom', homeroom_events[k]), ('any_class', section_events[k])):
                w[f'present_{name}'] += 'AttendanceEvent.Present' in events
                w[f'excused_{name}'] += 'AttendanceEvent.ExcusedAbsence' in events
                w[f'unexcused_{name}'] += 'AttendanceEvent.UnexcusedAbsence' in events
                w[f'tardy_{name}'] += 'AttendanceEvent.Tardy' in events
            w['state_offense_days'] += 'Behavior.StateOffense' in behaviours[k]
            w['conduct_offense_days'] += 'Behavior.SchoolCodeOfConductOffense' in behaviours[k]
        ews[key] = dict(w)

    # demographics bridge: per student-school still enrolled as of, its school-level (else district-level) races and characteristics
    schools = {s['schoolId']: s for s in get('schools')}
    seoa = {}
    for a in get('studentEducationOrganizationAssociations'):
        seoa[(a['studentReference']['studentUniqueId'], a['educationOrganizationReference']['educationOrganizationId'])] = a

    def code(value):
        return (value or '').split('#', 1)[-1]

    demographics = defaultdict(int)
    active = []
    for a in get('studentSchoolAssociations'):
        if a.get('exitWithdrawDate') and a['exitWithdrawDate'] < as_of:
            continue
        student, school = a['studentReference']['studentUniqueId'], a['schoolReference']['schoolId']
        active.append((student, school))
    for student, school in sorted(set(active)):
        lea = schools.get(school, {}).get('localEducationAgencyReference', {}).get('localEducationAgencyId')
        org = seoa.get((student, school)) or seoa.get((student, lea))
        if not org:
            continue
        keys = {f"Race:{code(r['raceDescriptor'])}" for r in org.get('races', [])}
        keys |= {f"StudentCharacteristic:{code(c['studentCharacteristicDescriptor'])}" for c in org.get('studentCharacteristics', [])}
        for k in keys:
            demographics[k] += 1

    # descriptor values the views read that no map gives a constant: (dataset, value) -> rows
    unmapped = defaultdict(int)
    for dataset, resource, field, descriptor in (
            ('student_school_attendance_events', 'studentSchoolAttendanceEvents', 'attendanceEventCategoryDescriptor', 'AttendanceEventCategoryDescriptor'),
            ('student_section_attendance_events', 'studentSectionAttendanceEvents', 'attendanceEventCategoryDescriptor', 'AttendanceEventCategoryDescriptor'),
            ('student_discipline_behaviors', 'studentDisciplineIncidentBehaviorAssociations', 'behaviorDescriptor', 'BehaviorDescriptor')):
        for r in get(resource):
            if r.get(field) and not constants(r[field], descriptor):
                unmapped[f'{dataset}|{r[field]}'] += 1
    for c in get('calendarDates'):
        for e in c.get('calendarEvents', []):
            if e.get('calendarEventDescriptor') and not constants(e['calendarEventDescriptor'], 'CalendarEventDescriptor'):
                unmapped[f"calendar_dates|{e['calendarEventDescriptor']}"] += 1

    def active_on(row, begin='beginDate', end='endDate'):
        return row.get(end) is None or row[end] > as_of

    out = {
        'as_of': as_of,
        'chronic': chronic,
        'chronic_per_school': dict(chronic_per_school),
        'ews': ews,
        'demographics': dict(demographics),
        'unmapped': dict(unmapped),
        'rows': {
            'school_dim': len(get('schools')),
            'local_education_agency_dim': len(get('localEducationAgencies')),
            'student_school_dim': len(active),
            'student_section_dim': len(get('studentSectionAssociations')),
            'staff_section_dim': sum(1 for s in get('staffSectionAssociations') if active_on(s)),
            'section_dim': len(get('sections')),
            'date_dim': len({c['date'] for c in get('calendarDates')}),
            'grading_period_dim': sum(1 for g in get('gradingPeriods') if g['beginDate'] < as_of),
            'chronic_absenteeism_attendance_fact': sum(r['days_enrolled'] for r in chronic.values()),
            'student_early_warning_fact': sum(r['days'] for r in ews.values()),
        },
    }
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == '__main__':
    main()
