import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { describe, expect, it } from 'vitest';

// The layers of .dependency-cruiser.cjs: no import cycles, the agent and the control plane share only
// protocol/, domain code reaches AWS through ports, Lambda code imports no local, CDK or test code.
describe('the layers of the code base', () => {
  it('has no dependency that breaks a rule of .dependency-cruiser.cjs', async () => {
    // Prepare
    const options = await extractDepcruiseOptions('./.dependency-cruiser.cjs');

    // Act
    const result = await cruise(['functions', 'agent', 'protocol', 'local', 'lib'], options, undefined, {
      tsConfig: extractTSConfig('tsconfig.json'),
    });

    // Assert: each violation named by rule, from and to, so the failure says what to move.
    const output = result.output as ICruiseResult;
    const violations = output.summary.violations.map((v) =>
      [v.rule.name, v.from, v.to, ...(v.cycle ?? []).map((c) => c.name)].join(' → '),
    );
    expect(violations).toEqual([]);
    expect(output.summary.totalCruised).toBeGreaterThan(200);
  }, 60_000);
});
