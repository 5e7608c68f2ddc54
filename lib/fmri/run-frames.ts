/**
 * The align stage's input: the run's frames on the model's frame grid, composed from the stimuli's own frames
 * (each encoded alone, once: lib/encoding) without running the model.
 *
 * Run frame n covers run samples [hop n, hop (n + 1)); it takes the frame of the stimulus playing at its centre
 * (hop n + hop / 2), or, for a frame the stimulus fills only in part at its end, at its first sample: the stimulus
 * frame holding that sample of the file (file sample = run sample - the piece's run start + its file start). A frame
 * no stimulus plays in takes the model's frame for digital silence. A stimulus whose onset is a whole number of
 * frames lands frame for frame; otherwise each frame is placed within half a frame (hop / 2 samples) of its time.
 * With one stimulus at onset 0 and no run length, the run's frames are the file's frames exactly.
 */
import { codedError } from '../common/errors';
import { StimulusFrames } from '../encoding/frame-source';
import { FrameArray } from '../encoding/npy-frames';
import { RunPlan } from './run-timeline';

/** Run frames per block. */
const BLOCK = 4096;

/** Frames of a run of `samples` samples: ceil(samples / hop). */
export function runFrameCount(samples: number, hop: number): number {
  return Math.ceil(samples / hop);
}

/**
 * The run's frames, block by block ([rows, n] each, `first` the block's first run frame), from the stimuli's frames
 * (`sources[i]` for stimulus i of the plan, undefined for one the run never reaches; all of one model, so of one
 * silence frame).
 */
export async function* runFrameBlocks(
  plan: RunPlan,
  sources: (StimulusFrames | undefined)[],
  hop: number,
  frames = runFrameCount(plan.samples, hop),
): AsyncGenerator<{ data: FrameArray; first: number; n: number }> {
  const any = sources.find((x) => x !== undefined);
  if (!any) throw codedError('ENCODEC_INTERNAL', 'internal error: a run without encoded stimuli');
  const { rows, integer, silence } = any;
  for (let first = 0; first < frames; first += BLOCK) {
    const n = Math.min(BLOCK, frames - first);
    const data: FrameArray = integer ? new Int16Array(rows * n) : new Float32Array(rows * n);
    // which stimulus frame each run frame takes (-1: silence), then each source's range loaded once
    const piece = new Int32Array(n).fill(-1);
    const index = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const start = (first + i) * hop;
      const centre = start + hop / 2;
      for (let p = 0; p < plan.pieces.length; p++) {
        const q = plan.pieces[p];
        const at = centre >= q.runStart && centre < q.runStart + q.count ? centre : start >= q.runStart && start < q.runStart + q.count ? start : -1;
        if (at < 0) continue;
        const source = sources[q.stimulus] as StimulusFrames;
        piece[i] = p;
        index[i] = Math.min(Math.floor((at - q.runStart + q.fileStart) / hop), source.nFrames - 1);
        break;
      }
    }
    for (let p = 0; p < plan.pieces.length; p++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < n; i++) {
        if (piece[i] !== p) continue;
        lo = Math.min(lo, index[i]);
        hi = Math.max(hi, index[i]);
      }
      if (lo > hi) continue;
      const source = sources[plan.pieces[p].stimulus] as StimulusFrames;
      await source.load(lo, hi + 1);
      // runs of consecutive stimulus frames are copied row by row at once
      for (let i = 0; i < n; ) {
        if (piece[i] !== p) {
          i++;
          continue;
        }
        let end = i + 1;
        while (end < n && piece[end] === p && index[end] === index[i] + (end - i)) end++;
        source.copyFrames(index[i], end - i, data, n, i);
        i = end;
      }
    }
    for (let i = 0; i < n; i++) {
      if (piece[i] >= 0) continue;
      for (let r = 0; r < rows; r++) data[r * n + i] = silence[r];
    }
    yield { data, first, n };
  }
}
