// Launches Debian's Chromium headless for the workspace's browser tests, with the flags this
// sandboxed, offline machine needs (no sandbox as root, no background calls to Google's
// hosts). Playwright gives every launch a fresh, empty profile.
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.BEVYGAP_CHROMIUM ?? "/usr/bin/chromium";

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/// Fails the script with a message on stderr and a non-zero exit.
export function fail(message) {
  console.error(message);
  process.exit(1);
}
