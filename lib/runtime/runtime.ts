/** What the native runtime reports: libtorch version, CUDA, threads, and which BLAS it computes with. */
import * as fs from 'node:fs';

import { BlasKind, classifyBlas, mappedLibraries } from './blas';
import { RuntimeInfo as NativeRuntimeInfo, nativeBinding } from '../addon/native';

/** Which BLAS libtorch's matrix products run on. */
export interface BlasInfo {
  /** What was found, e.g. 'OpenBLAS (/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3)'. */
  detail: string;
  /** True for the slow reference BLAS (or when it cannot be told). */
  slow: boolean;
  /** Which BLAS was found. */
  kind: BlasKind;
  /** How to switch to OpenBLAS, when slow. */
  fix?: string;
}

export interface RuntimeInfo extends NativeRuntimeInfo {
  blas: BlasInfo;
}

/**
 * The BLAS the loaded libtorch uses, from the libraries mapped into this process (Linux /proc/self/maps).
 * libtorch links libblas.so.3 first, so the dynamic linker takes sgemm_ & co. from whatever that name
 * resolves to (Debian's alternatives: reference `blas/` or `openblas-*`), even if libopenblas.so.0 is also
 * mapped as another library's dependency; that mapping alone is judged when present.
 */
export function blasInfo(): BlasInfo {
  // Elsewhere than Linux nothing is mapped: judged from the build configuration alone.
  const check = classifyBlas(mappedLibraries(), nativeBinding().runtimeInfo().buildConfig);
  return { detail: check.detail, slow: check.status !== 'ok', kind: check.kind, fix: check.fix };
}

/** libtorch version, CUDA availability and device count, thread settings, build configuration, BLAS. */
export function runtimeInfo(): RuntimeInfo {
  return { ...nativeBinding().runtimeInfo(), blas: blasInfo() };
}

let blasWarned = false;

/**
 * Warns once per process (a Node warning on stderr, code ENCODEC_SLOW_BLAS) when libtorch computes with the
 * reference BLAS, which makes encoding several times slower. Called when a model is loaded on the CPU.
 */
export function warnIfSlowBlas(): void {
  if (blasWarned) return;
  blasWarned = true;
  const blas = blasInfo();
  if (blas.kind !== 'reference') return;
  process.emitWarning(`encodec-native: libtorch uses ${blas.detail}; fix: ${blas.fix ?? 'install OpenBLAS'}`, {
    code: 'ENCODEC_SLOW_BLAS',
  });
}

/**
 * This process's peak resident memory in bytes. On Linux, VmHWM of /proc/self/status: it belongs to the
 * address space exec created, whereas getrusage's maxRSS (process.resourceUsage) also counts the pages the
 * forked parent had before exec, so a child of a 1.4 GB process reported 1.4 GB however little it used.
 */
export function peakRss(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Number(hwm[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024; // KiB
}
