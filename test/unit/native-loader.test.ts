// The native loader's refusal of a Node.js too old for the addon (Node-API 10): a clear message
// instead of the crash such a Node has while loading it. The check alone here; run-command.test.ts
// runs the CLI on the machine's own older Node where there is one.
import { describe, expect, it } from 'vitest';

import { unsupportedNode } from '../../src/native/binding.js';

describe('unsupportedNode', () => {
  it('accepts Node-API 10 and newer', () => {
    expect(unsupportedNode('10', 'v22.19.0')).toBeUndefined();
    expect(unsupportedNode('11', 'v26.0.0')).toBeUndefined();
  });

  it('refuses Node-API 9 (Node 20), naming the version found and what is needed', () => {
    expect(unsupportedNode('9', 'v20.20.2')).toBe(
      'parafork needs Node.js 22.19 or newer (Node-API 10); this is Node.js v20.20.2 (Node-API 9). scripts/provision-node.sh fetches Node 24 from the npm registry.',
    );
  });

  it('refuses a Node that reports no Node-API version', () => {
    expect(unsupportedNode(undefined, 'v0.0.0')).toMatch(/Node-API unknown/);
  });
});
