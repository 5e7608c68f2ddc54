/**
 * encodec-native: Meta's EnCodec 24 kHz neural audio codec for Node.js.
 *
 * ```ts
 * import { Encodec, loadAudio } from 'encodec-native';
 * const codec = await Encodec.load('encodec_24khz.pt');
 * const { samples } = await loadAudio('speech.wav');
 * const codes = await codec.encode(samples, { bandwidth: 6 }); // { data: Int16Array, nQ: 8, nFrames }
 * const audio = await codec.decode(codes);                       // Float32Array, 24 kHz
 * ```
 */
export * from './codec/bandwidth';
export { Encodec, EncodeOptions, LoadOptions, Device } from './codec/codec';
export { Codes, Embeddings, checkCodes } from './codec/codes';
export { DecodeOptions, EncodeStreamOptions } from './codec/codec';
export { ChunkOptions, CodesBlock, DEFAULT_CHUNK_SECONDS, DEFAULT_CONTEXT_SECONDS } from './codec/chunking';
export { threadsPerJob, availableCores } from './codec/threads';
export { ModelInfo, ModelSource, readModelInfo, resolveModelPath, defaultModelPath, sha256File } from './model/model-file';
export { exportModel, ExportOptions, ExportError, findPython } from './model/exporter';
export { fetchModel, FetchOptions, FetchResult, FetchSource } from './model/fetch';
export { readCodesNpy, writeCodesNpy } from './io/codes-file';
export {
  readEcdc,
  writeEcdc,
  encodeEcdc,
  decodeEcdc,
  encodeEcdcLm,
  decodeEcdcLm,
  parseEcdcHeader,
  ecdcSegmentFrames,
  EcdcError,
  EcdcFile,
  EcdcMetadata,
} from './io/ecdc';
export { EncodecLm, LmLoadOptions, LmDecodedSegments } from './codec/lm';
export { LmInfo, readLmInfo, resolveLmPath, defaultLmPath, LM_CHECKPOINTS } from './model/lm-file';
export { fetchLm, FetchLmOptions, FetchLmResult, lmCheckpointUrl } from './model/fetch-lm';
export { runtimeInfo, RuntimeInfo, BlasInfo, blasInfo, peakRss } from './codec/runtime';
export * from './io/npy';
export * from './io/wav';
export * from './io/audio';
export { writeFileAtomic } from './common/atomic';
export * from './fmri/alignment';
export * from './fmri/hrf';
export * from './dsp/mel';
export * from './fmri/features';
export * from './fmri/features-file';
export { roundtripReport, formatRoundtripReport, RoundtripOptions, RoundtripReport, RoundtripResult, DEFAULT_REPORT_BANDWIDTHS } from './report/report';
export { inspectFeatures, formatInspection, plotFeatures, inspectionSpec, FeatureArray, FeatureInspection, CodebookStats, InspectOptions } from './report/inspect';
export { renderPng, writePng, vegaLiteToSvg, svgToPng, pngSize, stackedHeatmapSpec, heatmapDataUrl, VegaLiteSpec, HeatmapPanel, HeatmapAxes, Matrix, RenderOptions } from './report/plot';
export { setVerbose, isDebugEnabled, setLogSink, debugSelects } from './common/log';
export { snr, siSnr, codeAgreement, stoi, computeMetrics, resampleOctave, QualityMetrics, StoiOptions } from './quality/metrics';
export { runDoctor, classifyBlas, checkCheckpoint, DoctorCheck, DoctorOptions, CheckStatus } from './report/doctor';
export { roundTripQuality, formatQuality, RoundTripQuality, RoundTripQualityOptions } from './quality/roundtrip-quality';
