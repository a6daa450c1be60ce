// Reconnection (issue #16 point 5): a creator stays signed in across a
// restart of the server (sessions kept in the state folder), the PIN pad
// shows nothing stale, and a connection gone silent (the server frozen:
// the TCP connection stays open, nothing arrives) is shown within 5 s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFake, launch, freePort, PIN, TOKEN } from './harness.mjs';
import { assertAxe, assertContrast, CREATOR_CONTRAST, TECH_CONTRAST } from './checks.mjs';

let fake;
let browser;
let page;
let listen;
let stateDir;

before(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'studiod-state-'));
  // A fixed port, so the page reconnects to the restarted server (retried if taken meanwhile).
  for (let i = 0; i < 5 && !fake; i++) {
    listen = `127.0.0.1:${await freePort()}`;
    fake = await startFake({ listen, stateDir }).catch(() => null);
  }
  assert.ok(fake, 'fake server started');
  browser = await launch();
  page = await browser.context.newPage();
});

after(async () => {
  await browser?.close();
  await fake?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

async function typePin(pin) {
  for (const d of pin) await page.click(`#keypad button[data-k="${d}"]`);
  await page.click('#pin-enter');
}

test('the creator stays signed in across a restart of the server', async () => {
  await page.goto(fake.base + '/');
  await page.waitForSelector('#login:not([hidden])');
  await typePin(PIN);
  await page.waitForSelector('#app:not([hidden]) .scene[data-scene="flash-sale"]');
  await page.waitForSelector('#conn.live');
  await page.click('.scene[data-scene="intro"]');
  await page.waitForSelector('.scene[data-scene="intro"].current');
  // The sessions file holds no cookie token.
  const cookie = (await browser.context.cookies()).find((c) => c.name === 'studiod_session');
  const saved = readFileSync(join(stateDir, 'sessions.json'), 'utf8');
  assert.ok(saved.includes('"creator"') && !saved.includes(cookie.value), saved);

  await fake.stop();
  await page.waitForSelector('#conn.down');
  fake = await startFake({ listen, stateDir });
  await page.waitForSelector('#conn.live', { timeout: 15_000 });
  assert.equal(await page.isVisible('#login'), false, 'not sent back to the PIN pad');
  assert.equal(await page.isVisible('#app'), true);
  // Commands still work: the session (and its CSRF token) came back.
  const from = fake.commands.length;
  await page.click('.scene[data-scene="house"]');
  await page.waitForSelector('.scene[data-scene="house"].done');
  await fake.waitFor('apply_scene', (c) => c.action === 'apply_scene' && c.scene === 'house', { from });
});

test('without the state folder a restart does send the creator to the PIN pad (the test above can fail)', async () => {
  await fake.stop();
  await page.waitForSelector('#conn.down');
  fake = await startFake({ listen });
  await page.waitForSelector('#login:not([hidden])', { timeout: 15_000 });
  // The PIN pad shows nothing of the booth: no stale "On air now".
  assert.equal(await page.isVisible('.bar .now'), false);
  assert.equal(await page.isVisible('#conn'), true);
  await fake.stop();
  fake = await startFake({ listen, stateDir });
  await typePin(PIN);
  await page.waitForSelector('#app:not([hidden]) .scene');
  assert.equal(await page.isVisible('.bar .now'), true);
});

async function silentWithin(p, ms) {
  await p.waitForSelector('#conn.live');
  fake.signal('SIGSTOP');
  const t0 = Date.now();
  try {
    await p.waitForSelector('#conn.down', { timeout: ms });
    const took = Date.now() - t0;
    // Said in words, while the server is still frozen.
    assert.match(await p.textContent('#conn'), /^Connection lost/);
    const tech = p.url().endsWith('/tech');
    await assertAxe(p, 'connection lost');
    await assertContrast(p, 'connection lost', tech ? TECH_CONTRAST : CREATOR_CONTRAST);
    return took;
  } finally {
    fake.signal('SIGCONT');
  }
}

test('a silent connection is shown on the tablet within 5 s, and Connected again when it is back', async () => {
  await page.waitForSelector('#conn.live');
  assert.equal(await page.textContent('#conn'), 'Connected');
  const took = await silentWithin(page, 5000);
  await page.waitForSelector('#conn.live', { timeout: 15_000 });
  assert.ok(took <= 5000, `${took} ms`);
});

test('a silent connection is shown on /tech within 5 s', async () => {
  const other = await launch();
  try {
    const tech = await other.context.newPage();
    await tech.goto(fake.base + '/tech');
    await tech.waitForSelector('#login:not([hidden])');
    await tech.fill('#token', TOKEN);
    await tech.click('#token-form button');
    await tech.waitForSelector('#app:not([hidden]) #cameras button.on');
    await silentWithin(tech, 5000);
    await tech.waitForSelector('#conn.live', { timeout: 15_000 });
  } finally {
    await other.close();
  }
});
