// Both pages at a landscape tablet, a portrait tablet and a phone: no
// horizontal scrolling, every control on screen and tappable (≥ 44 px),
// axe-core clean (no serious or critical violation) and the contrast
// figures, in each state the tests reach (sign-in, idle, scene pending,
// failed scene, offline devices). Issue #16 points 3 and 7.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fakeSession, launch, PIN, TOKEN } from './harness.mjs';
import { SIZES, checkPage, CREATOR_CONTRAST, TECH_CONTRAST, assertNoOverflow, assertAxe, assertTappable } from './checks.mjs';

let fake;
let browser;
let page;
let tech;
// The technician signs in on a browser of their own (cookies are per browser).
let techBrowser;
after(async () => { await techBrowser?.close(); });
fakeSession({ before, after }, (s) => ({ fake, browser, page } = s));

async function typePin(p, pin) {
  for (const d of pin) await p.click(`#keypad button[data-k="${d}"]`);
  await p.click('#pin-enter');
}

test('sign-in screens at every size', async () => {
  techBrowser = await launch();
  tech = await techBrowser.context.newPage();
  await page.goto(fake.base + '/');
  await page.waitForSelector('#login:not([hidden])');
  await tech.goto(fake.base + '/tech');
  await tech.waitForSelector('#login:not([hidden])');
  for (const size of SIZES) {
    await page.setViewportSize(size);
    await tech.setViewportSize(size);
    await checkPage(page, `PIN pad at ${size.name}`, CREATOR_CONTRAST);
    await checkPage(tech, `token sign-in at ${size.name}`, TECH_CONTRAST);
  }
  // The PIN pad shows nothing of the booth (no stale "On air now").
  assert.equal(await page.isVisible('.bar .now'), false);
  await typePin(page, PIN);
  await page.waitForSelector('#app:not([hidden]) .scene[data-scene="flash-sale"]');
  await tech.fill('#token', TOKEN);
  await tech.click('#token-form button');
  await tech.waitForSelector('#app:not([hidden]) #cameras button.on');
});

test('both pages, idle, at every size', async () => {
  await page.waitForSelector('#conn.live');
  await tech.waitForSelector('#conn.live');
  assert.equal(await page.textContent('#conn'), 'Connected');
  for (const size of SIZES) {
    await page.setViewportSize(size);
    await tech.setViewportSize(size);
    await checkPage(page, `tablet at ${size.name}`, CREATOR_CONTRAST);
    await checkPage(tech, `/tech at ${size.name}`, TECH_CONTRAST);
  }
});

test('/tech at portrait size: Lights get the full width, not 0 px', async () => {
  await tech.setViewportSize(SIZES[1]);
  const w = await tech.locator('#lights').evaluate((el) => el.getBoundingClientRect().width);
  assert.ok(w >= 600, `lights panel ${w} px wide`);
  const sliders = await tech.locator('#lights input').count();
  assert.ok(sliders >= 7);
});

test('on air, pending and done at every size (the on-air card keeps its contrast)', async () => {
  await page.click('.scene[data-scene="intro"]');
  await page.waitForSelector('.scene[data-scene="intro"].current');
  await fake.control('slow 30000');
  try {
    // A second tap on the scene on air: pending on the blue card.
    await page.click('.scene[data-scene="intro"]');
    await page.waitForSelector('.scene[data-scene="intro"].current.pending');
    for (const size of SIZES) {
      await page.setViewportSize(size);
      await checkPage(page, `pending on air at ${size.name}`, CREATOR_CONTRAST);
    }
  } finally {
    await fake.control('slow 0');
  }
  // The held reply comes back once a newer scene arrives (superseded), then this one is done.
  await page.click('.scene[data-scene="house"]');
  await page.waitForSelector('.scene[data-scene="house"].done');
  await page.click('.scene[data-scene="house"]');
  await page.waitForSelector('.scene[data-scene="house"].current.done');
  for (const size of SIZES) {
    await page.setViewportSize(size);
    await checkPage(page, `done on air at ${size.name}`, CREATOR_CONTRAST);
  }
});

