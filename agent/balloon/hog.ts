/**
 * The allocation of the "allocate nearly all memory" scenario: `hog.js KIB`
 * takes KIB of memory and writes to every page of it (untouched pages are
 * not allocated), says "ready KIB", then holds it until killed.
 */
const kb = Number(process.argv[2]);
if (!Number.isSafeInteger(kb) || kb <= 0) {
  process.stderr.write('usage: hog.js KIB\n');
  process.exit(64);
}
const held: Buffer[] = [];
for (let left = kb; left > 0; left -= 1024) held.push(Buffer.allocUnsafeSlow(Math.min(left, 1024) * 1024).fill(0xa5));
process.stdout.write(`ready ${kb}\n`);
setInterval(() => held.length, 60_000);
