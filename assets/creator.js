// The creator's tablet page: PIN pad, big scene buttons, live state.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_PIN = 12;
  let pin = '';
  let stream = null;
  let lastState = null;
  let wasLive = false;
  const kindsByName = {};
  // Buttons showing a result keep it for a few seconds, then settle.
  const settleTimers = new Map();
  // The last scene that did not fully apply: {scene, devices: {name: reason},
  // id, told}. Shown until a scene succeeds or another scene goes on air.
  let failure = null;
  // Ids of failed commands the studio announced (to the technician's page
  // and the backend): only then does the tablet say the technician was told.
  const announced = new Set();
  const TOLD_WAIT_MS = 1500;

  // ---- login -----------------------------------------------------------------
  function drawDots() {
    const dots = $('pin-dots');
    dots.replaceChildren();
    const n = Math.max(4, pin.length);
    for (let i = 0; i < n; i++) {
      const s = document.createElement('span');
      if (i < pin.length) s.className = 'on';
      dots.append(s);
    }
  }

  function showLogin(message) {
    if (stream) { stream.close(); stream = null; }
    $('app').hidden = true;
    $('lock').hidden = true;
    resetLock();
    // Nothing of the booth's state shows behind the PIN pad (it would be stale).
    document.querySelector('.bar .now').hidden = true;
    $('login').hidden = false;
    $('banners').replaceChildren();
    setConn(null);
    pin = '';
    drawDots();
    $('pin-error').textContent = message || '';
  }

  let lockedUntil = 0;
  function lockKeypad(seconds) {
    lockedUntil = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.ceil((lockedUntil - Date.now()) / 1000);
      if (left <= 0) { $('pin-error').textContent = 'You can try again now.'; return; }
      $('pin-error').textContent = `Too many wrong tries. Please wait ${left} seconds.`;
      setTimeout(tick, 1000);
    };
    tick();
  }

  async function submitPin() {
    if (!pin || Date.now() < lockedUntil) return;
    $('pin-enter').disabled = true;
    const r = await Studiod.login({ pin });
    $('pin-enter').disabled = false;
    pin = '';
    drawDots();
    if (r.status === 200) { $('pin-error').textContent = ''; start(); return; }
    if (r.status === 429) { lockKeypad((r.data && r.data.error && r.data.error.retry_after_s) || 60); return; }
    if (r.status === 0) { $('pin-error').textContent = 'Can’t reach the studio computer. Check the Wi-Fi.'; return; }
    $('pin-error').textContent = (r.data && r.data.error && r.data.error.message) || 'That PIN is not right.';
  }

  function key(k) {
    if (k === 'clear') pin = '';
    else if (k === 'back') pin = pin.slice(0, -1);
    else if (k === 'enter') { submitPin(); return; }
    else if (/^[0-9]$/.test(k) && pin.length < MAX_PIN) pin += k;
    drawDots();
  }

  $('keypad').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (b) key(b.dataset.k);
  });
  document.addEventListener('keydown', (e) => {
    if ($('login').hidden) return;
    if (/^[0-9]$/.test(e.key)) key(e.key);
    else if (e.key === 'Enter') key('enter');
    else if (e.key === 'Backspace') key('back');
  });

  // ---- scenes ----------------------------------------------------------------
  function setConn(live) {
    const c = $('conn');
    c.className = 'conn' + (live === true ? ' live' : live === false ? ' down' : '');
    // "Connected" to the studio computer: "live" means streaming in live commerce.
    c.textContent = live === true ? 'Connected' : live === false ? 'Connection lost — reconnecting…' : 'Connecting…';
    if (live === true) wasLive = true;
    renderBanners();
  }

  // The scenes in the order shown. It comes from the booth (each scene's
  // `order`) when the page opens; while the creator is on the page, buttons
  // never move under their finger: a scene saved meanwhile is added at the
  // end, a deleted one leaves a gap that closes, the others keep their places.
  let shown = null;
  const fadeMs = {};

  function sceneOrder(names) {
    if (!shown) return names.slice();
    return shown.filter((n) => names.includes(n)).concat(names.filter((n) => !shown.includes(n)));
  }

  function newSceneButton(name) {
    const b = document.createElement('button');
    b.className = 'scene';
    b.dataset.scene = name;
    const label = document.createElement('span');
    label.className = 'name';
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = 'ON AIR';
    const status = document.createElement('span');
    status.className = 'status';
    const bar = document.createElement('span');
    bar.className = 'progress';
    bar.setAttribute('aria-hidden', 'true');
    b.append(tag, label, status, bar);
    b.addEventListener('click', () => apply(b));
    return b;
  }

  function renderScenes(model) {
    $('studio').textContent = model.studio;
    const grid = $('scenes');
    const byName = new Map(model.scenes.map((s) => [s.name, s]));
    shown = sceneOrder(model.scenes.map((s) => s.name));
    const buttons = shown.map((name) => {
      const b = sceneButton(name) || newSceneButton(name);
      b.querySelector('.name').textContent = byName.get(name).label;
      fadeMs[name] = byName.get(name).fade_ms || 0;
      return b;
    });
    grid.replaceChildren(...buttons);
    if (lastState) renderState(lastState);
  }

  function sceneButton(name) {
    return document.querySelector(`.scene[data-scene="${CSS.escape(name)}"]`);
  }

  function setStatus(b, cls, text) {
    b.classList.remove('pending', 'fading', 'done', 'failed', 'replaced');
    clearInterval(b._fade);
    if (cls) b.classList.add(cls);
    b.querySelector('.status').textContent = text;
    b.setAttribute('aria-busy', cls === 'pending' || cls === 'fading' ? 'true' : 'false');
    if (cls === 'done') {
      // One "Done" at a time: the newest result is the one that counts.
      for (const o of document.querySelectorAll('.scene.done')) {
        if (o !== b) { clearTimeout(settleTimers.get(o)); settleTimers.delete(o); setStatus(o, null, o.classList.contains('current') ? 'On air' : ''); }
      }
    }
  }

  // Applying → fading (with progress) → done when the look is complete: the
  // lights started with the tap and take the scene's fade time.
  function fadeThenDone(b, started) {
    const total = fadeMs[b.dataset.scene] || 0;
    const step = () => {
      const p = total ? Math.min(1, (Date.now() - started) / total) : 1;
      if (p >= 1) { setStatus(b, 'done', '✓ Done'); settle(b, 4000); return true; }
      b.querySelector('.status').textContent = `Fading in… ${Math.round(p * 100)}%`;
      b.style.setProperty('--progress', p.toFixed(3));
      return false;
    };
    if (total && Date.now() - started < total) {
      setStatus(b, 'fading', '');
      if (!step()) b._fade = setInterval(() => { if (step()) clearInterval(b._fade); }, 100);
    } else step();
  }

  function settle(b, ms) {
    clearTimeout(settleTimers.get(b));
    settleTimers.set(b, setTimeout(() => {
      settleTimers.delete(b);
      setStatus(b, null, b.classList.contains('current') ? 'On air' : '');
    }, ms));
  }

  async function apply(b) {
    if (b.classList.contains('pending')) return;
    clearTimeout(settleTimers.get(b));
    setStatus(b, 'pending', 'Applying…');
    const started = Date.now();
    const id = 'tablet-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 8);
    const r = await Studiod.command({ id, action: 'apply_scene', scene: b.dataset.scene });
    if (r.status === 401) { showLogin('Please enter your PIN again.'); return; }
    if (r.status === 200 && r.data && r.data.ok) {
      if (failure) { failure = null; renderFailure(); }
      fadeThenDone(b, started);
    } else if (r.status === 200 && Studiod.superseded(r.data)) {
      // Another scene was tapped before this one finished: quietly replaced.
      setStatus(b, 'replaced', 'Replaced by your next scene');
      settle(b, 3000);
    } else if (r.status === 200 && r.data && r.data.error && r.data.error.code === 'device_failed') {
      const devices = {};
      for (const [n, d] of Object.entries(r.data.devices || {})) if (!d.ok && d.error !== 'cancelled') devices[n] = d.error || 'failed';
      setStatus(b, null, '');
      failure = { scene: b.dataset.scene, devices, id, told: announced.has(id), at: Date.now() };
      // The announcement may arrive just after the reply: wait a moment before asking the creator to tell someone.
      setTimeout(renderFailure, TOLD_WAIT_MS + 50);
      renderFailure();
    } else {
      setStatus(b, 'failed', Studiod.friendly(r.status, r.data, kindsByName) + ' Please tell the technician.');
      settle(b, 10000);
    }
  }

  // Live events: a failed scene (from this tablet or anywhere else) was
  // announced; a successful one clears the failure.
  function onEvent(e) {
    if (e.event !== 'scene_applied') return;
    if (e.ok) {
      if (failure) { failure = null; renderFailure(); }
      return;
    }
    if (e.superseded) return;
    if (e.id) announced.add(e.id);
    if (failure && failure.id === e.id) failure.told = true;
    else failure = { scene: e.scene, devices: e.failed || {}, id: e.id, told: true, at: Date.now() };
    renderFailure();
  }

  function failureText(f) {
    const names = Studiod.failedNames(f.devices, kindsByName);
    let t = names.length ? `${Studiod.listNames(names)} didn’t respond.` : 'Part of this scene didn’t work.';
    if (f.told) t += ' The technician has been told.';
    else if (Date.now() - f.at >= TOLD_WAIT_MS) t += ' Please tell the technician.';
    return t;
  }

  // The header says what is really on air; the failed scene's button keeps
  // its message until a scene succeeds.
  function renderFailure() {
    const onAir = failure && lastState && lastState.scene === failure.scene;
    const label = lastState ? (lastState.scene_label || lastState.scene) : null;
    $('current').textContent = label ? (onAir ? `${label} (not complete)` : label) : '—';
    const problem = $('problem');
    if (onAir) {
      const names = Studiod.failedNames(failure.devices, kindsByName);
      problem.textContent = names.length ? `${Studiod.listNames(names)} didn’t follow` : 'Part of it didn’t work';
    } else problem.textContent = '';
    problem.hidden = !onAir;
    document.querySelector('.bar .now').classList.toggle('trouble', !!onAir);
    for (const b of document.querySelectorAll('.scene')) {
      if (failure && b.dataset.scene === failure.scene) {
        if (b.classList.contains('pending')) continue;
        clearTimeout(settleTimers.get(b));
        settleTimers.delete(b);
        setStatus(b, 'failed', failureText(failure));
      } else if (b.classList.contains('failed') && !settleTimers.has(b)) {
        setStatus(b, null, b.classList.contains('current') ? 'On air' : '');
      }
    }
  }

  function renderState(state) {
    // Another scene went on air: the failed one is no longer what people see.
    if (failure && lastState && lastState.scene === failure.scene && state.scene !== failure.scene) failure = null;
    // The booth keeps its last failure (from any origin, MQTT too) until a
    // scene succeeds: a page opened or reloaded later still shows it.
    const lf = state.last_failure;
    if (lf && !(failure && failure.scene === lf.scene)) failure = { scene: lf.scene, devices: lf.failed || {}, id: null, told: true, at: Date.now() };
    else if (!lf && lastState && lastState.last_failure) failure = null;
    lastState = state;
    for (const [n, d] of Object.entries(state.devices || {})) kindsByName[n] = d.kind;
    const pending = state.pending;
    $('next').textContent = pending ? `Next: ${pending.scene} at ${new Date(pending.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}` : '';
    for (const b of document.querySelectorAll('.scene')) {
      const cur = b.dataset.scene === state.scene;
      b.classList.toggle('current', cur);
      if (!b.classList.contains('pending') && !b.classList.contains('fading') && !settleTimers.has(b) && !b.classList.contains('failed')) {
        b.querySelector('.status').textContent = cur ? 'On air' : '';
      }
    }
    renderFailure();
    renderBanners();
  }

  function renderBanners() {
    const box = $('banners');
    box.replaceChildren();
    if (wasLive && $('conn').classList.contains('down')) {
      const d = document.createElement('div');
      d.className = 'banner bad';
      d.textContent = 'Lost contact with the studio computer — trying again…';
      box.append(d);
    }
    if (!lastState) return;
    const off = Object.entries(lastState.devices || {}).filter(([, d]) => d.online === false);
    // One banner for all offline devices (an unplugged chain takes several
    // cameras at once): the scene buttons stay above the fold. Lights of a
    // node that went offline are named; the node itself (a network box the
    // creator never sees) is left out when its lights are listed.
    const lights = off.some(([, d]) => d.kind === 'fixture');
    const shown = off.filter(([, d]) => !(lights && (d.kind === 'artnet' || d.kind === 'sacn')));
    if (shown.length) box.append(offlineBanner(shown));
  }

  function offlineBanner(off) {
    const b = document.createElement('div');
    b.className = 'banner';
    b.dataset.banner = 'offline';
    const names = Studiod.listNames(off.map(([name, d]) => Studiod.deviceName(name, d.kind)));
    b.textContent = `${names} ${off.length === 1 ? 'is' : 'are'} offline — the technician has been told.`;
    return b;
  }

  function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('lock').hidden = false;
    document.querySelector('.bar .now').hidden = false;
    if (stream) stream.close();
    stream = Studiod.live({
      onModel: renderScenes,
      onState: renderState,
      onEvent,
      onStatus: setConn,
      onAuthLost: () => showLogin('Please enter your PIN again.'),
    });
  }

  // Lock asks once more: a stray tap must not sign the creator out mid-show.
  let lockTimer = null;
  function resetLock() {
    clearTimeout(lockTimer);
    lockTimer = null;
    const l = $('lock');
    l.classList.remove('confirm');
    l.textContent = 'Lock';
    l.setAttribute('aria-label', 'Lock the tablet');
  }
  $('lock').addEventListener('click', async () => {
    const l = $('lock');
    if (!l.classList.contains('confirm')) {
      l.classList.add('confirm');
      l.textContent = 'Tap again to lock';
      l.setAttribute('aria-label', 'Tap again to lock the tablet');
      lockTimer = setTimeout(resetLock, 4000);
      return;
    }
    resetLock();
    await Studiod.logout();
    showLogin('');
  });

  (async () => {
    const s = await Studiod.session();
    if (s.status === 200) start();
    else if (s.status === 0) showLogin('Can’t reach the studio computer. Check the Wi-Fi.');
    else showLogin('');
  })();
})();
