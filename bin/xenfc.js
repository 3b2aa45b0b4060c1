#!/usr/bin/env node
// xenfc, the domctl hypercall fuzzer. The TypeScript sources are compiled to
// dist/ by `npm install` (the package's prepare script).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/agent/fuzz/cli.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('xenfc: not built yet (dist/ is missing)\n  hint: run "npm install" in the xentest directory\n');
  process.exit(70);
}
const { xenfcMain } = await import(entry.href);
process.exitCode = await xenfcMain(process.argv.slice(2));
