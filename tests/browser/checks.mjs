// Checks every browser test can run on a page in whatever state it reached:
// no horizontal scrolling, every control on screen and tappable, axe-core
// (no serious or critical violation) and the contrast figures of issue #16
// (status text ≥ 4.5:1, status indicators ≥ 3:1, creator labels ≥ 18 px).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// axe-core (npm, installed by scripts/browser-setup.sh). Evaluated through
// the DevTools protocol, which the pages' CSP (script-src 'self') allows.
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** The sizes the pages must work at: landscape tablet, portrait tablet, phone. */
export const SIZES = [
  { name: 'landscape', width: 1280, height: 800 },
  { name: 'portrait', width: 800, height: 1280 },
  { name: 'phone', width: 390, height: 844 },
];

/** Nothing wider than the screen: the page never scrolls sideways. */
export async function assertNoOverflow(page, what) {
  const r = await page.evaluate(() => {
    const w = document.documentElement.clientWidth;
    const wide = [];
    for (const el of document.querySelectorAll('body *')) {
      const b = el.getBoundingClientRect();
      if (b.width === 0 && b.height === 0) continue;
      if (getComputedStyle(el).position === 'fixed' && el.hidden) continue;
      if (b.right > w + 0.5 || b.left < -0.5) wide.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${el.className} [${Math.round(b.left)}, ${Math.round(b.right)}]`);
    }
    return { scroll: document.documentElement.scrollWidth, inner: window.innerWidth, w, wide: wide.slice(0, 8) };
  });
  assert.ok(r.scroll <= r.inner, `${what}: page is ${r.scroll} px wide on a ${r.inner} px screen`);
  assert.deepEqual(r.wide, [], `${what}: elements beyond the screen's edges (width ${r.w})`);
}

/**
 * Every visible control (buttons, inputs, textareas) lies within the
 * screen's width, is at least `min` px in both directions (44 for touch),
 * and is the element a tap at its centre reaches once scrolled into view
 * (nothing covers it, no column squeezed to nothing).
 */
export async function assertTappable(page, what, { min = 44, selector = 'button, input, textarea, select' } = {}) {
  const handles = await page.locator(selector).elementHandles();
  const problems = [];
  for (const h of handles) {
    if (!(await h.isVisible())) continue;
    await h.scrollIntoViewIfNeeded();
    const p = await h.evaluate((el, min) => {
      const b = el.getBoundingClientRect();
      const name = `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.dataset.scene ? `[data-scene=${el.dataset.scene}]` : ''}${el.dataset.preset ? `[data-preset=${el.dataset.preset}]` : ''}${el.getAttribute('aria-label') ? ` "${el.getAttribute('aria-label')}"` : ` "${(el.textContent || '').trim().slice(0, 20)}"`}`;
      const w = document.documentElement.clientWidth;
      if (b.left < -0.5 || b.right > w + 0.5) return `${name} is off-screen (x ${Math.round(b.left)}–${Math.round(b.right)} of ${w})`;
      if (b.width < min || b.height < min) return `${name} is ${Math.round(b.width)}×${Math.round(b.height)} px (< ${min}×${min})`;
      const x = b.left + b.width / 2;
      const y = b.top + b.height / 2;
      if (y < 0 || y > window.innerHeight) return `${name} cannot be scrolled into view`;
      const hit = document.elementFromPoint(x, y);
      if (!hit || !(hit === el || el.contains(hit) || (el.labels && [...el.labels].some((l) => l.contains(hit))))) {
        return `${name}: a tap at its centre reaches ${hit ? hit.tagName.toLowerCase() + (hit.id ? '#' + hit.id : '') + '.' + hit.className : 'nothing'}`;
      }
      return null;
    }, min);
    if (p) problems.push(p);
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  assert.deepEqual(problems, [], `${what}: controls that cannot be tapped`);
}

/** axe-core on the whole page: no serious or critical violation. */
export async function assertAxe(page, what) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // The check itself must not see a half-finished transition or spinner.
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 4).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${what}: axe-core violations`);
}

/**
 * Contrast of status text (≥ 4.5:1 against what is behind it) and status
 * indicators (borders, dots: ≥ 3:1 against both sides), computed from the
 * rendered colours. `texts` and `indicators` are CSS selectors; only
 * visible elements count. Returns how many were checked.
 */
export async function assertContrast(page, what, { texts = [], indicators = [], minFontPx = 0, largeTexts = [] } = {}) {
  // Colours are read once running transitions (a card turning blue) have ended.
  await page.evaluate(() => Promise.all(document.getAnimations().filter((a) => a instanceof CSSTransition).map((a) => a.finished.catch(() => {}))));
  const r = await page.evaluate(({ texts, indicators, minFontPx, largeTexts }) => {
    const rgba = (c) => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
    };
    const over = (top, under) => ({ r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1 });
    // The opaque colour behind `el` (its own background first when `self`).
    const background = (el, self = true) => {
      const layers = [];
      for (let e = self ? el : el.parentElement; e; e = e.parentElement) {
        const c = rgba(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
      }
      let c = { r: 0, g: 0, b: 0, a: 1 };
      for (const l of layers.reverse()) c = over(l, c);
      return c;
    };
    const lum = (c) => {
      const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
    };
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    const visible = (el) => { const b = el.getBoundingClientRect(); return b.width > 0 && b.height > 0 && getComputedStyle(el).visibility !== 'hidden'; };
    const name = (el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${[...el.classList].join('.')}${el.parentElement && el.parentElement.dataset.scene ? `(${el.parentElement.dataset.scene})` : ''}`;
    const fails = [];
    let checked = 0;
    for (const sel of texts) {
      for (const el of document.querySelectorAll(sel)) {
        if (!visible(el) || !el.textContent.trim()) continue;
        checked++;
        const st = getComputedStyle(el);
        const fg = over(rgba(st.color), background(el));
        const k = ratio(fg, background(el));
        if (k < 4.5) fails.push(`text ${name(el)} "${el.textContent.trim().slice(0, 30)}" ${k.toFixed(2)}:1 < 4.5:1`);
        if (parseFloat(st.fontSize) < minFontPx) fails.push(`text ${name(el)} is ${st.fontSize} (< ${minFontPx}px)`);
      }
    }
    for (const sel of largeTexts) {
      for (const el of document.querySelectorAll(sel)) {
        if (!visible(el) || !el.textContent.trim()) continue;
        const st = getComputedStyle(el);
        if (parseFloat(st.fontSize) < 18) fails.push(`label ${name(el)} "${el.textContent.trim().slice(0, 30)}" is ${st.fontSize} (< 18px)`);
      }
    }
    for (const spec of indicators) {
      // "selector" (its border), or "selector::before" (a dot: its background).
      const [sel0, pseudo] = spec.split('::');
      // "selector@bg": a dot whose own background is the indicator.
      const dotOnly = sel0.endsWith('@bg');
      const sel = dotOnly ? sel0.slice(0, -3) : sel0;
      for (const el of document.querySelectorAll(sel)) {
        if (!visible(el)) continue;
        checked++;
        if (dotOnly) {
          const k = ratio(background(el), background(el, false));
          if (k < 3) fails.push(`indicator ${name(el)} ${k.toFixed(2)}:1 < 3:1`);
        } else if (pseudo) {
          const st = getComputedStyle(el, '::' + pseudo);
          if (st.content === 'none' || st.display === 'none') continue;
          const dot = rgba(st.backgroundColor);
          const k = ratio(over(dot, background(el)), background(el));
          if (k < 3) fails.push(`indicator ${name(el)}::${pseudo} ${k.toFixed(2)}:1 < 3:1`);
        } else {
          const st = getComputedStyle(el);
          const border = rgba(st.borderTopColor);
          const inside = background(el);
          const outside = background(el, false);
          const k = Math.min(ratio(over(border, outside), inside), ratio(over(border, outside), outside));
          if (k < 3) fails.push(`indicator ${name(el)} border ${k.toFixed(2)}:1 < 3:1 (inside or outside)`);
        }
      }
    }
    return { fails, checked };
  }, { texts, indicators, minFontPx, largeTexts });
  assert.deepEqual(r.fails, [], `${what}: contrast`);
  return r.checked;
}

