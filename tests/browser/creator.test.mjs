// The creator's tablet page in a real browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fakeSession, PIN, shotPath } from './harness.mjs';

let fake;
let browser;
let page;
fakeSession({ before, after }, (s) => ({ fake, browser, page } = s));

async function typePin(pin) {
  for (const d of pin) await page.click(`#keypad button[data-k="${d}"]`);
  await page.click('#pin-enter');
}

test('a wrong PIN shows an error and no scenes', async () => {
  await page.goto(fake.base + '/');
  await page.waitForSelector('#login:not([hidden])');
  await typePin('0000');
  await page.waitForFunction(() => document.getElementById('pin-error').textContent.includes('not right'));
  const err = await page.textContent('#pin-error');
  assert.match(err, /That PIN is not right\. 4 tries left\./);
  assert.equal(await page.isVisible('#app'), false);
});

test('logging in with the PIN shows the scene buttons', async () => {
  await typePin(PIN);
  await page.waitForSelector('#app:not([hidden]) .scene[data-scene="flash-sale"]');
  const label = await page.textContent('.scene[data-scene="flash-sale"] .name');
  assert.equal(label, 'Flash sale');
  await page.waitForSelector('#conn.live');
});

test('tapping a scene shows pending, then done, and sends apply_scene', async () => {
  const from = fake.commands.length;
  await page.click('.scene[data-scene="flash-sale"]');
  await page.waitForSelector('.scene[data-scene="flash-sale"].done');
  assert.match(await page.textContent('.scene[data-scene="flash-sale"] .status'), /Done/);
  const { command } = await fake.waitFor('apply_scene', (c) => c.action === 'apply_scene', { from });
  assert.equal(command.scene, 'flash-sale');
  assert.equal(command.origin, 'http');
  // the engine's state change comes back over SSE: it is now the current scene
  await page.waitForSelector('.scene[data-scene="flash-sale"].current');
  assert.equal(await page.textContent('#current'), 'Flash sale');
});

test('a failing device is explained in plain words on the button', async () => {
  await fake.control('fail side camera offline: no ACK within 200 ms');
  await page.click('.scene[data-scene="intro"]');
  await page.waitForSelector('.scene[data-scene="intro"].failed');
  const text = await page.textContent('.scene[data-scene="intro"] .status');
  assert.match(text, /Side camera didn’t respond/);
  assert.doesNotMatch(text, /ACK|device_failed|error/i);
  await fake.control('heal side');
});

test('a scene replaced by a quick second tap is shown as replaced, not as a failure', async () => {
  // Scene replies wait for their cameras: the second tap supersedes the first,
  // whose camera moves come back "cancelled", as from the real engine.
  await fake.control('slow 400');
  try {
    const firstReply = page.waitForResponse((r) => r.url().endsWith('/api/commands') && (r.request().postData() || '').includes('"flash-sale"'));
    await page.click('.scene[data-scene="flash-sale"]');
    await page.waitForTimeout(40);
    await page.click('.scene[data-scene="product-closeup"]');
    const reply = await (await firstReply).json();
    assert.equal(reply.ok, false);
    assert.equal(reply.devices.front.error, 'cancelled', JSON.stringify(reply));
    await page.waitForSelector('.scene[data-scene="product-closeup"].done');
    const first = page.locator('.scene[data-scene="flash-sale"]');
    assert.equal(await first.evaluate((b) => b.classList.contains('failed')), false, 'no red');
    const text = await first.locator('.status').textContent();
    assert.match(text, /Replaced/);
    assert.doesNotMatch(text, /didn’t respond|technician/);
    assert.equal(await page.locator('.scene.failed').count(), 0);
    assert.equal(await page.isVisible('#problem'), false);
  } finally {
    await fake.control('slow 0');
  }
});

