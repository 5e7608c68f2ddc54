/**
 * The BIDS validator (the schema-based one, bids-standard/bids-validator) run offline in Node. The npm package
 * `bids-validator` 1.x ships, beside its legacy validator (which knows raw datasets only), a browser build of the
 * schema-based validator (`dist/validator/main.js`, with the BIDS schema bundled) that exports `fileListToTree` and
 * `validate`. The browser build takes web `File` objects with a `webkitRelativePath`; Node 20 has `File`, so the
 * dataset's files are handed over that way. Nothing is fetched from the network.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { File } from 'node:buffer';

// The validator is an ES module; TypeScript's CommonJS output would turn `import()` into `require()`.
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/** One issue the validator reports. */
export interface BidsIssue {
  code: string;
  subCode?: string;
  location?: string;
  severity: 'error' | 'warning' | 'ignore';
  issueMessage?: string;
}

interface ValidatorModule {
  fileListToTree(files: unknown[]): Promise<unknown>;
  validate(tree: unknown, options: Record<string, unknown>, config: Record<string, unknown>): Promise<{
    issues: { issues: BidsIssue[] } | BidsIssue[];
    summary: { schemaVersion: string };
  }>;
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full) : [full];
  });
}

/**
 * Validates the dataset at `root`; returns the schema version used and every issue. The validator runs in a child
 * process: its browser build replaces globals (Response, ReadableStream) that later test files in the same mocha
 * worker rely on (test/model/download.test.ts failed after it).
 */
export async function validateBids(root: string): Promise<{ schemaVersion: string; issues: BidsIssue[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, [__filename, root], { maxBuffer: 1 << 26 });
  return JSON.parse(stdout) as { schemaVersion: string; issues: BidsIssue[] };
}

async function validateHere(root: string): Promise<{ schemaVersion: string; issues: BidsIssue[] }> {
  const main = path.join(path.dirname(require.resolve('bids-validator/package.json')), 'dist', 'validator', 'main.js');
  const validator = (await importModule(pathToFileURL(main).href)) as ValidatorModule;
  const files = filesUnder(root).map((file) => {
    const f = new File([fs.readFileSync(file)], path.basename(file));
    // The browser build strips the first component (the folder the user picked) from webkitRelativePath.
    Object.defineProperty(f, 'webkitRelativePath', { value: `dataset/${path.relative(root, file).split(path.sep).join('/')}` });
    return f;
  });
  const tree = await validator.fileListToTree(files);
  const result = await validator.validate(tree, { datasetPath: root, debug: 'ERROR' }, {});
  const issues = Array.isArray(result.issues) ? result.issues : result.issues.issues;
  return { schemaVersion: result.summary.schemaVersion, issues };
}

if (require.main === module) {
  validateHere(process.argv[2]).then(
    (r) => process.stdout.write(JSON.stringify(r)),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
