/** The one way the library and the CLI get a model for a piece of work: given, or loaded and disposed after. */
import { Encodec, LoadOptions } from './codec';
import { resolveModelPath } from '../model/model-file';

/** A loaded model (used as is, not disposed), or a model file path (undefined: $ENCODEC_MODEL, then the cache path). */
export type ModelRef = Encodec | string | undefined;

/** Runs `work` with the codec `model` names; a codec this loads is disposed when `work` settles. */
export async function withCodec<T>(model: ModelRef, load: LoadOptions, work: (codec: Encodec) => Promise<T>): Promise<T> {
  if (model instanceof Encodec) return work(model);
  const codec = await Encodec.load(resolveModelPath(model), load);
  try {
    return await work(codec);
  } finally {
    codec.dispose();
  }
}