/** Status texts and indicators of the creator page (as the issue lists them). */
export const CREATOR_CONTRAST = {
  texts: ['#conn', '.now .label', '#current', '#problem', '#next', '.scene .status', '.scene .tag', '.banner', '#pin-error', '.login .hint', '#lock'],
  indicators: ['#conn::before', '.scene.pending', '.scene.done', '.scene.failed', '.scene.current', '.banner', '.banner::before'],
  // Read at arm's length.
  largeTexts: ['#conn', '.now .label', '#current', '#problem', '#next', '.scene .status', '.scene .tag', '.scene .name', '.banner', '#lock', '.login .hint', '#pin-error'],
};

export const TECH_CONTRAST = {
  texts: ['#conn', '#current', '#alert-text', '.health li > span:not(.dot)', '.health .err', '.toast:not([hidden])', '#save-error', '#login-error', '.scene-list button'],
  indicators: ['#conn::before', '.health .dot@bg', '.health li.off', '.alert-badge', '.scene-list button.current', '.scene-list button.failed', '.scene-list button.pending', '.fixture.off', '#cameras button.off'],
  largeTexts: [],
};

/** Everything at once, for one page in one state. */
export async function checkPage(page, what, contrast) {
  await assertNoOverflow(page, what);
  await assertTappable(page, what);
  await assertAxe(page, what);
  await assertContrast(page, what, contrast);
}
