import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { objectsInMessage } from '../../functions/stage/s3-event.ts';

const fixture = (name: string) => readFileSync(`test/fixtures/${name}`, 'utf8');

describe('objectsInMessage', () => {
  it('decodes keys and keeps the version id of each created object', () => {
    expect(objectsInMessage(fixture('s3-put-event.json'))).toEqual([{ bucket: 'civic-etl-city-landing', key: 'incoming/parks/programs/Programs 2024 (v2).csv', versionId: 'v-123', etag: 'abc', size: 42 }]);
  });

  it('ignores the test event S3 sends when notifications are configured', () => {
    expect(objectsInMessage('{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}')).toEqual([]);
  });

  it('calls a body that is not an S3 notification a permanent error', () => {
    expect(() => objectsInMessage('not json')).toThrow(/not JSON/);
    expect(() => objectsInMessage('{"hello":1}')).toThrow(/not an S3 event notification/);
  });
});
