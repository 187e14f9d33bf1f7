import fc from 'fast-check';
import { jsonDepthExceeds } from './json-body';

/** The nesting depth of a parsed JSON value, counted the way the scanner counts brackets. */
function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf));
  if (v !== null && typeof v === 'object') return 1 + Math.max(0, ...Object.values(v).map(depthOf));
  return 0;
}

describe('jsonDepthExceeds', () => {
  it.each([
    ['{}', 1],
    ['[]', 1],
    ['"x"', 0],
    ['42', 0],
    ['{"a":{"b":[1,[2]]}}', 4],
    ['[[],[],[[]]]', 3],
  ])('%s nests %d deep', (text, depth) => {
    expect(jsonDepthExceeds(text, depth)).toBe(false);
    if (depth > 0) expect(jsonDepthExceeds(text, depth - 1)).toBe(true);
  });

  it('rejects the 5,000-deep body of the finding without recursing', () => {
    expect(jsonDepthExceeds('['.repeat(5000) + ']'.repeat(5000), 32)).toBe(true);
    expect(jsonDepthExceeds('{"a":'.repeat(100_000), 32)).toBe(true);
    expect(jsonDepthExceeds('['.repeat(32) + ']'.repeat(32), 32)).toBe(false);
  });

  it('ignores brackets inside strings, also after escaped quotes and backslashes', () => {
    expect(jsonDepthExceeds(JSON.stringify({ key: '[[[[[[[[{{{{{{' }), 1)).toBe(false);
    expect(jsonDepthExceeds(JSON.stringify({ key: 'a"[[[[[["b' }), 1)).toBe(false);
    expect(jsonDepthExceeds(JSON.stringify({ key: 'a\\', x: '[[[[' }), 1)).toBe(false);
    expect(jsonDepthExceeds(JSON.stringify({ key: 'a\\"[[[' }), 1)).toBe(false);
    expect(jsonDepthExceeds('{"k":"\\u005b\\u005b"}', 1)).toBe(false);
    // A string key that looks like the end of a string does not hide real nesting.
    expect(jsonDepthExceeds(JSON.stringify({ 'a\\"': [[[1]]] }), 3)).toBe(true);
  });

  it('agrees with the real depth of any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (value, max) => {
        const text = JSON.stringify(value);
        expect(jsonDepthExceeds(text, max)).toBe(depthOf(value) > max);
      }),
      { numRuns: 500 },
    );
  });
});
