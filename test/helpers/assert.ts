/** Assertions shared by the tests. */
import { expect } from 'chai';

/** Awaits `promise`, expecting a rejection of class `type` whose message matches `pattern`; returns the error. */
export async function rejects(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => Error,
  pattern: RegExp,
): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(type);
    expect((err as Error).message).to.match(pattern);
    return err as Error;
  }
  throw new Error(`expected a rejection matching ${pattern}`);
}
