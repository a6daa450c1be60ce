// Scene order and edits, technician controls, words and timing (issue #16
// points 4, 6 and 8): the creator's tablet and /tech, each in its own
// browser (cookies are per browser), against the fake engine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fakeSession, signInBoth, PIN } from './harness.mjs';
import { SIZES, assertTappable, assertAxe, assertContrast, CREATOR_CONTRAST, TECH_CONTRAST } from './checks.mjs';

/** axe-core and the contrast figures, on a page in the state a test reached. */
async function a11y(p, what, contrast) {
  await assertAxe(p, what);
  await assertContrast(p, what, contrast);
}

let fake;
let browser;
let page;
let techBrowser;
let tech;
fakeSession({ before, after }, (s) => ({ fake, browser, page } = s));
after(async () => { await techBrowser?.close(); });

const EXAMPLE_ORDER = ['house', 'intro', 'product-closeup', 'unboxing', 'flash-sale', 'end-of-slot'];
const order = (p, sel) => p.locator(sel).evaluateAll((bs) => bs.map((b) => b.dataset.scene));

test('both pages show the scenes in their files\' order, the safe scene first', async () => {
  ({ techBrowser, tech } = await signInBoth(page, fake.base, '#app:not([hidden]) #scene-list button[data-scene="house"]'));
  assert.deepEqual(await order(page, '.scene'), EXAMPLE_ORDER);
  assert.deepEqual(await order(tech, '#scene-list button[data-scene]'), EXAMPLE_ORDER);
});

test('a scene saved while the creator is on the page does not move the buttons under their finger', async () => {
  const rects = () => page.locator('.scene').evaluateAll((bs) => bs.map((b) => { const r = b.getBoundingClientRect(); return `${b.dataset.scene}@${Math.round(r.left)},${Math.round(r.top)}`; }));
  const before = await rects();
  // Saved with order 0: in the booth's order it comes first.
  await fake.control('addscene aa-new 0 A new look');
  await page.waitForSelector('.scene[data-scene="aa-new"]');
  await tech.waitForSelector('#scene-list button[data-scene="aa-new"]');
  assert.deepEqual((await rects()).slice(0, EXAMPLE_ORDER.length), before, 'the existing buttons kept their places');
  assert.deepEqual(await order(page, '.scene'), [...EXAMPLE_ORDER, 'aa-new']);
  // /tech and a fresh tablet page follow the booth's order.
  assert.deepEqual(await order(tech, '#scene-list button[data-scene]'), ['aa-new', ...EXAMPLE_ORDER]);
  await page.reload();
  await page.waitForSelector('#app:not([hidden]) .scene[data-scene="aa-new"]');
  assert.deepEqual(await order(page, '.scene'), ['aa-new', ...EXAMPLE_ORDER]);
  // A deleted scene's button goes; the others stay in place.
  await fake.control('delscene aa-new');
  await page.waitForFunction(() => !document.querySelector('.scene[data-scene="aa-new"]'));
  assert.deepEqual(await order(page, '.scene'), EXAMPLE_ORDER);
});

test('saving over an existing scene asks first; no answers nothing is sent', async () => {
  const from = fake.commands.length;
  await tech.fill('#save-name', 'house');
  let asked = null;
  tech.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
  await tech.click('#save-form button[type="submit"]');
  await tech.waitForFunction(() => /Not saved/.test(document.getElementById('save-error').textContent));
  assert.match(asked, /A scene named “house” \(House\) exists\. Replace it/);
  // A new name is saved without a question; then a confirmed overwrite is sent.
  tech.once('dialog', (d) => d.accept());
  await tech.click('#save-form button[type="submit"]');
  const { command } = await fake.waitFor('put_scene', (c) => c.action === 'put_scene', { from });
  assert.equal(command.scene, 'house');
  assert.equal(fake.commands.slice(from).filter((c) => c.action === 'put_scene').length, 1, 'the refused save sent nothing');
});

test('the technician can delete a scene from the page, after confirming', async () => {
  const from = fake.commands.length;
  let asked = null;
  tech.once('dialog', (d) => { asked = d.message(); d.accept(); });
  await tech.click('#scene-list button[data-delete="end-of-slot"]');
  const { command } = await fake.waitFor('delete_scene', (c) => c.action === 'delete_scene', { from });
  assert.equal(command.scene, 'end-of-slot');
  assert.match(asked, /Delete the scene “End of slot”/);
});

