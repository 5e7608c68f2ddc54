/**
 * Stable error codes, as Node's own errors carry them (`err.code`): callers branch on the code, never on the
 * message text. The classes stay what they were (TypeError/RangeError for bad arguments, Error otherwise);
 * the code says what went wrong. The native addon sets the same codes (native/errors.cc). docs/errors.md
 * lists them with the CLI's exit code for each.
 */

/** Every code the package sets, with the CLI exit status it maps to (2: the user's input, 1: anything else). */
export const ERROR_CODES = {
  /** An argument, option or input value is invalid (type, range, shape, a value out of range in a file). */
  ENCODEC_BAD_INPUT: 2,
  /** The signals hold too little non-silent speech for STOI/ESTOI (under 30 frames of 384 ms). */
  ENCODEC_NO_SPEECH: 2,
  /** A model file is missing, unreadable, corrupt, or not an encodec-native model (or lacks a needed method). */
  ENCODEC_MODEL_FILE: 1,
  /** A CUDA device was asked for but libtorch has no CUDA support or no such GPU is visible. */
  ENCODEC_CUDA_UNAVAILABLE: 1,
  /** Out of memory (CPU or GPU), after the chunked path retried the span in halves down to one chunk. */
  ENCODEC_OOM: 1,
  /** The model was disposed. */
  ENCODEC_DISPOSED: 1,
  /** An audio or video file cannot be read or decoded (`reason` says why: ENOFFMPEG, ENOAUDIO, EDECODE, ENOENT, ...). */
  ENCODEC_MEDIA: 1,
  /** A data file (.npy, .ecdc, WAV header, ZIP, feature file) is malformed or of an unsupported kind. */
  ENCODEC_FILE_FORMAT: 1,
  /** The native addon could not be loaded (not built, or libtorch missing). */
  ENCODEC_ADDON: 1,
  /** libtorch failed while running the model (the message is libtorch's). */
  ENCODEC_TORCH: 1,
  /** No Python with PyTorch was found for the exporter. */
  ENCODEC_NO_PYTHON: 1,
  /** The exporter (exporter/export.py) failed; `exitCode` is its exit status. */
  ENCODEC_EXPORT: 1,
  /** A download failed (network, HTTP status, checksum mismatch, write error). */
  ENCODEC_DOWNLOAD: 1,
  /** A bug in encodec-native: please report it. */
  ENCODEC_INTERNAL: 1,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error carrying one of the package's codes. */
export type CodedError<E extends Error = Error> = E & { code: ErrorCode };

/** Sets `code` on `err` (an own, enumerable property, as on Node's errors) and returns it. */
export function withCode<E extends Error>(err: E, code: ErrorCode): CodedError<E> {
  return Object.assign(err, { code });
}

/** A TypeError with a code (default ENCODEC_BAD_INPUT): a value of the wrong type. */
export function typeError(message: string, code: ErrorCode = 'ENCODEC_BAD_INPUT'): CodedError<TypeError> {
  return withCode(new TypeError(message), code);
}

/** A RangeError with a code (default ENCODEC_BAD_INPUT): a value out of its range. */
export function rangeError(message: string, code: ErrorCode = 'ENCODEC_BAD_INPUT'): CodedError<RangeError> {
  return withCode(new RangeError(message), code);
}

/** An Error with a code. */
export function codedError(code: ErrorCode, message: string, options?: { cause?: unknown }): CodedError {
  return withCode(new Error(message, options), code);
}

/** The `code` of an error (the package's, or Node's such as 'ENOENT'); undefined if none. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether `err` carries `code`. */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  return errorCode(err) === code;
}

/** Whether an error is about the user's input (its code maps to CLI exit 2): see {@link ERROR_CODES}. */
export function isInputError(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && (ERROR_CODES as Record<string, number>)[code] === 2;
}
