// The web demo in a real browser: opens the page, waits until the game reports Connected (or
// Failed), asks the matchmaker's admin endpoint how many players its servers count, saves a
// screenshot and prints one JSON report (the Rust test `browser` asserts on it).
//
// Usage: node web_demo.mjs <page url> <admin url> <admin token> <screenshot path>
import { dirname } from "node:path";
import { mkdirSync } from "node:fs";
import { fail, launchChromium } from "./chromium.mjs";

const [pageUrl, adminUrl, adminToken, shot] = process.argv.slice(2);
if (!pageUrl || !adminUrl || !adminToken || !shot) fail("usage: node web_demo.mjs <page> <admin> <token> <png>");
mkdirSync(dirname(shot), { recursive: true });

async function connectedPlayers() {
  const r = await fetch(adminUrl, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "admin.servers" }),
  });
  const body = await r.json();
  return (body.result?.servers ?? []).reduce((n, s) => n + s.connected, 0);
}

const browser = await launchChromium();
const report = { console: [], page_errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  page.on("console", (m) => report.console.push(`${m.type()}: ${m.text()}`.slice(0, 300)));
  page.on("pageerror", (e) => report.page_errors.push(String(e).slice(0, 300)));
  await page.goto(pageUrl);
  await page.waitForFunction(
    () => ["Connected", "Failed"].includes(document.body.dataset.state) &&
      (document.body.dataset.state === "Failed" || document.getElementById("log").textContent.includes("server says")),
    null, { timeout: 45_000 });
  report.state = await page.evaluate(() => document.body.dataset.state);
  report.error = await page.evaluate(() => document.body.dataset.error ?? null);
  report.shown_error = await page.evaluate(() => getComputedStyle(document.getElementById("error")).display !== "none"
    ? document.getElementById("error").textContent : null);
  report.log = await page.evaluate(() => document.getElementById("log").textContent);
  if (report.state === "Connected") {
    // The server reports the player in NATS; the matchmaker counts it connected.
    const deadline = Date.now() + 20_000;
    do {
      report.connected_players = await connectedPlayers();
      if (report.connected_players > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    } while (Date.now() < deadline);
  }
  await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  report.driver_error = e.message;
  try {
    const page = browser.contexts()[0]?.pages()[0];
    report.state = await page.evaluate(() => document.body.dataset.state);
    report.error = await page.evaluate(() => document.body.dataset.error ?? null);
    report.log = await page.evaluate(() => document.getElementById("log").textContent);
    report.seconds = await page.evaluate(() => document.body.dataset.seconds);
    await page.screenshot({ path: shot, fullPage: true });
  } catch (_) { /* the page is gone: the report says what is known */ }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