test('offline devices: one banner, scenes still above the fold, at every size', async () => {
  await fake.control('offline front no ACK within 200 ms');
  await fake.control('offline side no ACK within 200 ms');
  await fake.control('offline overhead no ACK within 200 ms');
  await page.waitForFunction(() => document.querySelectorAll('.banner').length === 1 && /Overhead/.test(document.querySelector('.banner').textContent));
  assert.equal(await page.textContent('.banner'), 'Front camera, Overhead camera and Side camera are offline — the technician has been told.');
  await tech.waitForSelector('#health li.off');
  for (const size of SIZES) {
    await page.setViewportSize(size);
    await tech.setViewportSize(size);
    // The first scene button starts above the fold.
    const top = await page.locator('.scene').first().evaluate((b) => b.getBoundingClientRect().top);
    assert.ok(top < size.height - 100, `first scene at ${top} px on a ${size.height} px screen (${size.name})`);
    await checkPage(page, `offline banner at ${size.name}`, CREATOR_CONTRAST);
    await checkPage(tech, `/tech with offline devices at ${size.name}`, TECH_CONTRAST);
  }
  for (const d of ['front', 'side', 'overhead']) await fake.control(`online ${d}`);
  await page.waitForFunction(() => document.querySelectorAll('.banner').length === 0);
});

test('a failed scene at every size (tablet marks it, /tech raises its alert)', async () => {
  await fake.control('fail side camera offline: no ACK within 200 ms');
  try {
    await page.click('.scene[data-scene="flash-sale"]');
    await page.waitForSelector('.scene[data-scene="flash-sale"].failed');
    await page.waitForFunction(() => /technician has been told/.test(document.querySelector('.scene[data-scene="flash-sale"] .status').textContent));
    await tech.waitForSelector('#alert:not([hidden])');
    for (const size of SIZES) {
      await page.setViewportSize(size);
      await tech.setViewportSize(size);
      await checkPage(page, `failed scene at ${size.name}`, CREATOR_CONTRAST);
      await checkPage(tech, `/tech alert at ${size.name}`, TECH_CONTRAST);
    }
  } finally {
    await fake.control('heal side');
  }
  await page.click('.scene[data-scene="house"]');
  await page.waitForSelector('.scene[data-scene="house"].done');
  await tech.waitForSelector('#alert', { state: 'hidden' });
});

test('the contrast check can fail: the old "Switching…" orange on the blue card is caught', async () => {
  await page.setViewportSize(SIZES[0]);
  await page.evaluate(() => {
    const b = document.querySelector('.scene.current');
    b.querySelector('.status').style.color = '#f5a524';
    b.style.background = '#3b5bdb';
  });
  await assert.rejects(checkPage(page, 'sabotaged', CREATOR_CONTRAST), /contrast/);
  await page.evaluate(() => { document.querySelector('.scene.current').style.width = '2000px'; });
  await assert.rejects(assertNoOverflow(page, 'sabotaged'), /wide/);
  await page.reload();
  await page.waitForSelector('#app:not([hidden]) .scene');
  // axe sees a button without a name; the tap check sees a covered control.
  await tech.setViewportSize(SIZES[0]);
  await tech.evaluate(() => { const b = document.querySelector('#jog button[data-pan]'); b.removeAttribute('aria-label'); b.textContent = ''; });
  await assert.rejects(assertAxe(tech, 'sabotaged'), /button-name/);
  await tech.evaluate(() => {
    const cover = document.createElement('div');
    cover.style.cssText = 'position:fixed;inset:0;z-index:9;background:transparent';
    document.body.append(cover);
  });
  await assert.rejects(assertTappable(tech, 'sabotaged'), /a tap at its centre reaches div/);
  await tech.reload();
  await tech.waitForSelector('#app:not([hidden]) #cameras button.on');
});
