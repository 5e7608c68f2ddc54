/**
 * The h5wasm module (the HDF5 C library compiled to WebAssembly; its Node build reads and writes host paths
 * directly), loaded once, with the few types this package uses (frames files here, feature files in lib/fmri/h5.ts).
 */

// h5wasm is an ES module; TypeScript's CommonJS output would turn `import()` into `require()`.
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/** An HDF5 attribute as read. */
export interface H5Attribute {
  readonly value: unknown;
  readonly json_value: unknown;
}

/** A dataset as read. */
export interface H5Dataset {
  readonly shape: number[] | null;
  readonly dtype: unknown;
  readonly value: unknown;
  readonly attrs: Record<string, H5Attribute>;
}

/** A group (or file) being written or read. */
export interface H5Group {
  create_dataset(options: { name: string; data: unknown; shape?: number[]; dtype?: string }): unknown;
  create_attribute(name: string, value: unknown, shape?: number[] | null, dtype?: string | null): void;
  get(name: string): unknown;
  keys(): string[];
  readonly attrs: Record<string, H5Attribute>;
}

/** An open HDF5 file. */
export interface H5File extends H5Group {
  close(): void;
}

/** The module: `new File(path, 'r' | 'w')`. */
export interface H5Module {
  ready: Promise<unknown>;
  File: new (path: string, mode: string) => H5File;
}

let loaded: Promise<H5Module> | undefined;

/** The h5wasm module (Node build), loaded once. */
export async function h5wasm(): Promise<H5Module> {
  loaded ??= (async () => {
    const mod = (await importModule('h5wasm/node')) as { default?: H5Module } & H5Module;
    const lib = mod.default ?? mod;
    await lib.ready;
    return lib;
  })();
  return loaded;
}
