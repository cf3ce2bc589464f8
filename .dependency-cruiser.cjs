/**
 * The layers of the code base, checked by test/unit/architecture.test.ts (npm test) and
 * `npx depcruise functions agent protocol local lib --config`.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle: split the module or move the shared part down a layer.',
      from: { path: '^(functions|agent|protocol|local|lib)/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['dynamic-import'] } },
    },
    {
      name: 'agent-speaks-protocol-only',
      severity: 'error',
      comment:
        'The agent ships alone to every node: it may share protocol/ with the control plane, nothing else.',
      from: { path: '^agent/' },
      to: { path: '^(functions|local|lib|bin)/' },
    },
    {
      name: 'protocol-is-pure',
      severity: 'error',
      comment:
        'protocol/ is the wire contract between agent and control plane: schemas over zod, nothing else.',
      from: { path: '^protocol/' },
      to: { dependencyTypesNot: ['core'], pathNot: ['^protocol/', 'node_modules/zod/'] },
    },
    {
      name: 'domain-uses-ports',
      severity: 'error',
      comment:
        'Domain code reaches AWS through the ports in functions/ports; only the adapters and the composition root (core/aws-context) know the SDK.',
      from: { path: '^functions/', pathNot: ['^functions/adapters/', '^functions/core/aws-context\\.ts$'] },
      to: { path: ['^functions/adapters/', 'node_modules/@aws-sdk/'] },
    },
    {
      name: 'functions-stand-alone',
      severity: 'error',
      comment: 'Lambda code may not import the local runtime, the CDK app, the agent or the tests.',
      from: { path: '^functions/' },
      to: { path: '^(local|lib|bin|agent|test|bench|scripts)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
