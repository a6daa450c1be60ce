// The README's pictures: both pages at a landscape tablet, a portrait tablet
// and a phone, with a scene that did not fully apply and a device offline.
// What each picture shows is checked before it is taken.
// STUDIOD_UPDATE_SCREENSHOTS=1 writes them to docs/ (else to the temp folder).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fakeSession, signInBoth, shotPath } from './harness.mjs';
import { SIZES, assertNoOverflow } from './checks.mjs';

let fake;
let browser;
let page;
let techBrowser;
let tech;
fakeSession({ before, after }, (s) => ({ fake, browser, page } = s));
after(async () => { await techBrowser?.close(); });

test('both pages with a failed scene and an offline camera, at every size', async () => {
  ({ techBrowser, tech } = await signInBoth(page, fake.base, '#app:not([hidden]) #cameras button.on'));

  await fake.control('offline overhead no ACK within 200 ms');
  await fake.control('fail side camera offline: no ACK within 200 ms');
  await page.click('.scene[data-scene="flash-sale"]');
  await page.waitForSelector('.scene[data-scene="flash-sale"].failed');
  await page.waitForFunction(() => /technician has been told/.test(document.querySelector('.scene[data-scene="flash-sale"] .status').textContent));
  await tech.waitForSelector('#alert:not([hidden])');
  await tech.waitForSelector('#health li.off');
  for (const size of SIZES) {
    await page.setViewportSize(size);
    await tech.setViewportSize(size);
    await page.evaluate(() => window.scrollTo(0, 0));
    await tech.evaluate(() => window.scrollTo(0, 0));
    assert.equal(await page.textContent('#current'), 'Flash sale (not complete)');
    assert.equal(await page.textContent('.banner'), 'Overhead camera is offline — the technician has been told.');
    assert.equal(await page.isVisible('.scene[data-scene="flash-sale"]'), true);
    assert.match(await tech.textContent('#alert-text'), /Flash sale.*side/);
    assert.equal(await tech.locator('#health li.off').count(), 1);
    await assertNoOverflow(page, `tablet at ${size.name}`);
    await assertNoOverflow(tech, `/tech at ${size.name}`);
    for (const [p, name] of [[page, 'tablet'], [tech, 'tech']]) {
      const png = await p.screenshot({ animations: 'disabled', path: shotPath(`${name}-${size.name}.png`) });
      assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    }
  }
  await fake.control('heal side');
  await fake.control('online overhead');
});
