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
export * from './bandwidth';
export { Encodec, Codes, Embeddings, EncodeOptions, LoadOptions, Device, checkCodes } from './codec';
export { DecodeOptions, EncodeStreamOptions } from './codec';
export { ChunkOptions, CodesBlock, DEFAULT_CHUNK_SECONDS, DEFAULT_CONTEXT_SECONDS } from './chunking';
export { threadsPerJob, availableCores } from './threads';
export { ModelInfo, ModelSource, readModelInfo, resolveModelPath, defaultModelPath, sha256File } from './model-file';
export { exportModel, ExportOptions, ExportError, findPython } from './exporter';
export { fetchModel, FetchOptions, FetchResult, FetchSource } from './fetch';
export { readCodesNpy, writeCodesNpy } from './codes-file';
export { readEcdc, writeEcdc, encodeEcdc, decodeEcdc, EcdcFile, EcdcMetadata } from './ecdc';
export { runtimeInfo, RuntimeInfo, BlasInfo, blasInfo, peakRss } from './runtime';
export * from './npy';
export * from './wav';
export * from './audio';
export { writeFileAtomic } from './atomic';
export * from './alignment';
export * from './hrf';
export * from './mel';
export * from './features';
export * from './features-file';
export { roundtripReport, formatRoundtripReport, RoundtripOptions, RoundtripReport, RoundtripResult, DEFAULT_REPORT_BANDWIDTHS } from './report';
export { inspectFeatures, formatInspection, plotFeatures, inspectionSpec, FeatureArray, FeatureInspection, CodebookStats, InspectOptions } from './inspect';
export { renderPng, writePng, vegaLiteToSvg, svgToPng, pngSize, stackedHeatmapSpec, heatmapDataUrl, VegaLiteSpec, HeatmapPanel, HeatmapAxes, Matrix, RenderOptions } from './plot';
export { setVerbose, isDebugEnabled, setLogSink, debugSelects } from './log';
export { snr, siSnr, codeAgreement, stoi, computeMetrics, resampleOctave, QualityMetrics, StoiOptions } from './metrics';
export { runDoctor, classifyBlas, checkCheckpoint, DoctorCheck, DoctorOptions, CheckStatus } from './doctor';
export { roundTripQuality, formatQuality, RoundTripQuality, RoundTripQualityOptions } from './roundtrip-quality';
