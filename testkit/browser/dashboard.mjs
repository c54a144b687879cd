// The operator dashboard in a real browser: opens it with the admin token, waits for the
// charts to draw data, saves screenshots, drains a server with its button and reports what
// the page showed as one JSON object on stdout (the Rust test `dashboard` asserts on it).
//
// Usage: node dashboard.mjs <admin url> <admin token> <server id to drain> <screenshot dir>
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fail, launchChromium } from "./chromium.mjs";

const [url, token, drainId, outDir] = process.argv.slice(2);
if (!url || !token || !drainId || !outDir) fail("usage: node dashboard.mjs <url> <token> <server id> <out dir>");
mkdirSync(outDir, { recursive: true });

const browser = await launchChromium();
const report = { errors: [], requests: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
  page.on("pageerror", (e) => report.errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && report.errors.push(m.text()));
  // Everything must come from the matchmaker itself: no CDN, no other host.
  page.on("request", (r) => report.requests.push(new URL(r.url()).origin));
  await page.goto(`${url}/#token=${encodeURIComponent(token)}`);
  report.address_bar = page.url();

  // The joins chart has a ready-joins line with at least two points, the servers table a row.
  await page.waitForFunction(() => {
    const line = document.querySelector('#chart-joins polyline[data-series="joins_ready_per_sec"]');
    return line && line.getAttribute("points").trim().split(" ").length >= 2;
  }, null, { timeout: 30_000 });
  await page.waitForSelector(`tr[data-server-id="${drainId}"]`, { timeout: 10_000 });
  report.title = await page.title();
  report.charts = await page.evaluate(() =>
    Object.fromEntries([...document.querySelectorAll("svg[id^=chart-]")].map((svg) => [
      svg.id,
      {
        points: Number(svg.dataset.points),
        series: [...new Set([...svg.querySelectorAll("polyline")].map((p) => p.dataset.series))],
        // The highest value drawn, read back from the line's lowest y (the top of the chart is y=8).
        top_y: Math.min(...[...svg.querySelectorAll("polyline")].flatMap((p) =>
          p.getAttribute("points").trim().split(" ").map((xy) => Number(xy.split(",")[1])))),
      },
    ])));
  report.stats = await page.evaluate(() =>
    Object.fromEntries([...document.querySelectorAll(".stat")].map((d) => [d.dataset.stat, d.querySelector("b").textContent])));
  report.server_row = await page.$eval(`tr[data-server-id="${drainId}"]`, (tr) => [...tr.cells].map((c) => c.textContent));
  report.session_ids = await page.$$eval("#sessions tbody tr", (rows) => rows.map((r) => r.dataset.sessionId));
  await page.screenshot({ path: join(outDir, "dashboard.png"), fullPage: true });

  // Search narrows the sessions table to one session id; sorting by session id reverses it.
  if (report.session_ids.length > 1) {
    const wanted = report.session_ids[1];
    await page.fill("#search-sessions", wanted);
    report.searched = await page.$$eval("#sessions tbody tr", (rows) => rows.map((r) => r.dataset.sessionId));
    await page.fill("#search-sessions", "");
    await page.click('#sessions th[data-key="session_id"]');
    report.sorted_desc = await page.$$eval("#sessions tbody tr", (rows) => rows.map((r) => r.dataset.sessionId));
  }

  // Drain with the row's button; the page shows the new phase on its next refresh.
  await page.click(`tr[data-server-id="${drainId}"] button`);
  await page.waitForFunction((id) => {
    const row = document.querySelector(`tr[data-server-id="${id}"]`);
    return !row || row.cells[2].textContent !== "ready";
  }, drainId, { timeout: 15_000 });
  report.after_drain = await page.$eval(`tr[data-server-id="${drainId}"]`, (tr) => tr.cells[2].textContent).catch(() => "gone");
  await page.screenshot({ path: join(outDir, "dashboard-drained.png"), fullPage: true });
} catch (e) {
  report.errors.push(`driver: ${e.message}`);
} finally {
  await browser.close();
}
report.requests = [...new Set(report.requests)];
console.log(JSON.stringify(report));
