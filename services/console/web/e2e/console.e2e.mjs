// Browser test of the console: Debian's Chromium driven by playwright-core (no browser
// download). Run by tests/journeys/test_console.py, which seeds the data and starts the BFF:
//
//   CONSOLE_URL=http://127.0.0.1:PORT CONSOLE_TOKEN=<ops token> REVIEW_ORDER_ID=... \
//   PRICE_SKU=... SHOTS_DIR=... node e2e/console.e2e.mjs
//
// Prints one JSON line: the console errors seen, each page's charts and empty states, and what
// the approve and accept clicks answered. Exits 1 on a failure it can see itself.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const base = env("CONSOLE_URL");
const token = env("CONSOLE_TOKEN");
const shots = env("SHOTS_DIR");
const reviewOrder = env("REVIEW_ORDER_ID", "");
const priceSku = env("PRICE_SKU", "");
mkdirSync(shots, { recursive: true });

const PAGES = [
  { nav: "Overview", title: "Overview", shot: "overview.png" },
  { nav: "Inventory", title: "Inventory", shot: "inventory.png" },
  { nav: "Pricing", title: "Pricing", shot: "pricing.png" },
  { nav: "Risk", title: "Risk", shot: "risk.png" },
  { nav: "Orders & returns", title: "Orders and returns", shot: "orders.png" },
  { nav: "Customers", title: "Customers", shot: "customers.png" },
  { nav: "Support", title: "Support", shot: "support.png" },
];

const browser = await chromium.launch({
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"],
});
const result = { errors: [], pages: {}, actions: {}, tablet: null };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") result.errors.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => result.errors.push(`page: ${e.message}`));
  page.setDefaultTimeout(20_000);

  // Sign in through the form.
  await page.goto(base + "/");
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "pages" }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "ecomops_console_session");
  result.session_cookie = session && { httpOnly: session.httpOnly, sameSite: session.sameSite };

  const settle = async () => {
    await page.waitForFunction(() => document.querySelectorAll(".state-loading").length === 0);
    await page.waitForTimeout(300); // charts draw after layout
  };
  const open = async (p) => {
    await page.getByRole("navigation", { name: "pages" }).getByRole("link", { name: p.nav, exact: true }).click();
    await page.locator("main h1", { hasText: p.title }).waitFor();
    await settle();
  };
  const describe = async () => page.evaluate(() => ({
    charts: [...document.querySelectorAll("[data-testid^='chart-']")]
      .filter((c) => c.querySelector("svg.recharts-surface")).map((c) => c.getAttribute("data-testid")),
    // Charts with marks drawn in them (bars, lines, sectors), not only axes.
    drawn: [...document.querySelectorAll("[data-testid^='chart-']")]
      .filter((c) => c.querySelector(".recharts-bar-rectangle path, path.recharts-line-curve, .recharts-pie-sector path"))
      .map((c) => c.getAttribute("data-testid")),
    empty: [...document.querySelectorAll(".state-empty")].map((e) => e.textContent.trim()),
    errors: [...document.querySelectorAll(".state-error")].map((e) => e.textContent.trim()),
    overflow: document.documentElement.scrollWidth > window.innerWidth,
  }));
  // Page through a table until the row is there (the shared stack has other data too).
  const findRow = async (selector) => {
    for (let i = 0; i < 60; i++) {
      const row = page.locator(selector);
      if (await row.count()) return row.first();
      const next = page.getByRole("button", { name: "Next ›" }).first();
      if (!(await next.isEnabled())) return null;
      await next.click();
      await settle();
    }
    return null;
  };

  for (const p of PAGES) {
    await open(p);
    if (p.nav === "Inventory") {
      // Draw the history and forecast of the first SKU × warehouse, when there is one.
      const first = page.locator("table.table tbody tr").first();
      if (await first.count()) { await first.click(); await settle(); }
    }
    result.pages[p.nav] = await describe();
    await page.waitForTimeout(1600); // recharts animates for 1.5 s: shoot the finished charts
    await page.screenshot({ path: join(shots, p.shot), fullPage: true });
  }

  if (reviewOrder) {
    await open(PAGES[3]);
    const row = await findRow(`tr[data-order="${reviewOrder}"]`);
    if (!row) throw new Error(`review of order ${reviewOrder} not in the queue`);
    await row.getByRole("button", { name: "Approve" }).click();
    await page.getByText(`Order ${reviewOrder}: approved`).waitFor();
    result.actions.approve = "approved";
  }
  if (priceSku) {
    await open(PAGES[2]);
    const row = await findRow(`tr[data-sku="${priceSku}"]`);
    if (!row) throw new Error(`no price suggestion for ${priceSku}`);
    await row.getByRole("button", { name: "Accept" }).click();
    const status = page.locator("p[role=status]", { hasText: priceSku });
    await status.waitFor();
    result.actions.accept = (await status.textContent()).trim();
  }

  // A tablet: the navigation moves on top, panels stack, nothing overflows sideways.
  await page.setViewportSize({ width: 820, height: 1180 });
  await open(PAGES[0]);
  result.tablet = await describe();
  await page.waitForTimeout(1600);
  await page.screenshot({ path: join(shots, "overview-tablet.png"), fullPage: false });

  // Sign out: back to the form.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Token").waitFor();
  result.signed_out = true;
} catch (err) {
  result.failure = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.failure ? 1 : 0);
