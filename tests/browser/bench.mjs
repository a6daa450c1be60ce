// Benchmark: a tap on the creator's tablet page (real Chromium) → the first
// ArtDmx frame with the new look, against the real daemon (examples/booth.rs).
//
//   cd tests/browser && STUDIOD_BOOTH=../../target/release/examples/booth node bench.mjs
//   (BENCH_TAPS=200 by default; BENCH_OUT=file.json also writes the raw samples)
//
// One clock: Node's performance.now(). A tap is the pointer already down on
// the scene button, then `t0` just before Playwright sends the mouse-up (the
// page's click handler runs on it); the booth prints each changed Art-Net
// frame as an `ARTNET` line on stdout, stamped when Node reads it. So every
// sample includes Playwright → CDP → renderer dispatch of the mouse-up and
// the booth's stdout pipe to Node. The baseline measures that overhead in the
// same run: a mouse-up on a no-op element (a click listener that does
// nothing), timed until Playwright gets CDP's acknowledgement, i.e. a full
// Node → renderer → Node round trip (an upper bound of the one-way part in
// the tap samples).
//
// Taps alternate Flash sale (fade 300 ms) and Intro (fade 1500 ms), the
// scenes as shipped. Reported per tap:
//   first  — tap → first frame that differs from the settled old look (the
//            fade towards the new look has started: what the creator sees first);
//   final  — tap → first frame exactly equal to the new look (≈ fade + latency);
//   ack    — Playwright's mouse-up round trip on the scene button itself.
// Before each tap the previous look has fully arrived and the button reported
// done, so taps never overlap.
import { performance } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { startBooth, launch, isLook, LOOKS, PIN } from './harness.mjs';

const TAPS = Number(process.env.BENCH_TAPS || 200);
const SCENES = ['flash-sale', 'intro'];
const FADE_MS = { 'flash-sale': 300, intro: 1500 }; // scenes/*.toml

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, min: s[0], p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s[s.length - 1], mean };
}
const fmt = (x) => x.toFixed(1);

const booth = await startBooth();
const browser = await launch();
let ok = false;
try {
  const page = await browser.context.newPage();
  await page.goto(booth.base + '/');
  await page.waitForSelector('#login:not([hidden])');
  for (const d of PIN) await page.click(`#keypad button[data-k="${d}"]`);
  await page.click('#pin-enter');
  await page.waitForSelector('#app:not([hidden]) .scene[data-scene="flash-sale"]');
  await page.waitForSelector('#conn.live');

  // The no-op target for the baseline: a click listener that does nothing,
  // in a corner away from the scene buttons (added over CDP; the page's CSP
  // does not apply to that).
  await page.evaluate(() => {
    const el = document.createElement('div');
    el.id = 'bench-noop';
    el.style.cssText = 'position:fixed;right:0;bottom:0;width:40px;height:40px;z-index:1000';
    el.addEventListener('click', () => {});
    document.body.append(el);
  });
  const centre = async (sel) => {
    const b = await page.locator(sel).boundingBox();
    return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
  };
  const noop = await centre('#bench-noop');
  const buttons = Object.fromEntries(await Promise.all(SCENES.map(async (s) => [s, await centre(`.scene[data-scene="${s}"]`)])));

  // Start from a settled, known look: intro, so the first tap is flash-sale.
  {
    const from = booth.log.length;
    await page.click('.scene[data-scene="intro"]');
    await booth.log.waitFor('intro look', isLook(LOOKS.intro), { from, timeoutMs: 15_000 });
    await page.waitForSelector('.scene[data-scene="intro"].done');
  }

  const samples = { first: { 'flash-sale': [], intro: [] }, final: { 'flash-sale': [], intro: [] }, ack: [], baseline: [], rest: { 'flash-sale': [], intro: [] } };
  let old = LOOKS.intro;
  for (let i = 0; i < TAPS; i++) {
    const scene = SCENES[i % 2];
    // Baseline: a mouse-up round trip on the no-op element.
    await page.mouse.move(noop.x, noop.y);
    await page.mouse.down();
    let t = performance.now();
    await page.mouse.up();
    samples.baseline.push(performance.now() - t);

    const { x, y } = buttons[scene];
    await page.mouse.move(x, y);
    await page.mouse.down();
    const from = booth.log.length;
    const t0 = performance.now();
    const lastFrame = booth.log.last((e) => e.kind === 'ARTNET', from);
    await page.mouse.up();
    samples.ack.push(performance.now() - t0);
    const prev = old;
    const first = await booth.log.waitFor(`first frame after tap ${i}`, (e) => e.kind === 'ARTNET' && e.json.data.some((v, j) => v !== prev[j]), { from, timeoutMs: 10_000 });
    const final = await booth.log.waitFor(`${scene} look after tap ${i}`, isLook(LOOKS[scene]), { from, timeoutMs: 15_000 });
    samples.first[scene].push(first.entry.t - t0);
    samples.final[scene].push(final.entry.t - t0);
    samples.rest[scene].push(t0 - lastFrame.t);
    old = LOOKS[scene];
    // The page answers once every device is done; only then is the button tappable again.
    await page.waitForSelector(`.scene[data-scene="${scene}"].done`, { timeout: 15_000 });
  }

  const allFirst = [...samples.first['flash-sale'], ...samples.first.intro];
  const rows = [
    ['tap → first changed ArtDmx (all)', stats(allFirst)],
    ['tap → first changed ArtDmx (flash-sale)', stats(samples.first['flash-sale'])],
    ['tap → first changed ArtDmx (intro)', stats(samples.first.intro)],
    [`tap → full look, flash-sale (fade ${FADE_MS['flash-sale']} ms)`, stats(samples.final['flash-sale'])],
    [`tap → full look, intro (fade ${FADE_MS.intro} ms)`, stats(samples.final.intro)],
    ['mouse-up round trip, scene button', stats(samples.ack)],
    ['(context) last frame before the tap → tap, flash-sale', stats(samples.rest['flash-sale'])],
    ['(context) last frame before the tap → tap, intro', stats(samples.rest.intro)],
    ['baseline: mouse-up round trip, no-op element', stats(samples.baseline)],
  ];
  console.log(`\n${TAPS} taps alternating flash-sale / intro (ms, Node clock)\n`);
  console.log('| measure | n | min | p50 | p90 | p99 | max | mean |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const [name, s] of rows) console.log(`| ${name} | ${s.n} | ${fmt(s.min)} | ${fmt(s.p50)} | ${fmt(s.p90)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${fmt(s.mean)} |`);
  if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(samples));
  ok = true;
} finally {
  await browser.close().catch(() => {});
  await booth.stop();
}
process.exitCode = ok ? 0 : 1;
