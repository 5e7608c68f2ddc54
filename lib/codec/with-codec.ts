/** The one way the library and the CLI get a model for a piece of work: given, or loaded and disposed after. */
import { Encodec, LoadOptions } from './codec';
import { resolveModelPath } from '../model/model-file';

/** A loaded model (used as is, not disposed), or a model file path (undefined: $ENCODEC_MODEL, then the cache path). */
export type ModelRef = Encodec | string | undefined;

/**
 * Runs `work` with the codec `model` names; a codec this loads is disposed when `work` settles.
 *
 * A codec loaded here skips the warm-up unless `load.warmup` asks for it: the warm-up only moves the first calls'
 * one-off costs (oneDNN's primitives, libtorch's lazy set-up) to load time so that a long-lived codec answers
 * its first call fast. For one piece of work (even a batch of files) the first call pays those costs anyway, so
 * the warm-up (encoding and decoding 2.2 s of noise twice, ~2 s on 2 cores) would only add to the run.
 */
export async function withCodec<T>(model: ModelRef, load: LoadOptions, work: (codec: Encodec) => Promise<T>): Promise<T> {
  if (model instanceof Encodec) return work(model);
  const codec = await Encodec.load(resolveModelPath(model), { warmup: false, ...load });
  try {
    return await work(codec);
  } finally {
    codec.dispose();
  }
}
