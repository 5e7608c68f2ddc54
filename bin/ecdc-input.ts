/**
 * Reading an `.ecdc` file for a loaded codec on the command line: the file must be of the codec's model, and an
 * LM-compressed file (`"lm": true`) loads its LM from --lm-model, $ENCODEC_LM_MODEL or beside the model file.
 */
import * as fs from 'node:fs';

import { Encodec } from '../lib/codec/codec';
import { EncodecLm } from '../lib/lm/lm';
import { EcdcError, EcdcFile, decodeEcdc, decodeEcdcLm, parseEcdcHeader } from '../lib/io/ecdc';
import { resolveLmPath } from '../lib/model/lm-file';

/**
 * Reads and decodes `input`; throws (exit 2) when it was made with another model than `codec`'s. `lmJobs`: the
 * LM's threads (LmLoadOptions.jobs; default the cores: 2 share each decoded frame).
 */
export async function readEcdcForCodec(input: string, codec: Encodec, lmModel?: string, lmThreads?: number, lmJobs?: number): Promise<EcdcFile> {
  const buffer = await fs.promises.readFile(input);
  const { metadata } = parseEcdcHeader(buffer, input);
  if (metadata.model !== codec.info.model) {
    throw new EcdcError(
      `${input} was made with ${metadata.model}, but the model '${codec.modelPath}' is ${codec.info.model}; ` +
        `pass --model with an ${metadata.model} model file`,
      'ECDC_WRONG_MODEL',
    );
  }
  if (!metadata.lm) return decodeEcdc(buffer, input);
  const lm = await EncodecLm.load(resolveLmPath(lmModel, codec.modelPath, metadata.model), { threads: lmThreads, jobs: lmJobs });
  try {
    return await decodeEcdcLm(buffer, lm, input);
  } finally {
    lm.dispose();
  }
}

/** Loads the LM for compressing with `codec` (--lm): --lm-model, $ENCODEC_LM_MODEL or beside the model file. */
export async function loadLmForCodec(codec: Encodec, lmModel: string | undefined, threads?: number, jobs?: number): Promise<EncodecLm> {
  const lm = await EncodecLm.load(resolveLmPath(lmModel, codec.modelPath, codec.info.model), { threads, jobs });
  if (lm.codec !== codec.info.model) {
    lm.dispose();
    throw new EcdcError(
      `the LM '${lm.lmPath}' belongs to ${lm.codec}, but the model is ${codec.info.model}; pass --lm-model with its LM`,
      'ECDC_WRONG_MODEL',
    );
  }
  return lm;
}
