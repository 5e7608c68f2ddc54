/** `encodec-native doctor`: the troubleshooting checklist, one ok/warn/fail line each; exit code 1 on any fail. */
import { Command } from 'commander';

import { DoctorCheck, runDoctor } from '../../lib/doctor/doctor';
import { parseIntegerOption } from '../cli-util';

const MARK: Record<DoctorCheck['status'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('check the installation: libtorch, BLAS, CUDA, ffmpeg, the model file, and a 1-second encode/decode')
    .option('--model <model.pt>', 'model file to check (default: $ENCODEC_MODEL, then the default cache path)')
    .option('--threads <n>', 'threads for the self-test (default: all cores)', parseIntegerOption('--threads', 1, 1024))
    .option('--json', 'print JSON: { ok, checks: [{ name, status, detail, fix? }] }')
    .action(async (opts: { model?: string; threads?: number; json?: boolean }) => {
      const checks = await runDoctor({ model: opts.model, threads: opts.threads });
      const ok = checks.every((c) => c.status !== 'fail');
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ok, checks }, null, 2)}\n`);
      } else {
        for (const c of checks) {
          process.stdout.write(`${MARK[c.status]} ${c.name.padEnd(10)} ${c.detail}\n`);
          if (c.fix) process.stdout.write(`     ${''.padEnd(10)} fix: ${c.fix}\n`);
        }
        const counts = (['warn', 'fail'] as const).map((s) => `${checks.filter((c) => c.status === s).length} ${s}`);
        process.stdout.write(`${ok ? 'no failures' : 'FAILED'} (${counts.join(', ')})\n`);
      }
      if (!ok) process.exitCode = 1;
    });
}