test('jog and zoom work from the keyboard: held keys move, released keys stop', async () => {
  await tech.click('#cameras button[data-camera="front"]');
  let from = fake.commands.length;
  await tech.focus('#jog [aria-label="Left"]');
  await tech.keyboard.down('Space');
  const jog = await fake.waitFor('jog from Space', (c) => c.action === 'jog', { from });
  assert.ok(jog.command.pan < 0 && jog.command.tilt === 0, JSON.stringify(jog.command));
  await tech.keyboard.up('Space');
  await fake.waitFor('jog_stop', (c) => c.action === 'jog_stop', { from: jog.index + 1 });
  from = fake.commands.length;
  await tech.keyboard.down('ArrowUp');
  const up = await fake.waitFor('jog from ArrowUp', (c) => c.action === 'jog', { from });
  assert.ok(up.command.tilt > 0 && up.command.pan === 0, JSON.stringify(up.command));
  await tech.keyboard.up('ArrowUp');
  await fake.waitFor('jog_stop', (c) => c.action === 'jog_stop', { from: up.index + 1 });
  from = fake.commands.length;
  await tech.keyboard.down('+');
  const z = await fake.waitFor('zoom in from +', (c) => c.action === 'zoom' && c.speed > 0, { from });
  await tech.keyboard.up('+');
  await fake.waitFor('zoom stop', (c) => c.action === 'zoom' && c.speed === 0, { from: z.index + 1 });
});

test('presets and slider thumbs are at least 44 × 44 px at every size', async () => {
  for (const size of SIZES) {
    await tech.setViewportSize(size);
    await assertTappable(tech, `presets at ${size.name}`, { selector: '#presets button, #lights input, #jog button, .zoom button, #scene-list button' });
    // The range thumb itself (a pseudo-element): 44 px as styled.
    const thumb = await tech.locator('#lights input[type=range]').first().evaluate((el) => {
      const st = getComputedStyle(el, '::-webkit-slider-thumb');
      return [parseFloat(st.width), parseFloat(st.height)];
    });
    assert.ok(thumb[0] >= 44 && thumb[1] >= 44, `thumb ${thumb}`);
  }
  await tech.setViewportSize(SIZES[0]);
});

test('/tech scene buttons show pending until the booth answers; scene failures go to the alert, not a toast', async () => {
  await fake.control('slow 1500');
  try {
    await tech.click('#scene-list button[data-scene="intro"]');
    await tech.waitForSelector('#scene-list button.pending[data-scene="intro"]', { timeout: 1000 });
    assert.equal(await tech.getAttribute('#scene-list button[data-scene="intro"]', 'aria-busy'), 'true');
    await a11y(tech, '/tech with a scene pending', TECH_CONTRAST);
    await tech.waitForSelector('#scene-list button.current[data-scene="intro"]:not(.pending)', { timeout: 5000 });
  } finally {
    await fake.control('slow 0');
  }
  await fake.control('fail side camera offline: no ACK within 200 ms');
  try {
    await tech.click('#scene-list button[data-scene="flash-sale"]');
    await tech.waitForSelector('#alert:not([hidden])');
    assert.equal(await tech.isVisible('#toast'), false, 'no toast for a scene failure');
  } finally {
    await fake.control('heal side');
  }
  await tech.click('#scene-list button[data-scene="house"]');
  await tech.waitForSelector('#alert', { state: 'hidden' });
});

test('an error toast never covers the Scenes panel nor blocks a tap', async () => {
  await fake.control('fail front camera offline: no ACK within 200 ms');
  try {
    for (const size of SIZES) {
      await tech.setViewportSize(size);
      await tech.click('#cameras button[data-camera="front"]');
      await tech.locator('#scene-list').scrollIntoViewIfNeeded();
      await tech.click('#presets button[data-preset="2"]');
      await tech.waitForSelector('#toast.bad:not([hidden])');
      await a11y(tech, `/tech with an error toast at ${size.name}`, TECH_CONTRAST);
      if (size.width >= 1100) {
        const overlap = await tech.evaluate(() => {
          const t = document.getElementById('toast').getBoundingClientRect();
          return [...document.querySelectorAll('#scene-list button')].filter((b) => {
            const r = b.getBoundingClientRect();
            return r.left < t.right && r.right > t.left && r.top < t.bottom && r.bottom > t.top;
          }).map((b) => b.dataset.scene || b.dataset.delete);
        });
        assert.deepEqual(overlap, [], `toast over scene buttons at ${size.name}`);
      }
      assert.equal(await tech.locator('#toast').evaluate((t) => getComputedStyle(t).pointerEvents), 'none');
      await assertTappable(tech, `scene buttons under a toast at ${size.name}`, { selector: '#scene-list button' });
    }
  } finally {
    await fake.control('heal front');
    await tech.setViewportSize(SIZES[0]);
  }
});

