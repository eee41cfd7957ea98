// @ts-check
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const ADAPTERS = ['**/storage/sqlite/**', '**/storage/postgres/**', '**/storage/backends.ts'];
const EDGES = ['**/api/**', '**/cli/**', '**/runtime/**', '**/app.ts'];
const layer = (forbidden, message) => ({
  'no-restricted-imports': ['error', { patterns: [{ group: forbidden, message }] }],
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.herald/**', '**/*.mjs', 'eslint.config.js', '.bench/**', '.test-tmp/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', name: ['describe', 'it', 'test', 'suite'], package: 'node:test' }] },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      'import-x/no-cycle': 'error',
    },
  },
  // DESIGN.md §5: dependencies point inward. core ← domain ← adapters ← edges ← app.ts.
  {
    files: ['src/core/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.contract.ts'],
    rules: layer(['**/config/**', '**/control/**', '**/ingest/**', '**/profiles/**', '**/storage/**', ...EDGES], 'core is pure: it imports nothing of Herald'),
  },
  {
    files: ['src/profiles/**/*.ts', 'src/ingest/**/*.ts', 'src/control/**/*.ts', 'src/config/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.contract.ts'],
    rules: layer([...ADAPTERS, ...EDGES], 'domain code uses ports; adapters and edges are wired in by the composition root'),
  },
  {
    files: ['src/storage/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.contract.ts'],
    rules: layer(EDGES, 'storage adapters must not reach into the edges'),
  },
  {
    files: ['src/api/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: layer(['**/cli/**', '**/app.ts', '**/storage/sqlite/**', '**/storage/postgres/**'], 'the HTTP edge talks to ports, not to backends or the CLI'),
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'src/**/*.test.ts', 'src/**/*.contract.ts', 'scripts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
