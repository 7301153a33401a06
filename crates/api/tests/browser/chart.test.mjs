// The live chart page (GET /) in a real browser: Debian's chromium driven by
// playwright-core against the real all-in-one binary on simulated rates.
//
// Run: scripts/browser-test.sh (installs chromium and the npm packages, builds the
// binary), or `node --test` here once they exist. Env: RATECAST_BIN (default
// target/debug/ratecast), CHROMIUM (default /usr/bin/chromium).
// Writes docs/img/chart.png and docs/img/candles.png, the README's screenshots.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const BIN = process.env.RATECAST_BIN || path.join(root, "target/debug/ratecast");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOT = path.join(root, "docs/img/chart.png");
const CANDLES_SCREENSHOT = path.join(root, "docs/img/candles.png");
const DEFAULT_ASSETS = ["EURUSD", "USDJPY", "GBPUSD", "AUDUSD", "USDCAD"];
const WINDOW_SECS = 1800;
const FULL = WINDOW_SECS - 30; // "about 1800": a busy machine may skip a tick or two

let server;  // { child, port, log }
let context; // the browser, with a fresh profile
let profile;
let page;    // the page most tests look at
let sockets = 0; // websockets `page` opened

// ---- the server -----------------------------------------------------------------

/** Starts the all-in-one on simulated rates; resolves once it listens and is ready. */
async function startServer(port = 0) {
  const env = { ...process.env, RUST_LOG: "info", LOG_FORMAT: "text" };
  // Whatever the machine has configured, this test wants simulated rates in memory.
  for (const name of ["EMCONT_EXCHANGE_RATES_URL", "MONGO_CONNECTION_URI", "ASSET_LIST"]) delete env[name];
  const child = spawn(BIN, ["--host", "127.0.0.1", "--port", String(port)], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const started = { child, port: 0, log: "" };
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line within 30 s:\n${started.log}`)), 30_000);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      started.log += chunk;
      const found = started.log.match(/websocket API listening on ws:\/\/([^\s/]+)\//);
      if (found && !started.port) {
        clearTimeout(timer);
        started.port = Number(found[1].split(":").pop());
        resolve();
      }
    });
    child.on("error", (error) => { clearTimeout(timer); reject(error); });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${BIN} exited (${code ?? signal}) before listening:\n${started.log}`));
    });
  });
  await listening;
  await until(async () => (await fetch(`http://127.0.0.1:${started.port}/readyz`).catch(() => null))?.status === 200,
    20_000, "GET /readyz never answered 200");
  return started;
}

