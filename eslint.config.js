import tseslint from 'typescript-eslint';

// The layers, as the editor sees them while typing; .dependency-cruiser.cjs states the same rules and
// adds import cycles, which ESLint's built-in rules cannot see (test/unit/architecture.test.ts, npm run lint).
const AWS_SDK = {
  group: ['@aws-sdk/*', '@smithy/*'],
  message: 'Domain code reaches AWS through functions/ports; only functions/adapters and core/aws-context know the SDK.',
};
const ADAPTERS = {
  group: ['**/adapters/*'],
  message: 'Domain code receives its adapters on AppContext (composed in core/aws-context.ts or local/).',
};

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', 'dist/', 'web/dist/', '.data/', '.venv-aws/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['agent/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/functions/**', '**/local/**', '**/lib/**', '**/bin/**', '**/test/**'],
              message: 'The agent ships alone to every node: it shares protocol/ with the control plane, nothing else.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!zod$|\\./|node:)',
              message: 'protocol/ is the wire contract: schemas over zod and its own modules, nothing else.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['functions/**/*.ts'],
    ignores: ['functions/adapters/**', 'functions/core/aws-context.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            AWS_SDK,
            ADAPTERS,
            {
              group: ['**/local/**', '**/lib/**', '**/bin/**', '**/agent/**', '**/test/**', '**/bench/**', '**/scripts/**'],
              message: 'Lambda code may not import the local runtime, the CDK app, the agent or the tests.',
            },
          ],
        },
      ],
    },
  },
);
