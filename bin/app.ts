/**
 * The CDK app: one stack per pipeline definition, `CivicEtl-<project>`, checked by cdk-nag's
 * AwsSolutions pack on every synth.
 *
 *   npx cdk synth                                   # pipelines/chicago/pipeline.yaml
 *   npx cdk synth -c civic-etl:pipeline=path/to/pipeline.yaml -c civic-etl:deletionProtection=false
 *
 * A definition or setting that does not validate stops synth with the loader's message (file,
 * dataset, field) and exit code 1, without a stack trace.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadPipeline, PipelineDefinitionError } from '../contract/load.ts';
import { CivicEtlStack } from '../lib/civic-etl-stack.ts';
import { pipelineFileFromContext, SettingsError, settingsFromContext } from '../lib/settings.ts';
import { stackNameFor } from '../lib/stack-name.ts';

const app = new App();

try {
  const pipeline = loadPipeline(pipelineFileFromContext(app.node));
  const settings = settingsFromContext(app.node);
  new CivicEtlStack(app, stackNameFor(pipeline.project), { pipeline, settings });
} catch (error) {
  if (error instanceof PipelineDefinitionError || error instanceof SettingsError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
