// Kubernetes resource quantities ("500m", "1.5Gi", "1e3"), parsed exactly, as
// k8s.io/apimachinery's resource.ParseQuantity reads them:
//
//   <quantity>        ::= <signedNumber><suffix>
//   <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
//   <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
//   <decimalSI>       ::= m | "" | k | M | G | T | P | E
//   <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
//   <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
//
// The value is kept as a fraction of big integers, never a float: a limit must be checked for
// being whole (bytes) or at least 1m (CPU) exactly, and "1e23" must be seen as the 10^23 it is,
// not rounded into a string ("1e+23") that a cgroup file refuses. Only the exponent is bounded
// (|e| <= 100), so that "1e999999999" cannot make a number of a billion digits.
// https://github.com/kubernetes/apimachinery/blob/master/pkg/api/resource/quantity.go

export class QuantityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuantityError';
  }
}

/** numerator / denominator, exactly; the denominator is positive. */
export interface Quantity {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

const binarySuffixes: Readonly<Record<string, bigint>> = { Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };
const decimalSuffixes: Readonly<Record<string, number>> = { m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

const maximumExponent = 100;
/** Longer than any quantity a person writes; bounds the work on hostile input. */
const maximumLength = 128;

// An exponent is tried before the decimal suffixes, so "1E3" is 1000 and "1E" is one exa.
const quantityPattern = /^([+-]?)(\d+\.?\d*|\.\d+)(?:([eE])([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?)$/;

/** Parses a quantity (a JSON integer counts as one without a suffix); throws QuantityError, whose message goes after the field's name. */
export function parseQuantity(value: string | number): Quantity {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new QuantityError(`must be a whole number below 2^53 or a quantity string, got ${value}`);
    return { numerator: BigInt(value), denominator: 1n };
  }
  if (typeof value !== 'string' || value.length > maximumLength) throw new QuantityError(`must be a Kubernetes quantity of at most ${maximumLength} characters`);
  const match = quantityPattern.exec(value);
  if (match === null) throw new QuantityError(`must be a Kubernetes quantity (a number with an optional suffix: m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei, or an exponent such as e3), got ${JSON.stringify(value)}`);
  const [, sign = '', number = '', exponentMark, exponentText, suffix = ''] = match;
  const [whole = '', fraction = ''] = number.split('.');
  let numerator = BigInt(`${whole}${fraction}` || '0') * (sign === '-' ? -1n : 1n);
  let powerOfTen = -fraction.length;
  if (exponentMark !== undefined) {
    const exponent = Number(exponentText);
    if (Math.abs(exponent) > maximumExponent) throw new QuantityError(`must have an exponent from -${maximumExponent} to ${maximumExponent}, got ${JSON.stringify(value)}`);
    powerOfTen += exponent;
  } else if (suffix in binarySuffixes) {
    numerator *= binarySuffixes[suffix] ?? 1n;
  } else {
    powerOfTen += decimalSuffixes[suffix] ?? 0;
  }
  return powerOfTen >= 0 ? { numerator: numerator * 10n ** BigInt(powerOfTen), denominator: 1n } : { numerator, denominator: 10n ** BigInt(-powerOfTen) };
}

/** The quantity times `unitsPerOne` (1 for bytes, 1000 for millicores): whole, or undefined if it has a fraction left. */
export function wholeUnits(quantity: Quantity, unitsPerOne = 1n): bigint | undefined {
  const scaled = quantity.numerator * unitsPerOne;
  return scaled % quantity.denominator === 0n ? scaled / quantity.denominator : undefined;
}

/** The quantity times `unitsPerOne`, rounded up to a whole number, as Kubernetes' MilliValue rounds. */
export function wholeUnitsRoundedUp(quantity: Quantity, unitsPerOne = 1n): bigint {
  const scaled = quantity.numerator * unitsPerOne;
  const quotient = scaled / quantity.denominator;
  return scaled % quantity.denominator > 0n ? quotient + 1n : quotient;
}

const binaryNames = ['Ei', 'Pi', 'Ti', 'Gi', 'Mi', 'Ki'] as const;

/** Bytes as a quantity, in the largest binary unit that divides them: 1073741824 -> "1Gi", 1536 -> "1536". */
export function formatBytes(bytes: number): string {
  for (const name of binaryNames) {
    const unit = Number(binarySuffixes[name]);
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${name}`;
  }
  return String(bytes);
}

/** Thousandths of a CPU as a quantity: 2000 -> "2", 250 -> "250m". */
export function formatMillicores(millicores: number): string {
  return millicores % 1000 === 0 ? String(millicores / 1000) : `${millicores}m`;
}
