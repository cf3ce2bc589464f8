import { describe, expect, it } from 'vitest';
import { MIN_NODE_MAJOR, runtimeRefusal } from '../../../agent/runtime-check.js';

describe('runtimeRefusal', () => {
  it('accepts Node.js 24 and later', () => {
    expect(MIN_NODE_MAJOR).toBe(24);
    for (const v of ['v24.0.0', 'v24.21.0', 'v25.1.0', 'v100.0.0'])
      expect(runtimeRefusal(v, '/bin/node')).toBeUndefined();
  });

  it('refuses older ones, and anything it cannot read, in one line naming the binary and its version', () => {
    for (const v of ['v23.11.0', 'v20.20.2', 'v18.0.0', 'v8.17.0', 'garbage', '']) {
      const line = runtimeRefusal(v, '/usr/bin/node');
      expect(line).toBe(
        `fleet-agent: needs Node.js 24 or later, but /usr/bin/node is ${v}; install with the control plane's install.sh (it brings its own runtime) or run the agent container image`,
      );
      expect(line!.includes('\n')).toBe(false);
    }
  });
});
