import { afterEach, describe, expect, it } from 'vitest';
import { localResourceNames } from '../../local/resources.ts';

describe('local resource names', () => {
  const saved = process.env.CIVIC_ETL_LOCAL_NAMESPACE;
  afterEach(() => {
    if (saved === undefined) delete process.env.CIVIC_ETL_LOCAL_NAMESPACE;
    else process.env.CIVIC_ETL_LOCAL_NAMESPACE = saved;
  });

  it('name the bucket and queues after the project, as the demo and the docs show', () => {
    delete process.env.CIVIC_ETL_LOCAL_NAMESPACE;
    expect(localResourceNames('chicago')).toEqual({
      bucket: 'civic-etl-chicago-landing',
      stageQueue: 'civic-etl-chicago-stage',
      stageDlq: 'civic-etl-chicago-stage-dlq',
      cleanQueue: 'civic-etl-chicago-clean',
      cleanDlq: 'civic-etl-chicago-clean-dlq',
    });
  });

  it('keep two test runs on one moto apart: a namespace goes into every name, long names stay valid and distinct', () => {
    process.env.CIVIC_ETL_LOCAL_NAMESPACE = 'civic-etl-node';
    const a = localResourceNames('it_wrong');
    process.env.CIVIC_ETL_LOCAL_NAMESPACE = 'civic-etl-lint';
    const b = localResourceNames('it_wrong');
    delete process.env.CIVIC_ETL_LOCAL_NAMESPACE;
    const c = localResourceNames('it_wrong');
    expect(a.bucket).toBe('civic-etl-civic-etl-node-it-wrong-landing');
    expect(new Set([a.bucket, b.bucket, c.bucket]).size).toBe(3);
    expect(new Set([a.cleanQueue, b.cleanQueue, c.cleanQueue]).size).toBe(3);

    process.env.CIVIC_ETL_LOCAL_NAMESPACE = 'civic-etl-node';
    const long = localResourceNames('a_project_name_long_enough_to_need_a_hash_in_s3');
    process.env.CIVIC_ETL_LOCAL_NAMESPACE = 'civic-etl-lint';
    const long2 = localResourceNames('a_project_name_long_enough_to_need_a_hash_in_s3');
    expect(long.bucket.length).toBeLessThanOrEqual(63);
    expect(long.bucket).not.toBe(long2.bucket);
  });

  it('refuse a namespace that cannot be part of a bucket name', () => {
    process.env.CIVIC_ETL_LOCAL_NAMESPACE = 'Civic_ETL';
    expect(() => localResourceNames('chicago')).toThrow(/CIVIC_ETL_LOCAL_NAMESPACE "Civic_ETL" must be lower-case letters, digits and -/);
  });
});
