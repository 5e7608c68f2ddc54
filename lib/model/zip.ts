/**
 * Just enough of the ZIP format to read named entries of a TorchScript archive (which PyTorch writes as
 * a plain ZIP, entries stored uncompressed) without loading or running the model.
 *
 * Why not yauzl: it reads only asynchronously, and `readModelInfo` is a synchronous public API; adm-zip, the
 * synchronous alternative, reads the whole (76 MB) archive into memory to list it. This reads the end record,
 * the central directory and one entry: three positioned reads.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { codedError } from '../common/errors';

interface Entry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

function centralDirectory(fd: number, fileSize: number): { offset: number; size: number } {
  const tailLength = Math.min(fileSize, 22 + 65535 + 20);
  const tail = readAt(fd, fileSize - tailLength, tailLength);
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) !== EOCD) continue;
    let size = tail.readUInt32LE(i + 12);
    let offset = tail.readUInt32LE(i + 16);
    if ((offset === 0xffffffff || size === 0xffffffff) && i >= 20 && tail.readUInt32LE(i - 20) === ZIP64_LOCATOR) {
      const zip64Offset = Number(tail.readBigUInt64LE(i - 20 + 8));
      const record = readAt(fd, zip64Offset, 56);
      if (record.length < 56 || record.readUInt32LE(0) !== ZIP64_EOCD) break;
      size = Number(record.readBigUInt64LE(40));
      offset = Number(record.readBigUInt64LE(48));
    }
    return { offset, size };
  }
  throw codedError('ENCODEC_FILE_FORMAT', 'not a ZIP archive (no end-of-central-directory record)');
}

function listEntries(fd: number, fileSize: number): Entry[] {
  const { offset, size } = centralDirectory(fd, fileSize);
  if (offset + size > fileSize) throw codedError('ENCODEC_FILE_FORMAT', 'truncated ZIP archive (central directory past end of file)');
  const dir = readAt(fd, offset, size);
  const entries: Entry[] = [];
  let p = 0;
  while (p + 46 <= dir.length && dir.readUInt32LE(p) === CENTRAL) {
    const method = dir.readUInt16LE(p + 10);
    let compressedSize = dir.readUInt32LE(p + 20);
    let entrySize = dir.readUInt32LE(p + 24);
    const nameLength = dir.readUInt16LE(p + 28);
    const extraLength = dir.readUInt16LE(p + 30);
    const commentLength = dir.readUInt16LE(p + 32);
    let localHeaderOffset = dir.readUInt32LE(p + 42);
    const name = dir.toString('utf8', p + 46, p + 46 + nameLength);
    // ZIP64 extended information: the 64-bit values replace the ones saturated at 0xffffffff, in order.
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = dir.readUInt16LE(e);
      const len = dir.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (entrySize === 0xffffffff) { entrySize = Number(dir.readBigUInt64LE(q)); q += 8; }
        if (compressedSize === 0xffffffff) { compressedSize = Number(dir.readBigUInt64LE(q)); q += 8; }
        if (localHeaderOffset === 0xffffffff) { localHeaderOffset = Number(dir.readBigUInt64LE(q)); }
      }
      e += 4 + len;
    }
    entries.push({ name, method, compressedSize, size: entrySize, localHeaderOffset });
    p = extraEnd + commentLength;
  }
  return entries;
}

/** Names of the entries in the ZIP archive at `path` (e.g. to tell a TorchScript archive from a checkpoint). */
export function zipEntryNames(path: string): string[] {
  const fd = fs.openSync(path, 'r');
  try {
    return listEntries(fd, fs.fstatSync(fd).size).map((e) => e.name);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads the first entry whose name satisfies `match` (stored or deflated), or returns undefined when none does.
 * Throws when the file is not a readable ZIP archive.
 */
export function readZipEntry(path: string, match: (name: string) => boolean): Buffer | undefined {
  const fd = fs.openSync(path, 'r');
  try {
    const fileSize = fs.fstatSync(fd).size;
    const entry = listEntries(fd, fileSize).find((e) => match(e.name));
    if (!entry) return undefined;
    const local = readAt(fd, entry.localHeaderOffset, 30);
    if (local.length < 30 || local.readUInt32LE(0) !== LOCAL) throw codedError('ENCODEC_FILE_FORMAT', `corrupt ZIP entry '${entry.name}'`);
    const start = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    const raw = readAt(fd, start, entry.compressedSize);
    if (raw.length < entry.compressedSize) throw codedError('ENCODEC_FILE_FORMAT', `truncated ZIP entry '${entry.name}'`);
    if (entry.method === 0) return raw;
    if (entry.method === 8) return zlib.inflateRawSync(raw);
    throw codedError('ENCODEC_FILE_FORMAT', `ZIP entry '${entry.name}' uses unsupported compression method ${entry.method}`);
  } finally {
    fs.closeSync(fd);
  }
}
