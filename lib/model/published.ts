/**
 * The checkpoints Meta published, by SHA-256: a model file says its weights are "official" only when the
 * checkpoint it was exported from is one of them, whatever its tensor layout or file name.
 *
 * Meta's file names carry the first 8 hex digits of the file's SHA-256 (torch.hub checks exactly those); the
 * full digest is listed where it is known. Hugging Face's copies (facebook/encodec_24khz, facebook/encodec_48khz)
 * have no digest this package can check offline: `model fetch` compares theirs with the one the hub states.
 */
import type { ModelSource } from './model-file';

export interface PublishedCheckpoint {
  /** Meta's file name. */
  file: string;
  /** The full SHA-256 where known, else the 8-digit prefix in the file name. */
  sha256: string;
}

export const PUBLISHED_CHECKPOINTS: readonly PublishedCheckpoint[] = [
  { file: 'encodec_24khz-d7cc33bc.th', sha256: 'd7cc33bcf1aad7f2dad9836f36431530744abeace3ca033005e3290ed4fa47bf' },
  { file: 'encodec_48khz-7e698e3e.th', sha256: '7e698e3e' },
  { file: 'encodec_lm_24khz-1608e3c0.th', sha256: '1608e3c0' },
  { file: 'encodec_lm_48khz-7add9fc3.th', sha256: '7add9fc3' },
];

/** The published checkpoint with this SHA-256 (full match, or the name's prefix where only that is known). */
export function publishedCheckpoint(sha256: string | null | undefined): PublishedCheckpoint | undefined {
  if (!sha256) return undefined;
  const digest = sha256.toLowerCase();
  return PUBLISHED_CHECKPOINTS.find((p) => (p.sha256.length === 64 ? digest === p.sha256 : digest.startsWith(p.sha256)));
}

/** Where a model's weights came from, in words that claim "official" only for a published checkpoint. */
export function describeSource(source: ModelSource | { kind: string; file: string | null; sha256: string | null; seed: number | null }): string {
  if (source.kind === 'random') return `random weights${source.seed !== null ? ` (seed ${source.seed})` : ''}`;
  const file = source.file ? ` ${source.file}` : '';
  const published = publishedCheckpoint(source.sha256);
  if (published) return `official: Meta's published ${published.file}${source.file && source.file !== published.file ? ` (as ${source.file})` : ''}`;
  if (source.kind === 'huggingface') return `checkpoint${file} in Hugging Face's layout (no published SHA-256 known offline to check it against)`;
  return `checkpoint${file} in Meta's layout, not one of Meta's published files`;
}
