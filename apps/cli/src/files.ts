import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from './output';

/**
 * Refuse before any api call when an output file exists and --force was not given: issuing a
 * certificate and then failing to store its private key would waste it (it is returned only once).
 */
export function checkWritable(files: string[], force: boolean): void {
  for (const f of files) {
    const dir = path.dirname(f);
    if (!fs.existsSync(dir)) throw new UsageError(`directory ${dir} does not exist`);
    if (!force && fs.existsSync(f)) throw new UsageError(`${f} exists; not overwriting it (use --force)`);
  }
}

/**
 * Write a file readable by its owner only (0600), whatever the umask. With force an existing file is
 * replaced by a new one (unlink + exclusive create), so a file that was 0644 does not keep its mode, and
 * a symlink planted at the path is replaced, not followed.
 */
export function writePrivate(file: string, content: string, force: boolean): void {
  if (force) {
    try {
      fs.unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${file} exists; not overwriting it (use --force)`);
    throw err;
  }
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, content.endsWith('\n') ? content : content + '\n');
  } finally {
    fs.closeSync(fd);
  }
}

/** The first line of stdin (for `verify -`: the key stays out of the shell history and ps). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
