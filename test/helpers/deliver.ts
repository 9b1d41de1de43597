/**
 * An upload as the pipeline takes it, for integration tests: the object put in moto, staged by
 * stageObject, its load cleaned by cleanLoad — both steps with the clean deps' pipeline, so a test
 * can hand one changed definition for both.
 */
import type { CleanDeps, CleanOutcome } from '../../functions/clean/clean-load.ts';
import { cleanLoad } from '../../functions/clean/clean-load.ts';
import { stageObject, type StageDeps } from '../../functions/stage/stage-object.ts';
import { put } from '../integration/support.ts';

/** Put `body` at `key`, stage it and clean its load; throws, naming the stage outcome, unless the object was staged. */
export async function deliver(deps: { stage: StageDeps; clean: CleanDeps }, bucket: string, key: string, body: string | Buffer): Promise<CleanOutcome> {
  const staged = await stageObject({ ...deps.stage, pipeline: deps.clean.pipeline }, await put(bucket, key, body));
  if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
  return cleanLoad(deps.clean, staged.loadId);
}
