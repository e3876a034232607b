// Kubernetes quantities as src/sandbox/quantity.ts parses them: the grammar of
// k8s.io/apimachinery's resource.ParseQuantity, exactly (fractions of big integers, no floats).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { formatBytes, formatMillicores, parseQuantity, QuantityError, wholeUnits, wholeUnitsRoundedUp } from '../../src/sandbox/quantity.js';

const bytesOf = (text: string | number): bigint | undefined => wholeUnits(parseQuantity(text));

describe('parseQuantity', () => {
  it.each([
    ['1', 1n],
    ['+7', 7n],
    ['1Ki', 1024n],
    ['64Mi', 64n * 2n ** 20n],
    ['1.5Gi', 3n * 2n ** 29n],
    ['1Ei', 2n ** 60n],
    ['1k', 1000n],
    ['1M', 10n ** 6n],
    ['1E', 10n ** 18n],
    ['1e3', 1000n],
    ['1E3', 1000n],
    ['1e+3', 1000n],
    ['1e23', 10n ** 23n],
    ['5.', 5n],
    ['.5k', 500n],
    ['1000m', 1n],
    [1048576, 1048576n],
  ] as const)('reads %j as %s exactly', (text, value) => {
    expect(bytesOf(text)).toBe(value);
  });

  it.each(['0.4', '100m', '1e-1', '0.0001Ki', '1.1'] as const)('keeps the fraction of %j: it is no whole number of bytes', (text) => {
    expect(bytesOf(text)).toBeUndefined();
  });

  it('reads thousandths of a CPU, rounding up as Kubernetes does', () => {
    expect(wholeUnits(parseQuantity('250m'), 1000n)).toBe(250n);
    expect(wholeUnits(parseQuantity('0.5'), 1000n)).toBe(500n);
    expect(wholeUnitsRoundedUp(parseQuantity('0.0015'), 1000n)).toBe(2n);
    expect(wholeUnitsRoundedUp(parseQuantity('2'), 1000n)).toBe(2000n);
  });

  it('keeps the sign of a negative quantity for the caller to refuse', () => {
    expect(parseQuantity('-1Gi').numerator < 0n).toBe(true);
  });

  it.each(['', ' 1', '1 ', '12 GB', '1GB', '1Kb', '0x10', 'Infinity', 'NaN', '1e', '1e1.5', '1.2.3', '--1', '1n', 'Mi', '1e101', '1e-101'])(
    'refuses %j with a QuantityError that reads after a field name',
    (text) => {
      expect(() => parseQuantity(text)).toThrow(QuantityError);
      expect(() => parseQuantity(text)).toThrow(/^must /);
    },
  );

  it('refuses a text longer than any quantity before matching it', () => {
    expect(() => parseQuantity('9'.repeat(129))).toThrow(/at most 128 characters/);
  });

  it('refuses a JSON number that is no safe whole number', () => {
    for (const number of [0.5, 1e300, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => parseQuantity(number)).toThrow(QuantityError);
  });

  it('takes any decimal integer as that many units, however long (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 40n }), (value) => {
        expect(bytesOf(value.toString())).toBe(value);
      }),
    );
  });
});

describe('formatting for status', () => {
  it('shows bytes in the largest binary unit that divides them', () => {
    expect(formatBytes(2 ** 30)).toBe('1Gi');
    expect(formatBytes(96 * 2 ** 20)).toBe('96Mi');
    expect(formatBytes(1536)).toBe('1536');
    expect(formatBytes(1)).toBe('1');
  });

  it('shows whole CPUs without a suffix and the rest in thousandths', () => {
    expect(formatMillicores(1000)).toBe('1');
    expect(formatMillicores(250)).toBe('250m');
    expect(formatMillicores(1500)).toBe('1500m');
  });

  it('formats what it parses back to the same number (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 53 }), (bytes) => {
        expect(bytesOf(formatBytes(bytes))).toBe(BigInt(bytes));
      }),
    );
  });
});
