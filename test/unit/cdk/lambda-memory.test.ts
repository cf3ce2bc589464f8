import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { parseLambdaMemory } from '../../../lib/lambda-settings.js';
import { readSettings } from '../../../lib/settings.js';

describe('lambdaMemory setting', () => {
  it('sizes the named functions and leaves the rest to the default', () => {
    const app = new App({ context: { lambdaMemory: 'agent=1024, events=768' } });
    expect(readSettings(app).lambdaMemory).toEqual({ agent: 1024, events: 768 });
    // The agent routes and the events worker default to 512 MB (LAMBDA_MEMORY_DEFAULTS); the rest to LAMBDA_MEMORY_MB.
    expect(readSettings(new App()).lambdaMemory).toEqual({ agent: 512, events: 512 });
  });

  it('refuses unknown functions and sizes Lambda does not offer', () => {
    expect(() => parseLambdaMemory('agnet=512', ['agent'])).toThrow(/unknown function agnet/);
    expect(() => parseLambdaMemory('agent=64', ['agent'])).toThrow(/128 to 10240/);
    expect(() => parseLambdaMemory('agent=1.5', ['agent'])).toThrow(/whole MB/);
  });
});
