/**
 * Which BLAS libtorch computes with, judged from the shared libraries mapped into the process. Used by
 * `doctor` and by runtimeInfo() (lib/runtime/runtime.ts); kept free of other imports so both can use it.
 */
import * as fs from 'node:fs';

export type BlasKind = 'openblas' | 'mkl' | 'blis' | 'atlas' | 'flexiblas' | 'reference' | 'unknown';

/** A verdict on the BLAS, in the shape of a `doctor` check (defined here: lib/codec must not import the report layer). */
export interface BlasCheck {
  name: 'blas';
  status: 'ok' | 'warn';
  /** Which BLAS was found ('reference': Debian's unoptimised one; 'unknown': none could be told). */
  kind: BlasKind;
  detail: string;
  fix?: string;
}

/** The shared libraries this process has mapped (lines of Linux /proc/self/maps; empty elsewhere). */
export function mappedLibraries(): string[] {
  try {
    return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((line) => /\.so/.test(line));
  } catch {
    return [];
  }
}

const OPENBLAS_FIX =
  'apt-get install libopenblas0-openmp && update-alternatives --set libblas.so.3-x86_64-linux-gnu ' +
  '/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 (adjust the architecture triplet); ' +
  'encoding is several times faster with OpenBLAS';

/**
 * Which BLAS the process computes with, from the shared libraries it has mapped (lines or paths of
 * /proc/self/maps), and whether that is a problem. Debian's reference BLAS (the `blas/` alternative) is correct
 * but unoptimised: convolutions run several times slower.
 */
export function classifyBlas(mapped: readonly string[], buildConfig = ''): BlasCheck {
  const all = [...new Set(mapped.map((line) => line.trim().split(/\s+/).pop() ?? '').filter((p) => p.startsWith('/')))];
  // libtorch links libblas.so.3: the dynamic linker takes sgemm_ & co. from whatever that name resolves to,
  // even when libopenblas.so.0 is also mapped for another library. Judge that mapping when there is one.
  const libblas = all.filter((p) => /\/libblas\.so[^/]*$/.test(p));
  const paths = libblas.length > 0 ? libblas : all;
  const find = (re: RegExp): string | undefined => paths.find((p) => re.test(p));
  const openblas = find(/openblas[^/]*\/|libopenblas[^/]*\.so/);
  if (openblas) return { name: 'blas', status: 'ok', kind: 'openblas', detail: `OpenBLAS (${openblas})` };
  const mkl = find(/libmkl[^/]*\.so/);
  if (mkl) return { name: 'blas', status: 'ok', kind: 'mkl', detail: `Intel MKL (${mkl})` };
  const blis = find(/blis[^/]*\/|libblis[^/]*\.so/);
  if (blis) return { name: 'blas', status: 'ok', kind: 'blis', detail: `BLIS (${blis})` };
  const atlas = find(/atlas\/|libatlas[^/]*\.so|libtatlas[^/]*\.so|libsatlas[^/]*\.so/);
  if (atlas) return { name: 'blas', status: 'ok', kind: 'atlas', detail: `ATLAS (${atlas})` };
  const flexiblas = find(/libflexiblas[^/]*\.so/);
  if (flexiblas) return { name: 'blas', status: 'ok', kind: 'flexiblas', detail: `FlexiBLAS (${flexiblas}); its backend decides the speed` };
  const reference = find(/\/blas\/libblas\.so|\/libblas\.so|\/librefblas[^/]*\.so/);
  if (reference) {
    return { name: 'blas', status: 'warn', kind: 'reference', detail: `the reference BLAS (${reference}): correct but slow`, fix: OPENBLAS_FIX };
  }
  if (/BLAS_INFO=mkl|USE_MKL=ON/i.test(buildConfig)) return { name: 'blas', status: 'ok', kind: 'mkl', detail: 'Intel MKL, linked into libtorch' };
  if (/BLAS_INFO=open/i.test(buildConfig)) return { name: 'blas', status: 'ok', kind: 'openblas', detail: 'OpenBLAS, linked into libtorch' };
  return {
    name: 'blas',
    status: 'warn',
    kind: 'unknown',
    detail: 'could not tell which BLAS libtorch uses (no BLAS library mapped and none named in its build configuration)',
    fix: `if encoding is slow, install an optimised BLAS: ${OPENBLAS_FIX}`,
  };
}
