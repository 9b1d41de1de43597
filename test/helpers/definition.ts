import { expect } from 'vitest';
import { parsePipeline, PipelineDefinitionError } from '../../contract/load.ts';

/** The problems a definition is rejected for (failing the test when it is accepted). */
export function problemsOf(input: unknown): string[] {
  try {
    parsePipeline(input, 'test.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(PipelineDefinitionError);
    return [...(error as PipelineDefinitionError).problems];
  }
  throw new Error('expected the definition to be rejected');
}
