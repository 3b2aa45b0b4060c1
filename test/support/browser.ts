/**
 * Debian's Chromium, headless, driven by playwright-core (which brings no
 * browser of its own): what the report tests look at a page with. Chromium
 * is installed by .ci/run (apt-get install chromium); without it the tests
 * that need it fail and say so.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.XENTEST_TEST_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's (apt-get install chromium), or set XENTEST_TEST_CHROMIUM to one`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    // As root (CI) Chromium needs --no-sandbox; the others keep it from reaching out to the network at start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
