/**
 * `npm run fuzz [-- --calls N --seed S --model M --model48 M48 --lm A.pt,B.pt --json]`: throws malformed calls at the native API,
 * the Encodec class, the entropy-coding LM and the .ecdc readers (see fuzzer.ts, lm-cases.ts). Exit code 0 when every call threw or rejected with an Error and the process
 * survived; 1 with the broken calls listed otherwise. A crash shows as the process dying (a signal).
 *
 * The models and the LMs (`--lm none`: no LM cases; `--model48 none`: no encodec_48khz cases) default to the test
 * suite's cached random-weight ones (exported on first use): the encodec_24khz and encodec_48khz models, and the LMs
 * of both codecs.
 */
import { fuzz } from './fuzzer';
import { randomLm, randomModel, randomModel48 } from '../test/helpers/model';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function positiveInteger(name: string, fallback: number): number {
  const text = option(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    process.stderr.write(`fuzz: ${name} must be a positive integer, got '${text}'\n`);
    process.exit(2);
  }
  return value;
}

async function main(): Promise<void> {
  const calls = positiveInteger('--calls', 10000);
  const seed = positiveInteger('--seed', Date.now() % 1000000);
  const json = process.argv.includes('--json');
  const modelPath = option('--model') ?? (await randomModel(0));
  const lmOption = option('--lm');
  const lmPaths =
    lmOption === 'none' ? [] : lmOption !== undefined ? lmOption.split(',') : (await Promise.all([randomLm('encodec_24khz', 0), randomLm('encodec_48khz', 1)])).map((l) => l.lm);
  const model48Option = option('--model48');
  const model48Path = model48Option === 'none' ? undefined : model48Option ?? (await randomModel48(0)).model;
  const started = Date.now();
  const report = await fuzz({
    modelPath,
    model48Path,
    lmPaths,
    calls,
    seed,
    onProgress: json || !process.stderr.isTTY ? undefined : (done, total) => process.stderr.write(`\r${done}/${total} calls`),
  });
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    if (process.stderr.isTTY) process.stderr.write('\n');
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    process.stdout.write(
      `${report.calls} calls (seed ${report.seed}) in ${seconds} s: ${report.thrown} threw, ${report.rejected} rejected, ` +
        `${report.resolved} races resolved, ${report.failures.length} broke the contract\n`,
    );
    for (const [name, count] of Object.entries(report.cases).sort()) process.stdout.write(`  ${String(count).padStart(6)}  ${name}\n`);
    for (const failure of report.failures.slice(0, 50)) process.stdout.write(`FAIL ${failure}\n`);
    if (report.failures.length > 50) process.stdout.write(`... and ${report.failures.length - 50} more\n`);
  }
  if (report.failures.length) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`fuzz: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
