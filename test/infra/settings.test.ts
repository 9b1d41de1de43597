import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PIPELINE_FILE, DEFAULT_SETTINGS, pipelineFileFromContext, resolveSettings, settingsFromContext } from '../../lib/settings.ts';
import { stackNameFor } from '../../lib/stack-name.ts';

describe('operational settings', () => {
  it('default to a protected, single-AZ t4g.small database and a KMS-encrypted bucket', () => {
    expect(resolveSettings()).toEqual(DEFAULT_SETTINGS);
    expect(DEFAULT_SETTINGS).toMatchObject({ deletionProtection: true, dbMultiAz: false, dbInstanceType: 't4g.small', bucketEncryption: 'kms', maxReceiveCount: 5 });
  });

  it('migrate on every deploy by default, and let the operator turn that off from the command line', () => {
    expect(resolveSettings().migrateOnEveryDeploy).toBe(true);
    const app = new App({ context: { 'civic-etl:migrateOnEveryDeploy': 'false' } });
    expect(settingsFromContext(app.node).migrateOnEveryDeploy).toBe(false);
    expect(() => resolveSettings({ migrateOnEveryDeploy: 'no' })).toThrow('civic-etl:migrateOnEveryDeploy: must be true or false');
  });

  it('read context given on the command line as strings', () => {
    const app = new App({
      context: {
        'civic-etl:deletionProtection': 'false',
        'civic-etl:dbBackupRetentionDays': '14',
        'civic-etl:alarmEmail': 'ops@example.org',
        'civic-etl:pipeline': 'pipelines/other/pipeline.yaml',
      },
    });
    expect(settingsFromContext(app.node)).toMatchObject({ deletionProtection: false, dbBackupRetentionDays: 14, alarmEmail: 'ops@example.org' });
    expect(pipelineFileFromContext(app.node)).toBe('pipelines/other/pipeline.yaml');
  });

  it('read the pipeline file from its default place when the context does not say', () => {
    expect(pipelineFileFromContext(new App().node)).toBe(DEFAULT_PIPELINE_FILE);
  });

  it('reject a bad value naming the context key and what it must be', () => {
    expect(() => resolveSettings({ deletionProtection: 'yes' })).toThrow('civic-etl:deletionProtection: must be true or false');
    expect(() => resolveSettings({ logRetentionDays: '100' })).toThrow(/civic-etl:logRetentionDays: must be one of 1, 3, 5, 7/);
    expect(() => resolveSettings({ dbInstanceType: 'db.t4g.small' })).toThrow('civic-etl:dbInstanceType: must look like t4g.small (no db. prefix)');
  });

  it('reject an unknown civic-etl: key instead of silently keeping a default', () => {
    const app = new App({ context: { 'civic-etl:deletionProtecton': 'false' } });
    expect(() => settingsFromContext(app.node)).toThrow(/deletionProtecton.*known settings: deletionProtection/);
  });

  it("are not repeated in cdk.json: a context value there is one that differs from the code's default", () => {
    const context = (JSON.parse(readFileSync(fileURLToPath(new URL('../../cdk.json', import.meta.url)), 'utf8')) as { context: Record<string, unknown> }).context;
    const defaults: Record<string, unknown> = { ...DEFAULT_SETTINGS, pipeline: DEFAULT_PIPELINE_FILE };
    const repeated = Object.entries(context).filter(([key, value]) => key.startsWith('civic-etl:') && defaults[key.slice('civic-etl:'.length)] === value);
    expect(repeated).toEqual([]);
  });

  it('reject a storage ceiling below the initial size', () => {
    expect(() => resolveSettings({ dbAllocatedStorageGiB: 200, dbMaxAllocatedStorageGiB: 100 })).toThrow(
      'civic-etl:dbMaxAllocatedStorageGiB (100) must be at least civic-etl:dbAllocatedStorageGiB (200): raise the ceiling or lower the initial size',
    );
  });
});

describe('the stack name', () => {
  it('is CivicEtl-<project>, with _ (not allowed in stack names) turned into -', () => {
    expect(stackNameFor('chicago')).toBe('CivicEtl-chicago');
    expect(stackNameFor('st_louis')).toBe('CivicEtl-st-louis');
  });
});
