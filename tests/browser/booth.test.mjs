// The tablet and technician pages against the REAL daemon: examples/booth.rs
// (studiod in-process, three virtual VISCA cameras, Art-Net/OSC monitors on
// loopback) with a private Mosquitto as the booking backend's broker. What
// the devices receive is read from the booth's ARTNET/CAMERA/OSC lines.
//
//   cargo build --examples && cd tests/browser &&
//   STUDIOD_BOOTH=$PWD/../../target/debug/examples/booth node --test booth.test.mjs
// (without STUDIOD_BOOTH the harness uses `cargo run --example booth`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { startBooth, startMosquitto, mqttPublish, mqttSubscribe, launch, isLook, LOOKS, PIN, TOKEN } from './harness.mjs';

const TOPIC = 'studiod/la-03';
let broker;
let statusSub;
let booth;
let browser;
let page;

before(async () => {
  broker = await startMosquitto();
  // Subscribed before the booth starts: its retained `status` then proves its
  // MQTT client is connected and subscribed to `cmd` (it subscribes first).
  statusSub = mqttSubscribe(broker.port, `${TOPIC}/status`, { count: 1, waitS: 60 });
  await statusSub.subscribed;
  booth = await startBooth({ mqttUrl: broker.url });
  const [online] = await statusSub.messages;
  assert.equal(JSON.parse(online).online, true, online);
  browser = await launch();
  page = await browser.context.newPage();
});

after(async () => {
  // Each step runs even if an earlier one failed, so no process outlives the file.
  statusSub?.stop();
  await browser?.close().catch(() => {});
  await booth?.stop();
  await broker?.stop();
});

async function typePin(pin) {
  for (const d of pin) await page.click(`#keypad button[data-k="${d}"]`);
  await page.click('#pin-enter');
}

const camera = (name) => (e) => e.kind === 'CAMERA' && e.json.name === name;

test('a wrong PIN shows an error and no scenes', async () => {
  await page.goto(booth.base + '/');
  await page.waitForSelector('#login:not([hidden])');
  await typePin('0000');
  await page.waitForFunction(() => document.getElementById('pin-error').textContent.length > 0);
  assert.equal(await page.textContent('#pin-error'), 'That PIN is not right. 4 tries left.');
  assert.equal(await page.isVisible('#app'), false);
  assert.equal(await page.locator('.scene').count(), 0);
});

test('tapping Flash sale sends the flash-sale look to the lights and shows done', async () => {
  await typePin(PIN);
  await page.waitForSelector('#app:not([hidden]) .scene[data-scene="flash-sale"]');
  await page.waitForSelector('#conn.live');
  const from = booth.log.length;
  await page.click('.scene[data-scene="flash-sale"]');
  // Exact channel values (key 255,255 … backdrop 255,136,0) once the 300 ms fade ends.
  const { entry } = await booth.log.waitFor('ARTNET with the flash-sale look', isLook(LOOKS['flash-sale']), { from });
  assert.deepEqual(entry.json.data.slice(0, 2), [255, 255]);
  assert.deepEqual(entry.json.data.slice(15, 18), [255, 136, 0]);
  await page.waitForSelector('.scene[data-scene="flash-sale"].done');
  assert.equal(await page.textContent('.scene[data-scene="flash-sale"] .status'), '✓ Done');
  await page.waitForSelector('.scene[data-scene="flash-sale"].current');
  assert.equal(await page.textContent('#current'), 'Flash sale');
  // The console got the scene's cue, with its arguments.
  const osc = await booth.log.waitFor('flash-sale OSC cue', (e) => e.kind === 'OSC' && e.json.address === '/studiod/flash-sale', { from });
  assert.deepEqual(osc.entry.json.args, [1, 0.5, 'go', true]);
});

test('a scene applied over MQTT shows on the open page without reload, and is answered', async () => {
  await page.evaluate(() => { window.__marker = 'same-page'; });
  const reply = mqttSubscribe(broker.port, `${TOPIC}/reply`, { count: 1, waitS: 10 });
  await reply.subscribed;
  const id = `browser-${process.pid}-${Date.now()}`;
  const from = booth.log.length;
  await mqttPublish(broker.port, `${TOPIC}/cmd`, JSON.stringify({ id, action: 'apply_scene', scene: 'intro', fade_ms: 0 }));
  await page.waitForSelector('.scene[data-scene="intro"].current');
  await page.waitForFunction(() => document.getElementById('current').textContent === 'Intro');
  assert.equal(await page.locator('.scene.current').count(), 1, 'only Intro is highlighted');
  assert.equal(await page.evaluate(() => window.__marker), 'same-page', 'the page was not reloaded');
  const r = JSON.parse((await reply.messages)[0]);
  assert.equal(r.id, id);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.action, 'apply_scene');
  assert.equal(r.scene, 'intro');
  assert.equal(r.duplicate, false);
  for (const d of ['front', 'side', 'key', 'backdrop', 'console']) assert.equal(r.devices[d]?.ok, true, `${d}: ${JSON.stringify(r)}`);
  // fade_ms 0: the intro look goes out as is.
  await booth.log.waitFor('ARTNET with the intro look', isLook(LOOKS.intro), { from });
});

