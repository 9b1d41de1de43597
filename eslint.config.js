// ESLint: typescript-eslint's recommended rules, plus the import boundaries that state the
// architecture. The boundaries are checked on resolved files (eslint-plugin-import-x's
// no-restricted-paths), so `../clean/x.ts` and `../../functions/clean/x.ts` are caught alike.
//
//   get → stage → clean → combine      the steps: get and stage never import a later step (clean may
//                                      use combine: a load it applies rebuilds the views and exports)
//   read/, profile/                    file readers and profiling: used by the steps, use none of them
//   common/                            shared runtime helpers, used by everything under functions/
//   contract/                          the pipeline definition: schemas and names, imports nothing of ours
//   lib/                               the CDK constructs: contract/ only (and node, aws-cdk-lib, constructs, zod)
//   local/, bin/, test/, bench/        may import everything
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const here = import.meta.dirname;
const steps = ['get', 'stage', 'clean', 'combine'];
const fn = (dir) => `./functions/${dir}`;

/** One zone: files under `target` never import files under `from`. */
const never = (target, from, why) => ({ target, from, message: why });

export const boundaries = [
  {
    target: './lib',
    from: './',
    except: ['./lib', './contract', './node_modules'],
    message: 'lib/ (the CDK app) imports only contract/ and packages; move what it needs into contract/.',
  },
  never('./contract', ['./functions', './lib', './local'], 'contract/ is the bottom layer: it imports nothing of ours.'),
  never(fn('stage'), [fn('clean'), fn('combine')], 'stage never imports clean or combine; move the shared piece to functions/common.'),
  never(fn('get'), [fn('stage'), fn('clean'), fn('combine')], 'get never imports the steps after it; move the shared piece to functions/common.'),
  never([fn('read'), fn('profile')], steps.map(fn), 'read/ and profile/ never import the steps (get, stage, clean, combine); move the shared piece to functions/common.'),
  never(fn('common'), [...steps, 'read', 'profile', 'migrate'].map(fn), 'functions/common is shared by every step: it imports none of them.'),
  never('./functions', ['./local', './lib', './test', './bench'], 'the Lambda code never imports the local runner, the CDK app or the tests.'),
];

export default defineConfig(
  globalIgnores(['node_modules/**', 'cdk.out/**', '.local/**', 'coverage/**']),
  tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    plugins: { 'import-x': importX },
    rules: {
      // `_`-names and rest siblings say "deliberately unused" (e.g. dropping a key: `({ a: _, ...rest })`)
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }],
      'import-x/no-restricted-paths': ['error', { basePath: here, zones: boundaries }],
    },
  },
  {
    // the packages lib/ may use: the CDK, Node's own modules, zod (what contract/ is written in), and
    // esbuild, with which lib/bundle.ts bundles the handlers (code splitting, which NodejsFunction's
    // one-file esbuild run cannot do)
    files: ['lib/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\.|node:|aws-cdk-lib(/|$)|constructs$|zod$|esbuild$)',
              message: 'lib/ (the CDK app) imports only contract/, node:, aws-cdk-lib, constructs and zod (and esbuild, which bundles the handlers: lib/bundle.ts).',
            },
          ],
        },
      ],
    },
  },
);
