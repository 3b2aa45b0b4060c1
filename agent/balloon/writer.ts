/**
 * The child that does one write as another identity: `writer.js PATH HEX`.
 * Prints the outcome as one JSON line.
 */
import { writeOnce } from './write-once.js';

const [path, hex] = process.argv.slice(2);
if (path === undefined || hex === undefined) {
  process.stderr.write('usage: writer.js PATH HEX\n');
  process.exit(64);
}
process.stdout.write(JSON.stringify(writeOnce(path, Buffer.from(hex, 'hex'))) + '\n');
