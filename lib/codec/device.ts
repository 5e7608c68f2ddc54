/** The device grammar, checked once here for the library and the CLI (native/session.cc checks the same). */
import { typeError } from '../common/errors';

/** Where the model runs: the CPU, the first GPU, or GPU N. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

const DEVICE = /^(cpu|cuda|cuda:\d{1,4})$/;

/** `value` as a Device, or a TypeError (code ENCODEC_BAD_INPUT) naming `name` (e.g. 'device', '--device'). */
export function parseDevice(value: unknown, name = 'device'): Device {
  if (typeof value !== 'string' || !DEVICE.test(value)) {
    throw typeError(`${name} must be 'cpu', 'cuda' or 'cuda:N', got '${String(value)}'`);
  }
  return value as Device;
}