test('Lock needs a second tap: one stray tap does not sign the creator out', async () => {
  await page.click('#lock');
  assert.equal(await page.textContent('#lock'), 'Tap again to lock');
  assert.equal(await page.isVisible('#app'), true);
  await a11y(page, 'tablet asking to lock', CREATOR_CONTRAST);
  // It settles back by itself.
  await page.waitForFunction(() => document.getElementById('lock').textContent === 'Lock', null, { timeout: 6000 });
  assert.equal(await page.isVisible('#app'), true);
  await page.click('#lock');
  await page.click('#lock');
  await page.waitForSelector('#login:not([hidden])');
  for (const d of PIN) await page.click(`#keypad button[data-k="${d}"]`);
  await page.click('#pin-enter');
  await page.waitForSelector('#app:not([hidden]) .scene[data-scene="house"]');
});

test('a scene with a fade shows applying, then fading with progress, then done when the fade is over; never two Done', async () => {
  await page.waitForSelector('#conn.live');
  assert.equal(await page.textContent('#conn'), 'Connected');
  // Count "Done" buttons on every change.
  await page.evaluate(() => {
    window.__maxDone = 0;
    window.__fading = [];
    new MutationObserver(() => {
      window.__maxDone = Math.max(window.__maxDone, document.querySelectorAll('.scene.done').length);
      const f = document.querySelector('.scene.fading .status');
      if (f) window.__fading.push(f.textContent);
    }).observe(document.getElementById('scenes'), { subtree: true, attributes: true, childList: true, characterData: true });
  });
  await page.click('.scene[data-scene="intro"]');
  await page.waitForSelector('.scene[data-scene="intro"].done');
  // House fades for 2 s (scenes/house.toml).
  const t0 = Date.now();
  await page.click('.scene[data-scene="house"]');
  await page.waitForSelector('.scene[data-scene="house"].fading');
  await assertContrast(page, 'tablet fading on air', CREATOR_CONTRAST);
  await page.waitForSelector('.scene[data-scene="house"].done', { timeout: 5000 });
  const took = Date.now() - t0;
  assert.ok(took >= 1900, `done after ${took} ms of a 2000 ms fade`);
  const seen = await page.evaluate(() => [window.__maxDone, window.__fading]);
  assert.equal(seen[0], 1, 'never two Done at once');
  assert.ok(seen[1].some((t) => /^Fading in… [1-9]\d?%$/.test(t)), `progress shown: ${seen[1].slice(0, 5)}`);
  assert.equal(await page.getAttribute('.scene[data-scene="house"]', 'aria-busy'), 'false');
});

test('the last failure is part of the booth state: pages opened later still show it, until a scene succeeds', async () => {
  await fake.control('fail side camera offline: no ACK within 200 ms');
  try {
    // Applied elsewhere (not from either page), as the backend does.
    const reply = await tech.evaluate(() => Studiod.command({ action: 'apply_scene', scene: 'flash-sale' }).then((r) => r.data));
    assert.equal(reply.ok, false);
    const st = await tech.evaluate(() => fetch('/api/state').then((r) => r.json()));
    assert.deepEqual({ scene: st.last_failure.scene, failed: st.last_failure.failed }, { scene: 'flash-sale', failed: { side: 'camera offline: no ACK within 200 ms' } });
    await page.reload();
    await tech.reload();
    await tech.waitForSelector('#alert:not([hidden])');
    assert.match(await tech.textContent('#alert-text'), /Flash sale.*side \(camera offline/);
    await a11y(tech, '/tech after a reload with a failure', TECH_CONTRAST);
    await page.waitForFunction(() => document.getElementById('current').textContent === 'Flash sale (not complete)');
    await page.waitForSelector('.scene[data-scene="flash-sale"].failed');
    assert.match(await page.textContent('#problem'), /Side camera didn’t follow/);
  } finally {
    await fake.control('heal side');
  }
  await tech.evaluate(() => Studiod.command({ action: 'apply_scene', scene: 'house' }));
  await tech.waitForSelector('#alert', { state: 'hidden' });
  await page.waitForFunction(() => document.getElementById('current').textContent === 'House');
  assert.equal(await page.locator('.scene.failed').count(), 0);
  assert.equal((await tech.evaluate(() => fetch('/api/state').then((r) => r.json()))).last_failure, null);
});
