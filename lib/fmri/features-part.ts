/**
 * One run's FeatureSet kept whole in a file, bit for bit (lib/common/binary-json.ts), so that runs extracted by
 * different tasks of a job array can be joined later (`encodec-native merge`) into exactly the `--concat` file one
 * process would have written from the same runs in memory. Written atomically.
 */
import * as fs from 'node:fs';

import { writeFileAtomic } from '../common/atomic';
import { decodeBinaryJson, encodeBinaryJson } from '../common/binary-json';
import { codedError } from '../common/errors';
import type { FeatureSet } from './feature-set';

/** Writes `result` to `target` (temporary file, then rename). */
export async function writeFeaturesPart(target: string, result: FeatureSet): Promise<void> {
  await writeFileAtomic(target, encodeBinaryJson(result));
}

/** The FeatureSet a part file holds. */
export async function readFeaturesPart(file: string): Promise<FeatureSet> {
  const value = decodeBinaryJson(await fs.promises.readFile(file), file) as Partial<FeatureSet> | null;
  if (!value || typeof value !== 'object' || !ArrayBuffer.isView(value.features) || !Array.isArray(value.shape)) {
    throw codedError('ENCODEC_FILE_FORMAT', `${file} holds no feature set`);
  }
  return value as FeatureSet;
}