/** SIGTERM, then waits for the exit (SIGKILL after 15 s). */
async function stopServer(s) {
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise((resolve) => s.child.once("exit", resolve));
  s.child.kill("SIGTERM");
  const timer = setTimeout(() => s.child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

// ---- waiting --------------------------------------------------------------------

async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
}

const state = (p = page) => p.evaluate(() => window.ratecast.state());

/** Polls the page's test hook until `predicate(state, arg)` holds; says what it saw if not. */
async function waitForState(predicate, arg, what, timeout = 30_000, p = page) {
  try {
    const expression = `window.ratecast && (${predicate})(window.ratecast.state(), ${JSON.stringify(arg)})`;
    await p.waitForFunction(expression, null, { timeout, polling: 100 });
  } catch (error) {
    const seen = await p.evaluate(() => window.ratecast && window.ratecast.state()).catch(() => "unavailable");
    throw new Error(`${what}: not within ${timeout} ms; page state: ${JSON.stringify(seen)}`, { cause: error });
  }
  return state(p);
}

function assertAscending(times) {
  for (let i = 1; i < times.length; i++) {
    assert.ok(times[i] > times[i - 1], `times ascend without duplicates (index ${i}: ${times[i - 1]} then ${times[i]})`);
  }
}

/** The server's own answer: the times of asset `assetId`'s asset_history, from a fresh socket in the page. */
function serverTimes(assetId) {
  return page.evaluate((id) => new Promise((resolve, reject) => {
    const socket = new WebSocket(window.ratecast.state().wsUrl);
    socket.onopen = () => socket.send(JSON.stringify({ action: "subscribe", message: { assetId: id } }));
    socket.onmessage = (event) => {
      const { action, message } = JSON.parse(event.data);
      if (action !== "asset_history") return;
      socket.close();
      resolve(message.points.map((p) => p.time));
    };
    socket.onerror = () => reject(new Error("the checking socket failed"));
  }), assetId);
}

/** GET /v1/candles, from the test (not the page): the HTTP answer a chart must agree with. */
async function httpCandles(asset, interval, from, to) {
  const url = `http://127.0.0.1:${server.port}/v1/candles?asset=${asset}&interval=${interval}&from=${from}&to=${to}`;
  const response = await fetch(url);
  assert.equal(response.status, 200, `GET ${url}`);
  return (await response.json()).candles;
}

/** Every asset the page follows is live with about a full window. */
function everyAssetFull(s, full) {
  const all = Object.values(s.followed);
  return all.length === 5 && all.every((a) => a.live && a.points >= full);
}

/** Where the page and a fresh subscriber overlap, they hold the same seconds of `assetId`. */
async function assertSameSeconds(p, assetId) {
  const mine = await p.evaluate((id) => window.ratecast.times(id), assetId);
  const truth = await serverTimes(assetId);
  assertAscending(mine);
  const from = Math.max(mine[0], truth[0]);
  const to = Math.min(mine.at(-1), truth.at(-1));
  assert.ok(to - from > WINDOW_SECS - 60, `asset ${assetId}: the two views overlap on most of the window`);
  const inRange = (times) => times.filter((t) => t >= from && t <= to);
  assert.deepEqual(inRange(mine), inRange(truth), `asset ${assetId}: no hole, no duplicate`);
}

// ---- setup ----------------------------------------------------------------------

before(async () => {
  server = await startServer();
  profile = await mkdtemp(path.join(tmpdir(), "ratecast-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1100, height: 640 },
    deviceScaleFactor: 2,
    colorScheme: "light",
    locale: "en-GB",
    timezoneId: "UTC",
  });
  page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (error) => { console.error("page error:", error); });
  page.on("websocket", () => { sockets++; });
});

after(async () => {
  await context?.close();
  await stopServer(server);
  if (profile) await rm(profile, { recursive: true, force: true });
});

// ---- tests ----------------------------------------------------------------------

test("the page connects to the websocket of its own origin and lists the five default assets", async () => {
  await page.goto(`http://127.0.0.1:${server.port}/`);
  const s = await waitForState((s) => s.connected, null, "the page goes live");
  assert.equal(s.wsUrl, `ws://127.0.0.1:${server.port}/`);
  assert.deepEqual(await page.locator("#asset option").allTextContents(), DEFAULT_ASSETS);
  assert.ok(await page.getByLabel("Asset").isEnabled(), "the picker is usable");
  assert.equal(await page.locator("#status-text").textContent(), "Live");
  assert.equal(s.transport, "ws");
});

test("the page follows every asset on one websocket: all five tiles are live", async () => {
  const s = await waitForState(everyAssetFull, FULL, "every asset's history is loaded");
  assert.equal(sockets, 1, "one connection for five assets");
  const tiles = await page.locator("#tiles .tile").allTextContents();
  assert.equal(tiles.length, 5);
  DEFAULT_ASSETS.forEach((name, i) => assert.match(tiles[i], new RegExp(`^${name}\\d[\\d.,]*[▲▼■] [+-]?\\d+\\.\\d\\d%$`), `tile ${name}: ${tiles[i]}`));
  const later = await waitForState((s, before) => Object.entries(s.followed).every(([name, a]) => a.lastTime > before[name].lastTime),
    s.followed, "every asset gains a point", 20_000);
  assert.equal(later.status, "live");
});

