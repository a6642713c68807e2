// One lint for the whole tree: typescript-eslint's type-aware rules catch what tsc does not
// (a promise nobody awaits, an async callback where a sync one is expected).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const TSCONFIGS = {
  'packages/napi-glue': 'tsconfig.lint.json',
  'packages/netns': 'tsconfig.lint.json',
  'packages/tun': 'tsconfig.lint.json',
  'packages/wg-engine': 'tsconfig.lint.json',
  'packages/metrics': 'tsconfig.lint.json',
  'packages/cli': 'tsconfig.lint.json',
  'apps/wirecagesrv': 'tsconfig.lint.json',
  tests: 'tsconfig.json',
  bench: 'tsconfig.json',
};

export default tseslint.config(
  { ignores: ['**/dist/**', '**/build/**', '**/node_modules/**', 'bench/results/**', '**/*.cjs', '**/*.mjs', '**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  // Each workspace's files are typed by its own tsconfig (src and tests together), and only by that one:
  // a workspace's lint then builds one TypeScript program, not every one listed before its own.
  ...Object.entries(TSCONFIGS).map(([dir, tsconfig]) => ({
    files: [`${dir}/**`],
    languageOptions: { parserOptions: { project: `${dir}/${tsconfig}`, tsconfigRootDir: import.meta.dirname } },
  })),
  {
    rules: {
      // `({ c, h, k } = ...)` updates the chaining key and hash in place (noise.ts): a fresh k there is no reason to split it.
      'prefer-const': ['error', { destructuring: 'all' }],
      // Passing on what a callback threw, as it is, is the promise form of `throw err`, which only-throw-error allows too.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // `const { id, ...rest } = x` is how a field is left out of a copy.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
    },
  },
  {
    // Issue 13: a function a newcomer has to change fits on a screen; one that cannot says why in an eslint-disable comment.
    files: ['packages/*/src/**/*.ts', 'apps/*/src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
  {
    // The registry's interface is asynchronous (PostgreSQL's store needs it); SQLite's store and the
    // in-memory nonces do their work synchronously and answer with settled promises.
    files: ['apps/wirecagesrv/src/registry/sqlite/**/*.ts', 'apps/wirecagesrv/src/registry/memory-nonces.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
);
