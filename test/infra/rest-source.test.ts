import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { secretStatementsOf, synthFixture, SYNTH_TIMEOUT, type Fixture } from './synth.ts';

/** A project with one scheduled REST source whose oauth2 credentials are in Secrets Manager. */
const PIPELINE = `
project: shelbyville
datasets:
  - name: service_requests
    source:
      type: rest
      url: https://api.example.org/v2/requests
      records: data
      auth: { type: oauth2, secret: shelbyville/crm-client, tokenUrl: https://auth.example.org/token }
      pagination: { type: cursor, cursorParam: cursor, cursorPath: meta.next }
      incremental: { param: updated_since, field: updated_at }
    schedule: rate(1 hour)
    clean:
      columns:
        - { name: id, type: text, required: true }
      key: [id]
      mode: upsert
`;

describe('a REST source in the stack', () => {
  let f: Fixture;
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), 'civic-etl-rest-'));
    writeFileSync(join(dir, 'pipeline.yaml'), PIPELINE);
    f = synthFixture({ pipelineFile: join(dir, 'pipeline.yaml') });
  }, SYNTH_TIMEOUT);

  it('lets fetch read exactly the auth secret the source names', () => {
    const secrets = secretStatementsOf(f.template, f.stack.fetchFunction);
    expect(secrets).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Resource: {
          'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':secret:shelbyville/crm-client-??????']],
        },
      }),
    ]);
  });

  it('schedules its fetch', () => {
    const schedules = Object.values(f.template.findResources('AWS::Scheduler::Schedule')) as { Properties: { ScheduleExpression: string; Target: { Input: string } } }[];
    expect(schedules.map((s) => [s.Properties.ScheduleExpression, JSON.parse(s.Properties.Target.Input)])).toEqual([['rate(1 hour)', { dataset: 'service_requests' }]]);
  });
});