test("the chart holds the last 30 minutes once loaded", async () => {
  const s = await waitForState((s, full) => s.points >= full && s.drawn.points === s.points, FULL,
    "the first asset's history is loaded and drawn");
  assert.equal(s.assetName, "EURUSD");
  assert.ok(s.points <= WINDOW_SECS, `at most one point per second (${s.points})`);
  const times = await page.evaluate(() => window.ratecast.times());
  assert.ok(times.at(-1) - times[0] < WINDOW_SECS, "every point is within 30 minutes of the newest");
  assertAscending(times);
  assert.match(await page.locator("#value").textContent(), /^\d+\.\d+$/);
  assert.match(await page.locator("#change").textContent(), /\(.*%\)/);
});

test("the chart gains points every second", async () => {
  const before = await state();
  const s = await waitForState((s, t) => s.lastTime >= t + 3 && s.drawn.lastTime === s.lastTime, before.lastTime,
    "three newer points arrive and are drawn", 20_000);
  assert.ok(s.points >= FULL, "the window stays full as it slides");
  assert.ok(s.lastTime - s.firstTime < WINDOW_SECS, "old points leave the window");
});

test("switching asset redraws from the points already held, on the same connection", async () => {
  const opened = sockets;
  await page.getByLabel("Asset").selectOption({ label: "USDJPY" });
  const s = await waitForState((s, full) => s.assetId === 2 && s.points >= full && s.drawn.assetId === 2 && s.drawn.points === s.points,
    FULL, "USDJPY's history is loaded and drawn");
  assert.equal(s.assetName, "USDJPY");
  assert.equal(new URL(page.url()).hash, "#USDJPY", "the choice is kept in the address");
  const value = Number((await page.locator("#value").textContent()).replace(/,/g, ""));
  assert.ok(value > 50, `the value shown is USDJPY's (${value}), not EURUSD's`);
  await waitForState((s, t) => s.lastTime > t, s.lastTime, "USDJPY points keep coming", 20_000);
  assertAscending(await page.evaluate(() => window.ratecast.times()));
  assert.equal(sockets, opened, "switching needs no new connection");
  await page.locator('#tiles .tile[data-id="3"]').click();
  await waitForState((s) => s.assetName === "GBPUSD" && s.drawn.assetId === 3, null, "a tile switches the chart too");
  assert.equal(await page.getByLabel("Asset").inputValue(), "3");
  await page.getByLabel("Asset").selectOption({ label: "USDJPY" });
});

test("after the connection drops, the page reconnects with since per asset and every asset stays continuous", async () => {
  const before = await state();
  await page.evaluate(() => window.ratecast.dropConnection());
  await waitForState((s) => s.status === "reconnecting", null, "the indicator says reconnecting", 10_000);
  const s = await waitForState((s, t) => s.connected && s.lastTime >= t + 3, before.lastTime,
    "the page is live again and gains points", 30_000);
  assert.equal(s.assetId, before.assetId, "still the same asset");
  // No duplicate and no hole, for every asset: each resumed with its own `since`.
  await waitForState((s, t) => Object.values(s.followed).every((a) => a.live && a.lastTime >= t + 2), before.lastTime,
    "every asset is live again", 20_000);
  for (let id = 1; id <= 5; id++) await assertSameSeconds(page, id);
});

