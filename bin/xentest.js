#!/usr/bin/env node
// The installed entry point. The TypeScript sources are compiled to dist/ by
// `npm install` (the package's prepare script).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/agent/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('xentest: not built yet (dist/ is missing)\n  hint: run "npm install" in the xentest directory\n');
  process.exit(70);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