test('holding a jog arrow on /tech moves the selected camera; releasing stops it where it is', async () => {
  await page.goto(booth.base + '/tech');
  await page.waitForSelector('#login:not([hidden])');
  await page.fill('#token', TOKEN);
  await page.click('#token-form button');
  await page.waitForSelector('#app:not([hidden]) #cameras button.on');
  await page.waitForSelector('#conn.live');
  await page.click('#cameras button[data-camera="side"]');
  await page.waitForSelector('#cameras button.on[data-camera="side"]');
  // Slowest jog (0.1 → VISCA speed 2, 600 units/s at move_time_scale 0.2):
  // the pan limit (±2267) is ≥ 3.7 s away, far beyond how long we hold.
  await page.locator('#speed').fill('0.1');

  // Where the side camera is now (a forced line: nothing may have changed lately).
  let from = booth.log.length;
  booth.control('cameras');
  const start = (await booth.log.waitFor('side camera state', camera('side'), { from })).entry.json;
  assert.equal(start.moving, false, 'side camera settled before the jog');

  from = booth.log.length;
  await page.locator('#jog button[aria-label="Right"]').hover();
  const pressed = performance.now();
  await page.mouse.down();
  const moving = await booth.log.waitFor('side camera moving', (e) => camera('side')(e) && e.json.moving, { from });
  // Still moving after the 1 s dead-man: the page's keep-alive repeats hold it.
  const held = await booth.log.waitFor('side camera still moving after 1.3 s', (e) => camera('side')(e) && e.json.moving && e.t > pressed + 1300, { from: moving.index, timeoutMs: 5_000 });
  const release = booth.log.length;
  await page.mouse.up();
  const stopped = await booth.log.waitFor('side camera stopped', (e) => camera('side')(e) && !e.json.moving, { from: release, timeoutMs: 5_000 });
  // Right = positive pan (jog_drive), tilt and zoom untouched.
  assert.ok(held.entry.json.pan > start.pan, `pan grew while held: ${start.pan} → ${held.entry.json.pan}`);
  assert.ok(stopped.entry.json.pan >= held.entry.json.pan, `stopped at ${stopped.entry.json.pan}`);
  assert.ok(stopped.entry.json.pan < 2267, 'stopped by the release, not by the pan limit');
  assert.equal(stopped.entry.json.tilt, start.tilt);
  assert.equal(stopped.entry.json.zoom, start.zoom);
  // Only the selected camera moved.
  const others = booth.log.entries.slice(from).filter((e) => e.kind === 'CAMERA' && e.json.name !== 'side' && e.json.moving);
  assert.deepEqual(others.map((e) => e.line), [], 'another camera moved');

  // It stays put: no change at all for longer than a keep-alive repeat (250 ms)
  // plus the dead-man (1 s) — a repeat overtaking the stop would move it again.
  await booth.log.expectNone('side camera change after the stop', camera('side'), { from: stopped.index + 1, forMs: 1_500 });
  const now = booth.log.length;
  booth.control('cameras');
  const after = (await booth.log.waitFor('side camera state', camera('side'), { from: now })).entry.json;
  assert.deepEqual(after, stopped.entry.json);

  // The release stopped it, not the server's dead-man watchdog.
  const metrics = await fetch(booth.base + '/metrics', { headers: { Authorization: `Bearer ${TOKEN}` } }).then((r) => r.text());
  const deadman = metrics.split('\n').find((l) => l.startsWith('studiod_http_deadman_stops_total{') && l.includes('"side"'));
  assert.ok(!deadman || / 0$/.test(deadman), `dead-man stopped the side camera: ${deadman}`);
});

test('/tech lists the slot starts the backend scheduled, and cancelling one answers the backend', async () => {
  // Signed in on /tech by the previous test.
  await page.waitForSelector('#conn.live');
  const replies = mqttSubscribe(broker.port, `${TOPIC}/reply`, { count: 3, waitS: 15 });
  await replies.subscribed;
  const base = `sched-${process.pid}-${Date.now()}`;
  const at = (h) => new Date(Date.now() + h * 3600_000).toISOString();
  await mqttPublish(broker.port, `${TOPIC}/cmd`, JSON.stringify({ id: `${base}-a`, action: 'apply_scene', scene: 'intro', at: at(1), slot: { booking: 'b-81' } }));
  await mqttPublish(broker.port, `${TOPIC}/cmd`, JSON.stringify({ id: `${base}-b`, action: 'apply_scene', scene: 'flash-sale', at: at(2), slot: { booking: 'b-82' } }));
  const rows = `#schedule li[data-id^="${base}"]`;
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 2, rows);
  const texts = await page.locator(rows).allTextContents();
  assert.match(texts[0], /Intro b-81/, texts[0]);
  assert.match(texts[1], /Flash sale b-82/, texts[1]);
  page.once('dialog', (d) => d.accept());
  await page.locator(`#schedule li[data-id="${base}-a"] button`).click();
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 1, rows);
  // The backend heard: the two acknowledgements (either first), then a's
  // second reply: cancelled.
  const got = (await replies.messages).map((m) => JSON.parse(m)).map((r) => [r.id, r.scheduled ?? false, r.error?.code ?? null]);
  assert.deepEqual(got.slice(0, 2).sort(), [[`${base}-a`, true, null], [`${base}-b`, true, null]]);
  assert.deepEqual(got[2], [`${base}-a`, false, 'cancelled']);
  await mqttPublish(broker.port, `${TOPIC}/cmd`, JSON.stringify({ id: `${base}-x`, action: 'cancel', target: `${base}-b` }));
  await page.waitForSelector('#schedule li.empty');
});