test("the 1 d range draws 15-minute candles that agree with GET /v1/candles and keep moving", async () => {
  await page.getByLabel("Asset").selectOption({ label: "EURUSD" });
  await page.getByRole("button", { name: "1 d" }).click();
  // The all-in-one pre-fills a day of simulated rates: 96 quarter hours, and the running one.
  const s = await waitForState((s) => s.range === "1d" && s.candles >= 96 && s.drawn.candles === s.candles, null,
    "a day of 15-minute candles is drawn");
  assert.equal(s.interval, "15m");
  const mine = await page.evaluate(() => window.ratecast.candles());
  for (let i = 1; i < mine.length; i++) assert.equal(mine[i].time - mine[i - 1].time, 900, "one candle per quarter hour, no gap");
  assert.ok(mine.slice(0, -1).every((c) => c.closed), "every candle but the newest is closed");
  assert.equal(mine.at(-1).closed, false, "the newest one is running");
  const http = await httpCandles("EURUSD", "15m", mine[0].time, mine.at(-1).time);
  const closedHttp = http.filter((c) => c.closed);
  const closedMine = mine.filter((c) => c.closed);
  assert.ok(closedMine.length >= 95);
  assert.deepEqual(closedMine, closedHttp.slice(-closedMine.length), "each closed candle's OHLC and count equal the HTTP answer");
  const running = http.at(-1);
  assert.equal(mine.at(-1).time, running.time);
  assert.equal(mine.at(-1).open, running.open, "the running candle opened where the store says");
  // Continuing live: the running candle takes the new points.
  const later = await waitForState((s, count) => s.drawn.lastCandle && s.drawn.lastCandle.count >= count + 3, mine.at(-1).count,
    "the running candle gains points", 20_000);
  assert.equal(later.range, "1d");
  await mkdir(path.dirname(CANDLES_SCREENSHOT), { recursive: true });
  await page.locator("main").screenshot({ path: CANDLES_SCREENSHOT });
});

test("the 6 h and 1 w ranges, then back to 30 minutes with no hole", async () => {
  await page.getByRole("button", { name: "6 h" }).click();
  let s = await waitForState((s) => s.range === "6h" && s.candles >= 72 && s.drawn.candles === s.candles, null, "six hours of 5-minute candles");
  assert.equal(s.interval, "5m");
  await page.getByRole("button", { name: "1 w" }).click();
  // A week of hourly candles reaches back as far as the store keeps points: a day here.
  s = await waitForState((s) => s.range === "1w" && s.candles >= 24 && s.drawn.candles === s.candles, null, "hourly candles");
  assert.equal(s.interval, "1h");
  const mine = await page.evaluate(() => window.ratecast.candles());
  const http = await httpCandles("EURUSD", "1h", mine[0].time, mine.at(-1).time);
  assert.deepEqual(mine.filter((c) => c.closed), http.filter((c) => c.closed).slice(-mine.filter((c) => c.closed).length));
  await page.getByRole("button", { name: "30 min" }).click();
  s = await waitForState((s, full) => s.range === "live" && s.points >= full && s.drawn.points === s.points && s.drawn.range === "live", FULL,
    "the 30-minute chart again");
  await waitForState((s, t) => s.lastTime > t, s.lastTime, "points keep coming", 20_000);
  await assertSameSeconds(page, 1);
});

test("the screenshot shows a full chart", async () => {
  await page.getByLabel("Asset").selectOption({ label: "EURUSD" });
  const s = await waitForState((s, full) => s.assetId === 1 && s.points >= full && s.drawn.points === s.points && s.drawn.assetId === 1,
    WINDOW_SECS - 5, "EURUSD's full window is drawn");
  await waitForState((s, t) => s.drawn.lastTime > t, s.lastTime, "a live point is drawn", 20_000);
  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.locator("main").screenshot({ path: SCREENSHOT });
});

test("an error frame is shown calmly and the page stays connected", async () => {
  // A second page whose subscribe is rewritten on its way to the real server.
  const other = await context.newPage();
  try {
    await other.routeWebSocket(/.*/, (ws) => {
      const upstream = ws.connectToServer();
      ws.onMessage((text) => {
        const frame = JSON.parse(text);
        if (frame.action === "subscribe") frame.message = { assetIds: [99] };
        upstream.send(JSON.stringify(frame));
      });
    });
    await other.goto(`http://127.0.0.1:${server.port}/`);
    await other.locator("#notice").waitFor({ state: "visible", timeout: 15_000 });
    assert.match(await other.locator("#notice-text").textContent(), /unknown_asset/);
    const s = await state(other);
    assert.equal(s.status, "live", "an error does not end the connection");
    await other.getByRole("button", { name: "Dismiss message" }).click();
    assert.ok(await other.locator("#notice").isHidden(), "the message can be dismissed");
  } finally {
    await other.close();
  }
});