test('a failed scene is not shown as on air, and stays visible until a scene succeeds', async () => {
  await fake.control('fail front camera offline: no ACK within 200 ms');
  await fake.control('fail side camera offline: no ACK within 200 ms');
  const b = '.scene[data-scene="flash-sale"]';
  await page.click(b);
  await page.waitForSelector(`${b}.failed`);
  // The header says what is really on air, and which devices did not follow.
  await page.waitForFunction(() => document.getElementById('current').textContent === 'Flash sale (not complete)');
  assert.match(await page.textContent('#problem'), /^Front camera and Side camera didn’t follow$/);
  assert.equal(await page.isVisible(`${b} .tag`), false, 'no LIVE tag on a failed scene');
  // The event reached the technician's page and the backend: only then is it said.
  await page.waitForFunction((sel) => document.querySelector(sel + ' .status').textContent.includes('The technician has been told.'), b);
  assert.match(await page.textContent(`${b} .status`), /^Front camera and Side camera didn’t respond\. The technician has been told\.$/);
  // Not gone after the old 10 s.
  await page.waitForTimeout(10_500);
  assert.ok(await page.locator(`${b}.failed`).count() === 1, 'failure still shown after 10 s');
  assert.equal(await page.textContent('#current'), 'Flash sale (not complete)');
  // The next success clears it.
  await fake.control('heal front');
  await fake.control('heal side');
  await page.click('.scene[data-scene="house"]');
  await page.waitForSelector('.scene[data-scene="house"].done');
  await page.waitForFunction(() => document.getElementById('current').textContent === 'House');
  assert.equal(await page.locator('.scene.failed').count(), 0);
  assert.equal(await page.isVisible('#problem'), false);
});

test('a state change pushed by the server updates the open page without reload', async () => {
  await page.evaluate(() => { window.__marker = 'same-page'; });
  await fake.control('scene house House lights');
  await page.waitForFunction(() => document.getElementById('current').textContent === 'House lights');
  await page.waitForSelector('.scene[data-scene="house"].current');
  assert.equal(await page.evaluate(() => window.__marker), 'same-page');
  // a device going offline shows the banner
  await fake.control('offline side no ACK within 200 ms');
  await page.waitForSelector('.banner');
  assert.equal(await page.textContent('.banner'), 'Side camera is offline — the technician has been told.');
});

test('a light node going offline names its lights in one plain banner', async () => {
  await fake.control('online side');
  await page.waitForFunction(() => document.querySelectorAll('.banner').length === 0);
  // What the engine does when node1 stops answering ArtPoll: the node and
  // every fixture patched to it go offline (two of them here).
  await fake.control('offline node1 no ArtPollReply for 10 s');
  await fake.control('offline key light node `node1` offline: no ArtPollReply for 10 s');
  await fake.control('offline fill light node `node1` offline: no ArtPollReply for 10 s');
  await page.waitForFunction(() => [...document.querySelectorAll('.banner')].some((b) => b.textContent.includes('Key light')));
  assert.equal(await page.locator('.banner').count(), 1, 'one banner, not one per light plus the network box');
  assert.equal(await page.textContent('.banner'), 'Fill light and Key light are offline — the technician has been told.');
  // Back by itself: the banner goes.
  for (const d of ['node1', 'key', 'fill']) await fake.control(`online ${d}`);
  await page.waitForFunction(() => document.querySelectorAll('.banner').length === 0);
});

test('screenshot of the tablet page', async () => {
  await fake.control('heal side');
  await fake.control('online side');
  // A fresh load (the session cookie stays): no leftover button states.
  await page.reload();
  await page.waitForSelector('#app:not([hidden]) .scene[data-scene="product-closeup"]');
  await page.click('.scene[data-scene="product-closeup"]');
  await page.waitForSelector('.scene[data-scene="product-closeup"].done.current');
  // What the screenshot shows is checked, not just taken: the tapped scene
  // on air, exactly one current button, no banner once the camera is back,
  // and nothing wider than the screen.
  await page.waitForFunction(() => document.getElementById('current').textContent === 'Product close-up');
  assert.equal(await page.locator('.scene.current').count(), 1);
  assert.equal(await page.locator('.banner').count(), 0, 'no banner once the camera is back');
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scrolling');
  const png = await page.screenshot({ animations: 'disabled', path: shotPath('tablet.png') });
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
});
