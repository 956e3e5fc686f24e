import { FloodgateError, show } from '../errors.js';

/**
 * Validate a whole-number option of the resilience settings (thresholds, intervals, deadlines):
 * `undefined` takes the default; anything else outside [min, max] is a configuration error that says
 * what to write instead.
 */
export function wholeNumberOption(
  value: unknown,
  fallback: number,
  name: string,
  min: number,
  max: number,
  unit = '',
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `${name} ${show(value)} must be a whole number${unit} from ${min} to ${max}, like ${fallback}`,
    );
  }
  return value;
}