test("with ?transport=sse the page runs on Server-Sent Events: every asset, no websocket, candles too", async () => {
  const other = await context.newPage();
  let opened = 0;
  other.on("websocket", () => { opened++; });
  try {
    await other.goto(`http://127.0.0.1:${server.port}/?transport=sse#USDJPY`);
    const s = await waitForState(everyAssetFull, FULL, "every asset's history arrives over SSE", 30_000, other);
    assert.equal(s.transport, "sse");
    assert.equal(s.assetName, "USDJPY");
    assert.match(await other.locator("#transport").textContent(), /Server-Sent Events/);
    await waitForState((s, t) => s.lastTime >= t + 3 && s.drawn.lastTime === s.lastTime, s.lastTime, "live points arrive and are drawn", 20_000, other);
    await other.evaluate(() => window.ratecast.dropConnection());
    const back = await waitForState((s, t) => s.connected && Object.values(s.followed).every((a) => a.live && a.lastTime >= t + 2), s.lastTime,
      "live again after the drop", 30_000, other);
    assert.equal(back.transport, "sse");
    for (let id = 1; id <= 5; id++) await assertSameSeconds(other, id);
    await other.getByRole("button", { name: "1 d" }).click();
    const c = await waitForState((s) => s.candles >= 96 && s.drawn.candles === s.candles, null, "candles over HTTP", 30_000, other);
    assert.equal(c.interval, "15m");
    const mine = await other.evaluate(() => window.ratecast.candles());
    const http = await httpCandles("USDJPY", "15m", mine[0].time, mine.at(-1).time);
    assert.deepEqual(mine.filter((x) => x.closed), http.filter((x) => x.closed).slice(-mine.filter((x) => x.closed).length));
    await waitForState((s, count) => s.drawn.lastCandle && s.drawn.lastCandle.count >= count + 2, mine.at(-1).count,
      "the running candle keeps moving", 20_000, other);
    assert.equal(opened, 0, "no websocket was opened");
  } finally {
    await other.close();
  }
});

test("when a proxy drops websockets the page falls back to Server-Sent Events by itself", async () => {
  const other = await context.newPage();
  try {
    // Every websocket is accepted by the route and closed at once, before a frame.
    await other.routeWebSocket(/.*/, (ws) => { ws.close({ code: 1008, reason: "no websockets here" }); });
    await other.goto(`http://127.0.0.1:${server.port}/`);
    const s = await waitForState((s, full) => s.transport === "sse" && s.connected && s.points >= full, FULL,
      "the page falls back and loads its history", 30_000, other);
    assert.equal(s.assetName, "EURUSD");
    await other.locator("#notice").waitFor({ state: "visible", timeout: 5_000 });
    assert.match(await other.locator("#notice-text").textContent(), /Server-Sent Events/);
  } finally {
    await other.close();
  }
});

test("after the server restarts on the same port, the page reconnects by itself", async () => {
  const before = await waitForState((s) => s.connected && s.points > 0, null, "the page is live");
  const port = server.port;
  await stopServer(server);
  await waitForState((s) => s.status === "reconnecting", null, "the indicator says reconnecting", 15_000);
  assert.match(await page.locator("#countdown").textContent(), /^(in \d+ s|…)$/);
  server = await startServer(port);
  const s = await waitForState((s, t) => s.connected && s.lastTime >= t + 2, before.lastTime,
    "the page is live again on the restarted server", 45_000);
  assert.equal(s.assetName, before.assetName);
  assert.equal(s.transport, "ws", "a server that was down is no reason to leave websockets");
  assertAscending(await page.evaluate(() => window.ratecast.times()));
});
