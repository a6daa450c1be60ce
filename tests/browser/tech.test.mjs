// The technician's page in a real browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fakeSession, TOKEN, shotPath } from './harness.mjs';

let fake;
let browser;
let page;
fakeSession({ before, after }, (s) => ({ fake, browser, page } = s));

test('a wrong token is refused', async () => {
  await page.goto(fake.base + '/tech');
  await page.waitForSelector('#login:not([hidden])');
  await page.fill('#token', 'nope');
  await page.click('#token-form button');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
  assert.match(await page.textContent('#login-error'), /not valid|not right/);
});

test('signing in with the token shows cameras, lights and devices', async () => {
  await page.fill('#token', TOKEN);
  await page.click('#token-form button');
  await page.waitForSelector('#app:not([hidden]) #cameras button.on');
  await page.waitForSelector('#conn.live');
  assert.equal(await page.textContent('#cameras button.on'), 'front');
  assert.ok(await page.locator('.fixture').count() >= 1);
  assert.ok(await page.locator('#health li').count() >= 1);
});

test('holding a jog button sends jog (repeated) and releasing sends jog_stop', async () => {
  await page.click('#cameras button[data-camera="side"]');
  const from = fake.commands.length;
  const up = page.locator('#jog button[aria-label="Up"]');
  await up.hover();
  await page.mouse.down();
  const first = await fake.waitFor('jog', (c) => c.action === 'jog', { from });
  assert.equal(first.command.camera, 'side');
  assert.equal(first.command.pan, 0);
  assert.ok(first.command.tilt > 0);
  // keep-alive repeats arrive while held
  await fake.waitFor('repeated jog', (c) => c.action === 'jog', { from: first.index + 1 });
  await page.mouse.up();
  const stop = await fake.waitFor('jog_stop', (c) => c.action === 'jog_stop', { from: first.index + 1 });
  assert.equal(stop.command.camera, 'side');
  // no jog after the stop
  await fake.waitFor('marker', (c) => c.action === 'status' || c.action === 'jog', { from: stop.index + 1, timeoutMs: 600 }).then(
    (x) => assert.fail(`unexpected ${JSON.stringify(x.command)} after jog_stop`),
    () => {},
  );
});

test('holding the zoom rocker zooms; releasing sends zoom speed 0', async () => {
  const from = fake.commands.length;
  await page.locator('#zoom-in').hover();
  await page.mouse.down();
  const go = await fake.waitFor('zoom in', (c) => c.action === 'zoom' && c.speed > 0, { from });
  assert.equal(go.command.camera, 'side');
  await page.mouse.up();
  await fake.waitFor('zoom stop', (c) => c.action === 'zoom' && c.speed === 0, { from: go.index + 1 });
});

test('moving a light slider sends set_light', async () => {
  const from = fake.commands.length;
  const slider = page.locator('.fixture[data-fixture="key"] input[data-key="intensity"]');
  await slider.fill('0.8');
  const { command } = await fake.waitFor('set_light', (c) => c.action === 'set_light' && c.fixture === 'key', { from });
  assert.equal(command.values.intensity, 0.8);
});

test('save current look as scene sends put_scene with a TOML draft', async () => {
  const from = fake.commands.length;
  await page.fill('#save-name', 'Bad Name');
  await page.click('#save-form button');
  assert.match(await page.textContent('#save-error'), /lower-case/);
  await page.fill('#save-name', 'evening-look');
  await page.fill('#save-label', 'Evening look');
  await page.click('#save-form button');
  const { command } = await fake.waitFor('put_scene', (c) => c.action === 'put_scene', { from });
  assert.equal(command.scene, 'evening-look');
  assert.match(command.toml, /label = "Evening look"/);
  assert.match(command.toml, /\[light\.key\]\nintensity = 0\.8/);
});

// A scene applied elsewhere (here: straight through the API, as the tablet does).
async function applyElsewhere(scene) {
  return page.evaluate((sc) => Studiod.command({ action: 'apply_scene', scene: sc }).then((r) => r.data), scene);
}

test('a failed scene raises an alert on /tech within 1 s, until a scene succeeds', async () => {
  await page.waitForSelector('#conn.live');
  await fake.control('fail side camera offline: no ACK within 200 ms');
  try {
    const reply = await applyElsewhere('flash-sale');
    assert.equal(reply.ok, false);
    const t0 = Date.now();
    await page.waitForSelector('#alert:not([hidden])', { timeout: 1000 });
    assert.ok(Date.now() - t0 <= 1000);
    const text = await page.textContent('#alert-text');
    assert.match(text, /Flash sale/);
    assert.match(text, /side \(camera offline: no ACK within 200 ms\)/);
    await page.waitForFunction(() => document.getElementById('current').textContent === 'Flash sale (not complete)');
    assert.equal(await page.locator('#scene-list button.failed[data-scene="flash-sale"]').count(), 1);
    // Persistent: still there a moment later (not a toast).
    await page.waitForTimeout(1500);
    assert.equal(await page.isVisible('#alert'), true);
  } finally {
    await fake.control('heal side');
  }
  assert.equal((await applyElsewhere('house')).ok, true);
  await page.waitForSelector('#alert', { state: 'hidden', timeout: 1000 });
  assert.equal(await page.locator('#scene-list button.failed').count(), 0);
});

test('a superseded scene raises no alert on /tech', async () => {
  await fake.control('slow 300');
  try {
    const [first, second] = await Promise.all([applyElsewhere('intro'), new Promise((r) => setTimeout(r, 30)).then(() => applyElsewhere('flash-sale'))]);
    assert.equal(first.ok, false);
    assert.equal(second.ok, true);
    await page.waitForTimeout(500);
    assert.equal(await page.isVisible('#alert'), false);
  } finally {
    await fake.control('slow 0');
  }
});

test('screenshot of the technician page', async () => {
  // A fresh load (the session cookie stays) with a realistic look.
  await page.reload();
  await page.waitForSelector('#app:not([hidden]) #cameras button.on');
  await fake.control('offline overhead no ACK within 200 ms');
  await fake.control('scene flash-sale Flash sale');
  await page.waitForSelector('#health li.off');
  // the sliders start from the current scene's look
  await page.waitForFunction(() => document.querySelector('.fixture[data-fixture="backdrop"] input[data-key="color"]').value === '#ff8800');
  assert.equal(await page.locator('.fixture[data-fixture="key"] input[data-key="intensity"]').inputValue(), '1');
  assert.match(await page.inputValue('#save-toml'), /\[camera\.front\]\npreset = 4/);
  const levels = { key: 0.85, fill: 0.6, back: 0.7, hair: 0.45, product: 0.9 };
  for (const [fx, v] of Object.entries(levels)) {
    await page.locator(`.fixture[data-fixture="${fx}"] input[data-key="intensity"]`).fill(String(v));
  }
  await page.locator('.fixture[data-fixture="backdrop"] input[data-key="color"]').fill('#ff8800');
  assert.equal(await page.locator('.fixture[data-fixture="hair"] input[data-key="intensity"]').inputValue(), '0.45');
  const png = await page.screenshot({ animations: 'disabled', path: shotPath('tech.png') });
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
});
