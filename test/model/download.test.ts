/** The download of `model fetch`: a write error fails it cleanly (no uncaught exception, no hang on 'drain'). */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { downloadTo } from '../../lib/model/fetch';
import { tempDir } from '../helpers/temp-dir';

describe('model download', function () {
  const dir = tempDir('encodec-download');

  /** A response of `chunks` blocks of 1 MiB; `cancelled()` says whether the reader was cancelled. */
  function response(chunks: number): { response: Response; cancelled: () => boolean } {
    let sent = 0;
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < chunks) controller.enqueue(new Uint8Array(1 << 20).fill(sent));
        else controller.close();
      },
      cancel() {
        cancelled = true;
      },
    });
    return { response: new Response(body), cancelled: () => cancelled };
  }

  it('writes the body and returns its SHA-256', async function () {
    const file = path.join(dir, 'ok.bin');
    const { response: r } = response(3);
    const sha = await downloadTo(r, 'http://test/ok', file);
    expect(fs.statSync(file).size).to.equal(3 << 20);
    expect(sha).to.match(/^[0-9a-f]{64}$/);
  });

  it('rejects with ENCODEC_DOWNLOAD when the file cannot be written, closing the stream and the response', async function () {
    const file = path.join(dir, 'no-such-dir', 'model.bin'); // ENOENT when the stream opens
    const { response: r, cancelled } = response(64);
    let error: (Error & { code?: string; cause?: unknown }) | undefined;
    try {
      await downloadTo(r, 'http://test/fail', file);
    } catch (err) {
      error = err as Error & { code?: string; cause?: unknown };
    }
    expect(error?.code).to.equal('ENCODEC_DOWNLOAD');
    expect((error?.cause as { code?: string }).code).to.equal('ENOENT');
    expect(error?.message).to.match(/no-such-dir/);
    expect(cancelled()).to.equal(true);
  });
});
