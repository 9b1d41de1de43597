import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

// The import boundaries of eslint.config.js, checked on small files that exist only in memory: a
// rule that stopped resolving imports (and so stopped reporting) fails here, not silently in CI.
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const RULE = 'import-x/no-restricted-paths';

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: root });
});

/** The boundary messages ESLint gives for a file at `path` (relative to the repo) holding `code`. */
async function boundaryMessages(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, path) });
  return result!.messages.filter((m) => m.ruleId === RULE).map((m) => `${m.line}:${m.column} ${m.message}`);
}

describe('import boundaries (npm run lint)', () => {
  it('reports stage importing clean, naming the line and the rule broken', async () => {
    const messages = await boundaryMessages('functions/stage/probe.ts', "import { ok } from './copy.ts';\nimport { cleanLoad } from '../clean/clean-load.ts';\nexport { ok, cleanLoad };\n");
    expect(messages).toEqual([expect.stringMatching(/^2:27 Unexpected path "\.\.\/clean\/clean-load\.ts" imported in restricted zone\. stage never imports clean/)]);
  });

  it('reports lib importing anything of ours but contract/, and lets it import contract/ and packages', async () => {
    const code = [
      "import { Stack } from 'aws-cdk-lib';",
      "import { ENV } from '../contract/names.ts';",
      "import { getPool } from '../functions/common/db.ts';",
      "import { runLocally } from '../local/runner.ts';",
      'export { Stack, ENV, getPool, runLocally };',
    ].join('\n');
    const messages = await boundaryMessages('lib/probe.ts', code);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toMatch(/^3:.*"\.\.\/functions\/common\/db\.ts".*lib\/ \(the CDK app\) imports only contract\//);
    expect(messages[1]).toMatch(/^4:.*"\.\.\/local\/runner\.ts"/);
  });

  it('reports lib importing a package the Lambdas use, not one the CDK app needs', async () => {
    const [result] = await eslint.lintText("import { Stack } from 'aws-cdk-lib/core';\nimport { z } from 'zod';\nimport pg from 'pg';\nexport { Stack, z, pg };\n", {
      filePath: join(root, 'lib/probe.ts'),
    });
    expect(result!.messages.map((m) => `${m.line} ${m.ruleId}`)).toEqual(['3 no-restricted-imports']);
    expect(result!.messages[0]!.message).toContain('lib/ (the CDK app) imports only contract/, node:, aws-cdk-lib, constructs and zod');
  });

  it('reports read/ and profile/ importing any step, however the path is spelled', async () => {
    const read = await boundaryMessages('functions/read/probe.ts', "import { stageObject } from '../../functions/stage/stage-object.ts';\nexport { stageObject };\n");
    const profile = await boundaryMessages('functions/profile/formats/probe.ts', "import { cleanLoad } from '../../clean/clean-load.ts';\nexport { cleanLoad };\n");
    expect(read).toEqual([expect.stringContaining('read/ and profile/ never import the steps')]);
    expect(profile).toEqual([expect.stringContaining('read/ and profile/ never import the steps')]);
  });

  it('lets local/ import everything', async () => {
    const code = [
      "import { cleanLoad } from '../functions/clean/clean-load.ts';",
      "import { stageObject } from '../functions/stage/stage-object.ts';",
      "import { ENV } from '../contract/names.ts';",
      'export { cleanLoad, stageObject, ENV };',
    ].join('\n');
    expect(await boundaryMessages('local/probe.ts', code)).toEqual([]);
  });
});
