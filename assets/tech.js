// The technician's page: jog/zoom (press and hold), presets, live light
// levels, device health, scenes and "save current look as scene".
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'studiod.techToken';
  const REPEAT_MS = 250;      // keep-alive while a move is held (server stops after ~1 s without)
  const LIGHT_THROTTLE_MS = 100;
  let model = null;
  let state = null;
  let camera = null;
  let stream = null;
  // The current look in scene-file units: the current scene's look (from the
  // model) plus what this page changed since. The basis for "save look as scene".
  const look = { scene: undefined, lights: {}, cameras: {} };

  function adoptScene(scene) {
    look.scene = scene;
    const l = (scene && model && model.looks && model.looks[scene]) || { lights: {}, cameras: {} };
    look.lights = JSON.parse(JSON.stringify(l.lights));
    look.cameras = JSON.parse(JSON.stringify(l.cameras));
    if (model) { renderLights(); renderPresets(); }
    if (!draftEdited) $('save-toml').value = draftToml();
  }

  // ---- feedback ----------------------------------------------------------------
  let toastTimer = null;
  function toast(text, ok) {
    const t = $('toast');
    t.textContent = text;
    t.className = 'toast ' + (ok ? 'ok' : 'bad');
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, ok ? 2500 : 6000);
  }

  function failure(r) {
    if (r.status === 0) return 'Cannot reach studiod.';
    if (Studiod.superseded(r.data)) return 'Replaced by a newer scene.';
    const e = r.data && r.data.error;
    let msg = e ? e.message : `HTTP ${r.status}`;
    const bad = Object.entries((r.data && r.data.devices) || {}).filter(([, d]) => !d.ok);
    if (bad.length) msg += ': ' + bad.map(([n, d]) => `${n}: ${d.error || 'failed'}`).join('; ');
    return msg;
  }

  // Commands: re-sign-in once with the stored token when the session ended.
  async function send(cmd, quiet) {
    let r = await Studiod.command(cmd);
    if (r.status === 401 && await relogin()) r = await Studiod.command(cmd);
    if (r.status === 401) { showLogin('Please sign in again.'); return r; }
    if (!quiet || (!(r.data && r.data.ok) && cmd.action !== 'apply_scene')) {
      if (r.data && r.data.ok) toast(`${cmd.action.replace(/_/g, ' ')}: done`, true);
      else toast(failure(r), false);
    }
    return r;
  }

  async function relogin() {
    const t = sessionStorage.getItem(TOKEN_KEY);
    if (!t) return false;
    const r = await Studiod.login({ token: t });
    return r.status === 200;
  }

  // ---- sign-in -----------------------------------------------------------------
  function showLogin(msg) {
    if (stream) { stream.close(); stream = null; }
    stopAllMoves();
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = msg || '';
    $('token').focus();
  }

  $('token-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = $('token').value.trim();
    if (!t) return;
    const r = await Studiod.login({ token: t });
    if (r.status === 200 && r.data.role === 'technician') {
      sessionStorage.setItem(TOKEN_KEY, t);
      $('token').value = '';
      start();
    } else {
      $('login-error').textContent = (r.data && r.data.error && r.data.error.message) || 'Sign-in failed.';
    }
  });

  $('logout').addEventListener('click', async () => {
    sessionStorage.removeItem(TOKEN_KEY);
    await Studiod.logout();
    showLogin('Signed out.');
  });

  // ---- cameras -------------------------------------------------------------------
  function cameraModel() {
    return model && model.cameras.find((c) => c.name === camera);
  }

  function renderCameras() {
    const tabs = $('cameras');
    tabs.replaceChildren();
    if (!model.cameras.some((c) => c.name === camera)) camera = model.cameras.length ? model.cameras[0].name : null;
    for (const c of model.cameras) {
      const b = document.createElement('button');
      b.textContent = c.name;
      b.dataset.camera = c.name;
      b.className = c.name === camera ? 'on' : '';
      b.addEventListener('click', () => { stopAllMoves(); camera = c.name; renderCameras(); });
      tabs.append(b);
    }
    markOffline();
    renderPresets();
  }

  let storeMode = false;
  $('store-mode').addEventListener('click', () => {
    storeMode = !storeMode;
    $('store-mode').classList.toggle('on', storeMode);
    $('store-mode').setAttribute('aria-pressed', String(storeMode));
    $('store-mode').textContent = storeMode ? 'Store mode: ON' : 'Store mode: off';
    $('presets').classList.toggle('store', storeMode);
  });

  function renderPresets() {
    const box = $('presets');
    box.replaceChildren();
    const c = cameraModel();
    if (!c) return;
    for (let n = 1; n <= c.preset_count; n++) {
      const b = document.createElement('button');
      b.textContent = n;
      b.dataset.preset = n;
      if ((look.cameras[camera] || {}).preset === n) b.classList.add('last');
      b.addEventListener('click', async () => {
        const action = storeMode ? 'store_preset' : 'recall_preset';
        if (storeMode && !confirm(`Store the ${camera} camera’s current position as preset ${n}?`)) return;
        const r = await send({ action, camera, preset: n });
        if (r.data && r.data.ok) { look.cameras[camera] = { preset: n }; renderPresets(); }
      });
      box.append(b);
    }
  }

  // Press-and-hold: send the move, repeat it while held (the server's
  // dead-man stops the camera if the repeats stop), send the stop on release.
  const moves = new Map(); // element → {timer, stop}
  function speed() { return parseFloat($('speed').value); }

  function hold(el, makeMove, makeStop) {
    const begin = (e) => {
      if (!camera || moves.has(el)) return;
      e.preventDefault();
      try { el.setPointerCapture(e.pointerId); } catch (_) { /* synthetic events */ }
      const cam = camera;
      const move = makeMove(cam);
      el.classList.add('held');
      // Its position is no longer a preset or a known place.
      look.cameras[cam] = { moved: true };
      renderPresets();
      // One request at a time per hold: requests may travel on different
      // connections, and a repeat overtaking the stop would restart the camera.
      const m = { timer: null, stop: makeStop(cam), busy: false, chain: Promise.resolve() };
      const push = (cmd) => {
        m.busy = true;
        m.chain = m.chain.then(() => send(cmd, true)).finally(() => { m.busy = false; });
      };
      push(move);
      m.timer = setInterval(() => { if (!m.busy) push(move); }, REPEAT_MS);
      moves.set(el, m);
    };
    const end = () => {
      const m = moves.get(el);
      if (!m) return;
      moves.delete(el);
      clearInterval(m.timer);
      el.classList.remove('held');
      m.chain = m.chain.then(() => send(m.stop, true));
    };
    el.addEventListener('pointerdown', begin);
    for (const ev of ['pointerup', 'pointercancel', 'pointerleave', 'lostpointercapture']) el.addEventListener(ev, end);
    el.addEventListener('contextmenu', (e) => e.preventDefault());
    // Keyboard: Space or Enter held on the focused button moves, release stops.
    el.addEventListener('keydown', (e) => { if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) begin(e); else if (e.key === ' ' || e.key === 'Enter') e.preventDefault(); });
    el.addEventListener('keyup', (e) => { if (e.key === ' ' || e.key === 'Enter') end(); });
    el.addEventListener('blur', end);
    el._begin = begin;
    el._end = end;
  }

  // Arrow keys (pan/tilt) and + / − (zoom) anywhere in the camera panel move
  // the selected camera while held, like pressing the matching button.
  const KEYS = { ArrowUp: '#jog [aria-label="Up"]', ArrowDown: '#jog [aria-label="Down"]', ArrowLeft: '#jog [aria-label="Left"]', ArrowRight: '#jog [aria-label="Right"]', '+': '#zoom-in', '=': '#zoom-in', '-': '#zoom-out', '_': '#zoom-out' };
  const cameraPanel = $('jog').closest('.panel');
  cameraPanel.addEventListener('keydown', (e) => {
    const el = KEYS[e.key] && document.querySelector(KEYS[e.key]);
    if (!el || e.target.tagName === 'INPUT') return;
    e.preventDefault();
    if (!e.repeat) el._begin(e);
  });
  cameraPanel.addEventListener('keyup', (e) => {
    const el = KEYS[e.key] && document.querySelector(KEYS[e.key]);
    if (el) el._end();
  });

  function stopAllMoves() {
    for (const el of Array.from(moves.keys())) el._end();
  }
  // Leaving the page or the app going to the background must never leave a camera moving.
  document.addEventListener('visibilitychange', () => { if (document.hidden) stopAllMoves(); });
  window.addEventListener('blur', stopAllMoves);
  window.addEventListener('pagehide', stopAllMoves);

  for (const b of document.querySelectorAll('#jog button[data-pan]')) {
    const pan = parseFloat(b.dataset.pan);
    const tilt = parseFloat(b.dataset.tilt);
    hold(b, (cam) => ({ action: 'jog', camera: cam, pan: round(pan * speed()), tilt: round(tilt * speed()) }), (cam) => ({ action: 'jog_stop', camera: cam }));
  }
  document.querySelector('#jog [data-stop]').addEventListener('click', () => {
    stopAllMoves();
    if (camera) send({ action: 'jog_stop', camera }, true);
  });
  for (const b of document.querySelectorAll('.zoom button')) {
    const dir = parseFloat(b.dataset.zoom);
    hold(b, (cam) => ({ action: 'zoom', camera: cam, speed: round(dir * speed()) }), (cam) => ({ action: 'zoom', camera: cam, speed: 0 }));
  }
  $('speed').addEventListener('input', () => { $('speed-out').textContent = Math.round(speed() * 100) + '%'; });

  function round(x) { return Math.round(x * 100) / 100; }

  // ---- lights ----------------------------------------------------------------------
  // Leading + trailing throttle per fixture/attribute: live while dragging,
  // and the final value always goes out.
  const throttles = new Map();
  function setLight(fixture, key, value) {
    (look.lights[fixture] = look.lights[fixture] || {})[key] = value;
    const id = fixture + '/' + key;
    let t = throttles.get(id);
    if (!t) { t = { last: 0, timer: null, value }; throttles.set(id, t); }
    t.value = value;
    const fire = () => { t.last = Date.now(); t.timer = null; send({ action: 'set_light', fixture, values: { [key]: t.value } }, true); };
    const wait = LIGHT_THROTTLE_MS - (Date.now() - t.last);
    if (wait <= 0 && !t.timer) fire();
    else if (!t.timer) t.timer = setTimeout(fire, Math.max(wait, 0));
  }

  function renderLights() {
    const box = $('lights');
    box.replaceChildren();
    for (const f of model.fixtures) {
      const card = document.createElement('div');
      card.className = 'fixture';
      card.dataset.fixture = f.name;
      const h = document.createElement('h3');
      h.textContent = f.name;
      const small = document.createElement('small');
      small.textContent = f.profile;
      h.append(small);
      card.append(h);
      for (const c of f.controls) card.append(control(f.name, c));
      box.append(card);
    }
    markOffline();
  }

  function control(fixture, c) {
    const row = document.createElement('label');
    row.className = 'ctl';
    const name = document.createElement('span');
    name.textContent = c.key === 'cct' ? 'Colour temp' : c.key === 'color' ? 'Colour' : c.key;
    const input = document.createElement('input');
    const out = document.createElement('output');
    const known = (look.lights[fixture] || {})[c.key];
    if (c.kind === 'color') {
      input.type = 'color';
      input.value = known || '#ffffff';
      out.textContent = input.value;
      input.addEventListener('input', () => { out.textContent = input.value; setLight(fixture, 'color', input.value); });
    } else if (c.kind === 'kelvin') {
      input.type = 'range';
      input.min = c.min; input.max = c.max; input.step = 50;
      input.value = known || Math.round((c.min + c.max) / 200) * 100;
      out.textContent = input.value + ' K';
      input.addEventListener('input', () => { out.textContent = input.value + ' K'; setLight(fixture, 'cct', parseInt(input.value, 10)); });
    } else {
      input.type = 'range';
      input.min = 0; input.max = 1; input.step = 0.01;
      input.value = known !== undefined ? known : 0;
      out.textContent = Math.round(input.value * 100) + '%';
      input.addEventListener('input', () => { out.textContent = Math.round(input.value * 100) + '%'; setLight(fixture, c.key, parseFloat(input.value)); });
    }
    input.setAttribute('aria-label', `${fixture} ${c.key}`);
    input.dataset.key = c.key;
    row.append(name, out, input);
    return row;
  }

  // ---- health, scenes ---------------------------------------------------------------
  function markOffline() {
    if (!state) return;
    const off = (n) => state.devices[n] && state.devices[n].online === false;
    for (const b of document.querySelectorAll('#cameras button')) b.classList.toggle('off', off(b.dataset.camera));
    for (const c of document.querySelectorAll('.fixture')) c.classList.toggle('off', off(c.dataset.fixture));
  }

  function renderHealth() {
    const ul = $('health');
    ul.replaceChildren();
    // Problems first, then cameras, lights and the rest, so nothing offline hides below the fold.
    const order = { camera: 0, fixture: 1, artnet: 2, sacn: 2, osc: 3 };
    const rank = ([n, d]) => [d.online === false ? 0 : 1, order[d.kind] ?? 9, n];
    const entries = Object.entries(state.devices || {}).sort((a, b) => {
      const [x, y] = [rank(a), rank(b)];
      return x[0] - y[0] || x[1] - y[1] || x[2].localeCompare(y[2]);
    });
    for (const [name, d] of entries) {
      const li = document.createElement('li');
      li.className = d.online === false ? 'off' : d.online === true ? '' : 'unknown';
      const dot = document.createElement('span');
      dot.className = 'dot';
      const n = document.createElement('span');
      n.textContent = name + ' ';
      const k = document.createElement('span');
      k.className = 'kind';
      k.textContent = d.kind;
      n.append(k);
      const when = document.createElement('span');
      when.className = 'kind';
      when.textContent = d.online === false ? 'offline since ' + new Date(d.since).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.online ? 'online' : d.status === 'unverified' ? 'unverified' : 'unknown';
      li.append(dot, n, when);
      if (d.node) {
        // What the Art-Net node says about itself (ArtPollReply).
        const node = document.createElement('span');
        node.className = 'kind node';
        node.textContent = `${d.node.short_name} — ${d.node.long_name}, firmware ${d.node.firmware}`;
        li.append(node);
      }
      if (d.identity) {
        const id = document.createElement('span');
        id.className = 'kind identity';
        id.textContent = d.identity;
        li.append(id);
      }
      if (d.error) {
        const e = document.createElement('span');
        e.className = 'err';
        e.textContent = d.error;
        li.append(e);
      }
      ul.append(li);
    }
  }

  function renderScenes() {
    const box = $('scene-list');
    box.replaceChildren();
    for (const s of model.scenes) {
      const item = document.createElement('div');
      item.className = 'scene-item';
      const b = document.createElement('button');
      b.textContent = s.label;
      b.title = s.name;
      b.dataset.scene = s.name;
      b.className = state && state.scene === s.name ? 'current' : '';
      if (sceneAlert && sceneAlert.scene === s.name) b.classList.add('failed');
      b.addEventListener('click', () => applyScene(b, s.name));
      const del = document.createElement('button');
      del.className = 'delete';
      del.type = 'button';
      del.dataset.delete = s.name;
      del.textContent = '✕';
      del.setAttribute('aria-label', `Delete scene ${s.label}`);
      del.addEventListener('click', () => deleteScene(s));
      item.append(b, del);
      box.append(item);
    }
  }

  // Pending while the booth applies it; the result shows on the button and,
  // for a failure, in the alert badge (no toast over the panel).
  async function applyScene(b, name) {
    if (b.classList.contains('pending')) return;
    b.classList.add('pending');
    b.setAttribute('aria-busy', 'true');
    const r = await send({ action: 'apply_scene', scene: name }, true);
    b.classList.remove('pending');
    b.setAttribute('aria-busy', 'false');
    const code = r.data && r.data.error && r.data.error.code;
    if (r.data && !r.data.ok && code !== 'device_failed' && !Studiod.superseded(r.data)) toast(failure(r), false);
  }

  // ---- schedule: the day's slot starts, each withdrawable -------------------------
  function whenText(iso) {
    const d = new Date(iso);
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString([], { weekday: 'short', day: 'numeric', month: 'short' })} ${time}`;
  }

  function renderSchedule() {
    const box = $('schedule');
    box.replaceChildren();
    const list = (state && state.schedule) || [];
    if (!list.length) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = 'Nothing scheduled.';
      box.append(li);
      return;
    }
    for (const p of list) {
      const li = document.createElement('li');
      li.dataset.id = p.id;
      const when = document.createElement('time');
      when.dateTime = p.at;
      when.textContent = whenText(p.at);
      const what = document.createElement('span');
      what.textContent = sceneLabel(p.scene);
      if (p.slot != null) {
        const slot = document.createElement('span');
        slot.className = 'slot';
        slot.textContent = ` ${typeof p.slot === 'object' ? Object.values(p.slot).join(' · ') : p.slot}`;
        what.append(slot);
      }
      const cancel = document.createElement('button');
      cancel.type = 'button';
      cancel.textContent = '✕';
      cancel.setAttribute('aria-label', `Cancel ${sceneLabel(p.scene)} at ${whenText(p.at)}`);
      cancel.addEventListener('click', async () => {
        if (!confirm(`Cancel “${sceneLabel(p.scene)}” at ${whenText(p.at)}? The booking backend is told it was cancelled.`)) return;
        await send({ action: 'cancel', target: p.id });
      });
      li.append(when, what, cancel);
      box.append(li);
    }
  }

  async function deleteScene(s) {
    if (!confirm(`Delete the scene “${s.label}” (${s.name})? Its button disappears from the tablet.`)) return;
    await send({ action: 'delete_scene', scene: s.name });
  }

  // ---- scene failures -------------------------------------------------------------
  // A scene that did not fully apply (from any page, the CLI or start-up)
  // raises a badge that stays until a scene succeeds, with a short beep.
  let sceneAlert = null; // {scene, failed: {device: reason}}

  function beep() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      const ctx = beep.ctx || (beep.ctx = new Ctx());
      const o = ctx.createOscillator();
      const g = ctx.createGain();
      o.frequency.value = 880;
      g.gain.setValueAtTime(0.2, ctx.currentTime);
      g.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.6);
      o.connect(g).connect(ctx.destination);
      o.start();
      o.stop(ctx.currentTime + 0.6);
    } catch (_) { /* no sound: the badge is enough */ }
  }

  function onEvent(e) {
    if (e.event !== 'scene_applied') return;
    if (e.ok) sceneAlert = null;
    else if (!e.superseded) { sceneAlert = { scene: e.scene, failed: e.failed || {} }; beep(); }
    renderAlert();
  }

  function sceneLabel(name) {
    const sc = model && model.scenes.find((x) => x.name === name);
    return sc ? sc.label : name;
  }

  function renderAlert() {
    const box = $('alert');
    const a = sceneAlert;
    box.hidden = !a;
    for (const b of document.querySelectorAll('#scene-list button')) b.classList.toggle('failed', !!a && b.dataset.scene === a.scene);
    const onAir = a && state && state.scene === a.scene;
    const label = state ? (state.scene_label || state.scene) : null;
    $('current').textContent = label ? (onAir ? `${label} (not complete)` : label) : '—';
    if (!a) return;
    const devs = Object.entries(a.failed);
    $('alert-text').textContent = `Scene “${sceneLabel(a.scene)}” failed` +
      (devs.length ? ': ' + devs.map(([n, r]) => `${n} (${r})`).join(', ') : '');
  }
  let dismissedAt = null;
  $('alert-ok').addEventListener('click', () => {
    dismissedAt = state && state.last_failure ? state.last_failure.at : null;
    sceneAlert = null;
    renderAlert();
  });

  function renderState(s) {
    // The booth's last failure (from any origin, MQTT included) until a
    // scene succeeds; "Got it" hides that one until another failure comes.
    const lf = s.last_failure;
    const before = state && state.last_failure;
    if (lf && lf.at !== dismissedAt) {
      // Beep for a failure this page has not heard of (MQTT's come only this way).
      const fresh = !sceneAlert || sceneAlert.scene !== lf.scene;
      sceneAlert = { scene: lf.scene, failed: lf.failed || {}, at: lf.at };
      if (fresh && state) beep();
    } else if (!lf && before) sceneAlert = null;
    state = s;
    if (s.scene !== look.scene) adoptScene(s.scene);
    renderAlert();
    renderHealth();
    renderSchedule();
    markOffline();
    for (const b of document.querySelectorAll('#scene-list button')) b.classList.toggle('current', b.dataset.scene === s.scene);
  }

  function renderModel(m) {
    model = m;
    $('studio').textContent = m.studio;
    renderCameras();
    renderLights();
    renderScenes();
    if (!$('save-toml').value) $('save-toml').value = draftToml();
  }

  // ---- save current look ---------------------------------------------------------------
  const NAME = /^[a-z0-9-]{1,64}$/;
  // TOML basic string: JSON escaping is valid TOML once control characters are gone.
  function tomlString(s) { return JSON.stringify(String(s).replace(/[\u0000-\u001f\u007f]/g, ' ')); }
  function tomlNumber(key, v) { return key === 'cct' ? String(Math.round(v)) : (Number.isInteger(v) ? v.toFixed(1) : String(round(v))); }

  function draftToml() {
    const label = $('save-label').value.trim() || $('save-name').value.trim() || 'New look';
    let t = `label = ${tomlString(label)}\nfade_ms = 1000\n`;
    for (const [cam, c] of Object.entries(look.cameras)) {
      if (c.moved) { t += `\n# camera "${cam}" was moved by hand: store a preset, then recall it, to include it\n`; continue; }
      t += `\n[camera.${cam}]\n`;
      for (const k of ['preset', 'pan', 'tilt', 'zoom']) if (c[k] !== undefined) t += `${k} = ${k === 'preset' ? c[k] : tomlNumber(k, c[k])}\n`;
    }
    for (const [fx, vals] of Object.entries(look.lights)) {
      t += `\n[light.${fx}]\n`;
      for (const [k, v] of Object.entries(vals)) t += `${k} = ${k === 'color' ? tomlString(v) : tomlNumber(k, v)}\n`;
    }
    return t;
  }

  let draftEdited = false;
  $('save-toml').addEventListener('input', () => { draftEdited = true; });
  for (const id of ['save-name', 'save-label']) $(id).addEventListener('input', () => { if (!draftEdited) $('save-toml').value = draftToml(); });
  // Refresh the draft from the latest look when the technician comes to the form.
  $('save-form').addEventListener('focusin', (e) => { if (e.target.id !== 'save-toml' && !draftEdited) $('save-toml').value = draftToml(); });

  $('save-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('save-name').value.trim();
    if (!NAME.test(name)) { $('save-error').textContent = 'Name: lower-case letters, digits and “-” only (e.g. evening-look).'; return; }
    $('save-error').textContent = '';
    const existing = model && model.scenes.find((x) => x.name === name);
    if (existing && !confirm(`A scene named “${name}” (${existing.label}) exists. Replace it with this look?`)) {
      $('save-error').textContent = 'Not saved: pick another name, or confirm to replace it.';
      return;
    }
    const r = await send({ action: 'put_scene', scene: name, toml: $('save-toml').value });
    if (r.data && r.data.ok) {
      draftEdited = false;
      $('save-name').value = '';
      $('save-label').value = '';
    } else {
      $('save-error').textContent = failure(r);
    }
  });

  // ---- start -------------------------------------------------------------------------------
  function setConn(live) {
    const c = $('conn');
    c.className = 'conn' + (live ? ' live' : ' down');
    c.textContent = live ? 'Connected' : 'Connection lost — reconnecting…';
    if (!live) stopAllMoves();
  }

  function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    if (stream) stream.close();
    stream = Studiod.live({
      onModel: renderModel,
      onState: renderState,
      onEvent,
      onStatus: setConn,
      onAuthLost: async () => { if (await relogin()) start(); else showLogin('Please sign in again.'); },
    });
  }

  (async () => {
    let s = await Studiod.session();
    if (s.status === 200 && s.data.role !== 'technician') s = { status: 403 };
    if (s.status !== 200 && await relogin()) s = { status: 200 };
    if (s.status === 200) start();
    else showLogin(s.status === 0 ? 'Cannot reach studiod.' : '');
  })();
})();
