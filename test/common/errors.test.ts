/** Error codes: the helpers, the CLI's exit code for each, and codes set where lib/ throws. */
import { expect } from 'chai';

import { exitCodeFor, UsageError } from '../../bin/cli-util';
import { ERROR_CODES, codedError, errorCode, hasCode, isInputError, rangeError, typeError } from '../../lib/common/errors';
import { formatDb, formatScore, toJson } from '../../lib/common/format';
import { checkBandwidth } from '../../lib/codec/bandwidth';
import { chunkPlan } from '../../lib/codec/chunk-plan';
import { checkCodeRange, checkCodes } from '../../lib/codec/codes';
import { parseDevice } from '../../lib/codec/device';
import { decodeNpy } from '../../lib/io/npy';
import { decodeEcdc } from '../../lib/io/ecdc';
import { parseModelInfo } from '../../lib/model/model-file';
import { computeMetrics, stoi } from '../../lib/quality/metrics';

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

describe('error codes', function () {
  it('keep the class and add a code', function () {
    const t = typeError('bad type');
    expect(t).to.be.instanceOf(TypeError);
    expect(t.code).to.equal('ENCODEC_BAD_INPUT');
    expect(Object.keys(t)).to.include('code'); // shown by console.log, as on Node's errors
    const r = rangeError('too short', 'ENCODEC_NO_SPEECH');
    expect(r).to.be.instanceOf(RangeError);
    expect(errorCode(r)).to.equal('ENCODEC_NO_SPEECH');
    const e = codedError('ENCODEC_OOM', 'no memory', { cause: t });
    expect(e.constructor).to.equal(Error);
    expect(hasCode(e, 'ENCODEC_OOM')).to.equal(true);
    expect(e.cause).to.equal(t);
    expect(errorCode(undefined)).to.equal(undefined);
    expect(errorCode({ code: 42 })).to.equal(undefined);
  });

  it('are set where lib/ rejects input, files and model metadata', function () {
    expect(thrown(() => checkBandwidth(7)).code).to.equal('ENCODEC_BAD_INPUT');
    expect(thrown(() => chunkPlan({ chunkSeconds: -1 })).code).to.equal('ENCODEC_BAD_INPUT');
    expect(thrown(() => checkCodes({ data: new Int16Array([1, 2]), nQ: 1, nFrames: 1 })).code).to.equal('ENCODEC_BAD_INPUT');
    expect(thrown(() => checkCodeRange(new Int16Array([2000]))).code).to.equal('ENCODEC_BAD_INPUT');
    expect(thrown(() => parseDevice('gpu', '--device'))).to.be.instanceOf(TypeError).and.include({ code: 'ENCODEC_BAD_INPUT' });
    expect(thrown(() => parseDevice('gpu', '--device')).message).to.equal("--device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'");
    expect(parseDevice('cuda:1')).to.equal('cuda:1');
    expect(thrown(() => decodeNpy(Buffer.from('not an npy file'))).code).to.equal('ENCODEC_FILE_FORMAT');
    expect(thrown(() => decodeEcdc(Buffer.from('ECDX\0\0\0\0\0'))).code).to.equal('ECDC_INVALID');
    expect(thrown(() => parseModelInfo('{not json', 'm.pt')).code).to.equal('ENCODEC_MODEL_FILE');
  });

  it('let computeMetrics tell too little speech from other errors by code (ENCODEC_NO_SPEECH)', function () {
    const short = new Float32Array(2400).map((_, i) => Math.sin(i / 7));
    expect(thrown(() => stoi(short, short, 24000)).code).to.equal('ENCODEC_NO_SPEECH');
    expect(computeMetrics(short, short, 24000).stoi).to.equal(null);
    // any other RangeError still propagates
    expect(thrown(() => computeMetrics(short, short, 5)).code).to.equal('ENCODEC_BAD_INPUT');
  });

  it('decide the CLI exit code: 2 only for the user input codes, 1 for bugs and everything else', function () {
    expect(exitCodeFor(new UsageError('bad --flag'))).to.equal(2);
    expect(exitCodeFor(typeError('bad value'))).to.equal(2);
    expect(exitCodeFor(rangeError('short', 'ENCODEC_NO_SPEECH'))).to.equal(2);
    // a TypeError from a bug (no code) is not the user's fault
    expect(exitCodeFor(new TypeError("Cannot read properties of undefined (reading 'x')"))).to.equal(1);
    expect(exitCodeFor(new RangeError('Invalid array length'))).to.equal(1);
    expect(exitCodeFor(codedError('ENCODEC_OOM', 'no memory'))).to.equal(1);
    expect(exitCodeFor(Object.assign(new Error('exporter failed'), { code: 'ENCODEC_EXPORT', exitCode: 2 }))).to.equal(2);
    expect(exitCodeFor(Object.assign(new Error('gone'), { code: 'ENOENT' }))).to.equal(1);
    for (const [code, exit] of Object.entries(ERROR_CODES)) expect(isInputError({ code }), code).to.equal(exit === 2);
  });
});

describe('numbers for people and for JSON', function () {
  it('formats dB and scores one way', function () {
    expect(formatDb(12.345)).to.equal('12.35 dB');
    expect(formatDb(12.345, 1)).to.equal('12.3 dB');
    expect(formatDb(Infinity)).to.equal('inf dB (identical)');
    expect(formatDb(-Infinity)).to.equal('-inf dB');
    expect(formatScore(0.91234)).to.equal('0.912');
    expect(formatScore(null)).to.equal('n/a');
  });

  it('writes non-finite numbers as null and marks identical metrics', function () {
    const parsed = JSON.parse(toJson({ a: NaN, m: { snr: Infinity, siSnr: Infinity, stoi: 1 }, n: { snr: 3.5 }, list: [Infinity, 1] }));
    expect(parsed).to.deep.equal({ a: null, m: { snr: null, siSnr: null, stoi: 1, identical: true }, n: { snr: 3.5, identical: false }, list: [null, 1] });
  });
});
