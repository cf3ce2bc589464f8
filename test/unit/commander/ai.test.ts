import { describe, expect, it } from 'vitest';
import { parseAnswer, redact, userTurn } from '../../../functions/commander/ai.js';

describe('parseAnswer', () => {
  it('reads the JSON object asked for, bare, fenced or inside prose', () => {
    expect(parseAnswer('{"response": "Fan is off", "suggestions": ["Check fan speed"]}')).toEqual({
      response: 'Fan is off',
      suggestions: ['Check fan speed'],
    });
    expect(parseAnswer('```json\n{"response": "A", "suggestions": []}\n```')).toEqual({
      response: 'A',
      suggestions: [],
    });
    expect(parseAnswer('Sure. {"response": "B", "suggestions": ["x"]} Hope it helps')).toEqual({
      response: 'B',
      suggestions: ['x'],
    });
  });

  it('keeps only non-empty string suggestions, at most 10', () => {
    const many = Array.from({ length: 12 }, (_, i) => `s${i}`);
    expect(
      parseAnswer(JSON.stringify({ response: 'r', suggestions: ['a', '', 3, null, ' b '] })).suggestions,
    ).toEqual(['a', 'b']);
    expect(parseAnswer(JSON.stringify({ response: 'r', suggestions: many })).suggestions).toEqual(
      many.slice(0, 10),
    );
    expect(parseAnswer(JSON.stringify({ response: 'r' })).suggestions).toEqual([]);
  });

  it('falls back to the whole text with no suggestions', () => {
    for (const text of [
      'Restart it.',
      '[1, 2]',
      '{"response": 5}',
      '{"response": "  "}',
      '{"response": "cut',
      'null',
    ]) {
      expect(parseAnswer(`  ${text}  `)).toEqual({ response: text, suggestions: [] });
    }
  });
});

describe('redact', () => {
  it('removes credentials by shape and known values, and leaves the rest', () => {
    const nodeToken = `agx0-1a2b3c4d.${'x'.repeat(43)}`;
    const text = [
      'join FLEETJT-1-abcDEF_123-xyz',
      `agent ${nodeToken}`,
      'Authorization: Bearer sk-live-123',
      'password=hunter2 PASSWORD: "s3cr3t" api_key=k1 apiKey:k2 DB_TOKEN=t0k',
      'key AKIAABCDEFGHIJKLMNOP',
      'my key is exact-api-key-value',
      'GPU temperature 88.5 C, exit code 137, image registry.local/sdxl:1',
    ].join('\n');
    const out = redact(text, ['exact-api-key-value']);
    for (const gone of [
      'FLEETJT-1-abc',
      nodeToken,
      'sk-live-123',
      'hunter2',
      's3cr3t',
      'k1',
      'k2',
      't0k',
      'AKIAABCDEFGHIJKLMNOP',
      'exact-api-key-value',
    ])
      expect(out).not.toContain(gone);
    expect(out).toContain('password=[redacted]');
    expect(out).toContain('Bearer [redacted]');
    expect(out).toContain('GPU temperature 88.5 C, exit code 137, image registry.local/sdxl:1');
  });

  it('redacts inside the JSON state of the prompt', () => {
    const prompt = userTurn(
      { containers: [{ last_error: 'login failed: token=abc123' }] },
      'Question: why?',
      [],
    );
    expect(prompt).toContain('token=[redacted]');
    expect(prompt).not.toContain('abc123');
    expect(prompt).toContain('Question: why?');
  });
});
