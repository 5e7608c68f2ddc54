/**
 * encodec-native: Meta's EnCodec neural audio codec (24 kHz mono, 48 kHz stereo) for Node.js.
 *
 * ```ts
 * import { Encodec, loadAudio } from 'encodec-native';
 * const codec = await Encodec.load('encodec_24khz.pt');
 * const { samples } = await loadAudio('speech.wav');
 * const codes = await codec.encode(samples, { bandwidth: 6 }); // { data: Int16Array, nQ: 8, nFrames }
 * const audio = await codec.decode(codes);                       // Float32Array, 24 kHz
 * ```
 *
 * The exports are listed one by one: what a user may call, with its option and result types. Internals (checks,
 * parsers, the chunk planner) stay inside; test/architecture/exports.test.ts checks that every name the README
 * and docs/ mention is exported here.
 */
export { SAMPLE_RATE, HOP_LENGTH, FRAME_RATE, CODEBOOK_SIZE, MAX_CODEBOOKS, LATENT_DIM, BANDWIDTHS, codebooksForBandwidth, bandwidthForCodebooks, framesForSamples } from './codec/bandwidth';
export { Encodec, LoadOptions, Device } from './codec/codec';
export { EncodeOptions, DecodeOptions, EncodeStreamOptions, LatentsOptions, LatentsStreamOptions, ManyOptions, EncodeManyOptions, DecodeManyOptions } from './codec/coding-options';
export { ChunkOptions, DEFAULT_CHUNK_SECONDS, DEFAULT_CONTEXT_SECONDS } from './codec/coding-options';
export { Codes, SegmentedCodes, Embeddings, CodesBlock, LatentsBlock, checkCodes } from './codec/codes';
export { SegmentGeometry, framesForSegmentedSamples, segmentCount } from './codec/segments';
export { toPlanar, fromPlanar } from './common/planar';
export { isSegmentedModel } from './model/model-file';
export { FAMILIES, DEFAULT_FAMILY, ModelFamily, FamilyName, Segmenting, findFamily, familyOf } from './model/family';
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
export { EncodecLm, LmLoadOptions, LmDecodedSegments } from './lm/lm';
export { LmInfo, readLmInfo, resolveLmPath, defaultLmPath, LM_CHECKPOINTS } from './model/lm-file';
export { fetchLm, FetchLmOptions, FetchLmResult, lmCheckpointUrl } from './model/fetch-lm';
export { runtimeInfo, RuntimeInfo, BlasInfo, blasInfo, peakRss } from './runtime/runtime';
export { readNpy, writeNpy, decodeNpy, encodeNpy, NpyData, NpyArray } from './io/npy';
export { readWav, writeWav, decodeWav, encodeWav, probeWav, WavFormat, WavInfo, WavAudio, WavWriteOptions } from './io/wav';
export { loadAudio, streamAudio, probeAudio, ffmpegPath, ffprobePath, AudioError, AudioErrorCode, LoadAudioOptions, StreamAudioOptions, LoadedAudio, AudioProbe } from './io/audio';
export { writeFileAtomic } from './common/atomic';
export { ERROR_CODES, ErrorCode, errorCode, hasCode, isInputError } from './common/errors';
export { framesPerTr, trStartFrame, trStartTime, trCount, trCountForSamples, samplesForTrs } from './fmri/alignment';
export { hrfKernel, convolveHrf, HrfModel, HRF_MODELS, HrfKernelOptions } from './fmri/hrf';
export { melSettings, melSpectrogram, melToAudio, melFilterbank, hzToMel, melToHz, powerToDb, dbToPower, MelOptions, MelSettings, MelSpectrogram, MEL_DEFAULTS } from './dsp/mel';
export { extractFeatures, extractRunFeatures, extractedAudio } from './fmri/features';
export { ExtractOptions } from './fmri/extract-options';
export { featuresToAudio, FeaturesToAudioOptions, FeatureAudio } from './fmri/features-audio';
export {
  FeatureSet,
  FeatureInput,
  TrMetadata,
  FeatureMode,
  FeatureOutput,
  FeatureLayout,
  FeatureKind,
  HrfOption,
  FEATURE_MODES,
  FEATURE_OUTPUTS,
  FEATURE_LAYOUTS,
  HRF_OPTIONS,
  DEFAULT_TR,
  DEFAULT_FEATURE_BANDWIDTH,
} from './fmri/feature-set';
export { readFeatures, writeFeatures, featureFilesFor, FeatureFiles, ReadFeaturesOptions } from './fmri/features-file';
export { encodeFile, modelRateFrames, EncodeFileOptions, ModelRateOptions, ModelRateFrames } from './encoding/encode-file';
export { EncodingCache, EntrySummary, cacheKey, ENCODING_VERSION } from './encoding/cache';
export { defaultCacheDir } from './encoding/cache-dir';
export { CacheOption } from './encoding/context';
export { writeFramesFile, readFramesFile, FrameSeries, FramesFormat } from './io/frames-file';
export { StimulusPlacement, PlayedStimulus, VolumeTiming, volumeTiming } from './fmri/run-timeline';
export { Resample, RESAMPLE_METHODS, LANCZOS_LOBES, lanczos, volumeTimes, VolumeResampler, FrameConvolver, FrameClock } from './fmri/resample';
export { checkDelays, delayColumns, zscoreColumns } from './fmri/design';
export { readEvents, readBoldTiming, BoldTiming, featuresNameForEvents, sidecarFor } from './fmri/bids';
export { readNiftiTiming, NiftiTiming } from './fmri/nifti';
export { writeFeaturesH5, writeConcatH5 } from './fmri/h5';
export { roundTripReport, formatRoundTripReport, RoundTripReportOptions, RoundTripReport, RoundTripResult, DEFAULT_REPORT_BANDWIDTHS } from './report/report';
/** @deprecated the names before roundTripReport (renamed to match roundTripQuality, which scores without writing a report). */
export {
  roundTripReport as roundtripReport,
  formatRoundTripReport as formatRoundtripReport,
  RoundTripReportOptions as RoundtripOptions,
  RoundTripReport as RoundtripReport,
  RoundTripResult as RoundtripResult,
} from './report/report';
export { inspectFeatures, formatInspection, plotFeatures, inspectionSpec, FeatureArray, FeatureInspection, CodebookStats, InspectOptions } from './report/inspect';
export { renderPng, writePng, vegaLiteToSvg, svgToPng, pngSize, stackedHeatmapSpec, heatmapDataUrl, VegaLiteSpec, HeatmapPanel, HeatmapAxes, Matrix, RenderOptions } from './report/plot';
export { setVerbose, isDebugEnabled, setLogSink, debugSelects } from './common/log';
export { snr, siSnr, codeAgreement, stoi, computeMetrics, resampleOctave, QualityMetrics, StoiOptions } from './quality/metrics';
export { runDoctor, classifyBlas, checkCheckpoint, DoctorCheck, DoctorOptions, CheckStatus } from './doctor/doctor';
export { roundTripQuality, formatQuality, RoundTripQuality, RoundTripQualityOptions } from './quality/roundtrip-quality';
