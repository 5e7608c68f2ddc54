/**
 * The call policy (lib/codec/call-policy.ts): what each exporter version's metadata and the device give, so that
 * model files exported by earlier versions keep the defaults they were measured with. Read from metadata alone (no
 * model is loaded: the current exporter writes only the newest kind of file).
 */
import { expect } from 'chai';

import {
  CUDA_BATCH_SECONDS,
  DEFAULT_BATCH_SECONDS,
  LEGACY_BATCH_SECONDS,
  SPAN_BATCH_SECONDS,
  UNSEGMENTED_SPAN_BATCH_SECONDS,
  callPolicy,
  laneThreads,
} from '../../lib/codec/call-policy';
import type { ModelInfo } from '../../lib/model/model-file';

/** Metadata of a file written by exporter `version` (only the fields the policy reads). */
function exportedBy(version: '1.0' | '1.1' | '1.2' | '1.3' | '1.5'): ModelInfo {
  const at = (v: string): boolean => version >= v;
  return {
    exporter_version: `${version}.0`,
    ...(at('1.1') && { cpu_batching: 'lstm' }),
    ...(at('1.2') && { span_methods: true }),
    ...(at('1.3') && { lstm_segment_steps: 75 }),
    ...(at('1.5') && { pooled_span_quantum: 25, latents_span: true }),
  } as unknown as ModelInfo;
}

describe('call policy by exporter version and device', () => {
  it('gives each exporter version on the CPU its measured default, span calls from 1.2, pooling from 1.5', () => {
    expect(callPolicy(exportedBy('1.0'), 'cpu')).to.deep.equal({ batchSeconds: LEGACY_BATCH_SECONDS, spanCalls: false, pooled: false });
    expect(callPolicy(exportedBy('1.1'), 'cpu')).to.deep.equal({ batchSeconds: DEFAULT_BATCH_SECONDS, spanCalls: false, pooled: false });
    expect(callPolicy(exportedBy('1.2'), 'cpu')).to.deep.equal({ batchSeconds: UNSEGMENTED_SPAN_BATCH_SECONDS, spanCalls: true, pooled: false });
    expect(callPolicy(exportedBy('1.3'), 'cpu')).to.deep.equal({ batchSeconds: SPAN_BATCH_SECONDS, spanCalls: true, pooled: false });
    expect(callPolicy(exportedBy('1.5'), 'cpu')).to.deep.equal({ batchSeconds: SPAN_BATCH_SECONDS, spanCalls: true, pooled: true });
  });

  it('batches windows on CUDA whatever the version', () => {
    for (const version of ['1.0', '1.1', '1.2', '1.3', '1.5'] as const) {
      expect(callPolicy(exportedBy(version), 'cuda:0')).to.deep.equal({ batchSeconds: CUDA_BATCH_SECONDS, spanCalls: false, pooled: false });
    }
  });

  it('shares the threads between two lanes for span calls, one lane otherwise', () => {
    const span = callPolicy(exportedBy('1.5'), 'cpu');
    expect(laneThreads(span, 1)).to.deep.equal([0]);
    expect(laneThreads(span, 2)).to.deep.equal([1, 1]);
    expect(laneThreads(span, 5)).to.deep.equal([3, 2]);
    expect(laneThreads(callPolicy(exportedBy('1.1'), 'cpu'), 8)).to.deep.equal([0]);
  });
});
