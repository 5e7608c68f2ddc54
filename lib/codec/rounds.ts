/**
 * A stream of items (clips, code blocks) processed in rounds: items are read until a round holds `roundSize`
 * (seconds of audio) or the stream ends, the round runs as one batch, and its outputs are yielded in input
 * order. The next round is read while one runs, and runs while the outputs of the one before are consumed: at
 * most two rounds of input (each under `roundSize` plus one item) and one round of outputs are held at once.
 */

/** An (async) iterable of items, as encodeMany / decodeMany take them. */
export type ItemSource<T> = AsyncIterable<T> | Iterable<T>;

/** Whether `value` can be iterated with for await. */
export function isItemSource(value: unknown): value is ItemSource<unknown> {
  return value !== null && typeof value === 'object' && (Symbol.asyncIterator in value || Symbol.iterator in value);
}

/**
 * Yields `run(round)`'s outputs round by round, in input order. `check(value, index)` validates each item (its
 * error ends the stream after the items before it are yielded); `size(item)` is its share of `roundSize`.
 */
export async function* inRounds<I, O>(
  items: ItemSource<unknown>,
  check: (value: unknown, index: number) => I,
  size: (item: I) => number,
  roundSize: number,
  run: (round: I[]) => Promise<O[]>,
): AsyncGenerator<O, void, undefined> {
  const iterator: AsyncIterator<unknown> | Iterator<unknown> = Symbol.asyncIterator in items
    ? (items as AsyncIterable<unknown>)[Symbol.asyncIterator]()
    : (items as Iterable<unknown>)[Symbol.iterator]();
  let index = 0;
  let ended = false;
  let failure: { error: unknown } | undefined;

  const readRound = async (): Promise<I[]> => {
    const round: I[] = [];
    let held = 0;
    while (!ended && !failure && held < roundSize) {
      try {
        const next = await iterator.next();
        if (next.done) {
          ended = true;
          break;
        }
        const item = check(next.value, index++);
        round.push(item);
        held += size(item);
      } catch (error) {
        failure = { error };
      }
    }
    return round;
  };

  const start = (round: I[]): Promise<O[]> | undefined => {
    if (round.length === 0) return undefined;
    const running = run(round);
    running.catch(() => undefined); // awaited below; reading meanwhile must not leave a rejection unhandled
    return running;
  };
  try {
    let running = start(await readRound());
    while (running) {
      const next = await readRound(); // read the next round while this one runs
      const outputs = await running;
      running = start(next); // and run it while this one's outputs are consumed
      for (const output of outputs) yield output;
    }
    if (failure) throw failure.error;
  } finally {
    // stopped early (a failure, or the consumer broke out of its loop): let the source close its files
    if (!ended) await iterator.return?.();
  }
}
