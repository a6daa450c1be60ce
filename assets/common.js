// Shared by the creator and technician pages: API calls with the CSRF
// header, the live-update stream, plain-language device names and errors.
'use strict';

const Studiod = (() => {
  let csrf = null;

  async function api(method, path, body) {
    const headers = { 'X-Studiod-CSRF': csrf || '1' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
    } catch (e) {
      return { status: 0, data: null };
    }
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON: keep null */ }
    return { status: res.status, data };
  }

  async function session() {
    const r = await api('GET', '/api/session');
    if (r.status === 200) csrf = r.data.csrf;
    return r;
  }

  async function login(body) {
    const r = await api('POST', '/api/login', body);
    if (r.status === 200) csrf = r.data.csrf;
    return r;
  }

  async function logout() {
    await api('POST', '/api/logout');
    csrf = null;
  }

  const command = (cmd) => api('POST', '/api/commands', cmd);

  // Live updates. EventSource reconnects by itself; `onStatus` tells the
  // page whether it is connected so it can say so. The server sends `ping`
  // every 2 s: a stream silent for SILENT_MS (a network gone without a
  // word, which TCP notices only after minutes) counts as lost, and is
  // opened again.
  const SILENT_MS = 3500;
  function live({ onModel, onState, onEvent, onStatus, onAuthLost }) {
    let es = null;
    let closed = false;
    let heard = Date.now();
    let connected = false;
    const status = (up) => { connected = up; if (onStatus) onStatus(up); };
    const alive = () => { heard = Date.now(); if (!connected && es && es.readyState === EventSource.OPEN) status(true); };
    const watchdog = setInterval(() => {
      if (closed || Date.now() - heard < SILENT_MS) return;
      if (connected) status(false);
      es.close();
      open();
    }, 500);
    function open() {
      heard = Date.now();
      if (es) es.close();
      const mine = new EventSource('/api/events');
      es = mine;
      es.addEventListener('open', () => { heard = Date.now(); status(true); });
      es.addEventListener('ping', alive);
      es.addEventListener('model', (e) => { alive(); if (onModel) onModel(JSON.parse(e.data)); });
      es.addEventListener('state', (e) => { alive(); if (onState) onState(JSON.parse(e.data)); });
      es.addEventListener('event', (e) => { alive(); if (onEvent) onEvent(JSON.parse(e.data)); });
      es.addEventListener('error', async () => {
        if (es !== mine) return;
        status(false);
        if (closed) return;
        // A 401 closes the stream for good: find out whether we were logged out.
        if (mine.readyState === EventSource.CLOSED) {
          const s = await session();
          if (closed || es !== mine) return;
          if (s.status === 401) { onAuthLost && onAuthLost(); return; }
          setTimeout(() => { if (!closed && es === mine) open(); }, 2000);
        }
      });
    }
    open();
    return { close() { closed = true; clearInterval(watchdog); if (es) es.close(); } };
  }

  const kinds = { camera: 'camera', fixture: 'light', artnet: 'lighting network', sacn: 'lighting network', osc: 'show control' };
  function cap(s) { return s.charAt(0).toUpperCase() + s.slice(1); }
  // "side" + camera → "Side camera"; "key" + fixture → "Key light".
  function deviceName(name, kind) {
    const pretty = cap(String(name).replace(/[-_]+/g, ' '));
    const k = kinds[kind];
    return k ? `${pretty} ${k}` : pretty;
  }

  function listNames(names) {
    if (names.length <= 1) return names.join('');
    return names.slice(0, -1).join(', ') + ' and ' + names[names.length - 1];
  }

  // A scene replaced by a newer one before it finished: its reply says
  // `superseded`, or its only failures are camera moves the newer scene
  // cancelled. Not a failure.
  function superseded(reply) {
    if (!reply || reply.ok) return false;
    const code = reply.error && reply.error.code;
    if (code === 'superseded') return true;
    const bad = Object.values(reply.devices || {}).filter((d) => !d.ok);
    return code === 'device_failed' && bad.length > 0 && bad.every((d) => d.error === 'cancelled');
  }

  // The devices of a reply that did not follow (not the cancelled ones), plain names.
  function failedNames(devices, kindsByName) {
    return Object.entries(devices || {})
      .filter(([, d]) => (typeof d === 'string') || (!d.ok && d.error !== 'cancelled'))
      .map(([n]) => deviceName(n, kindsByName[n]));
  }

  // Plain language for the creator: never codes, never internals. Whether
  // the technician was told is for the caller to add, once it is true.
  function friendly(status, reply, kindsByName) {
    if (status === 0) return 'Can’t reach the studio computer. Check the Wi-Fi and try again.';
    if (status === 401) return 'Please enter your PIN again.';
    if (status === 403) return 'This button is for the technician.';
    if (status === 429) return 'Too many tries. Please wait a minute.';
    const code = reply && reply.error && reply.error.code;
    if (code === 'device_failed') {
      return `${listNames(failedNames(reply.devices, kindsByName))} didn’t respond.`;
    }
    if (code === 'busy') return 'The studio is busy. Tap again in a moment.';
    if (code === 'unknown_scene') return 'This scene is gone. The list has been refreshed.';
    return 'That didn’t work. Please tell the technician.';
  }

  return { api, session, login, logout, command, live, deviceName, friendly, listNames, superseded, failedNames, get csrf() { return csrf; } };
})();
