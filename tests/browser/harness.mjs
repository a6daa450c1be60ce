// Shared set-up for the browser tests: start the HTTP server over a fake
// engine (examples/http_fake.rs), follow the commands it records, and launch
// Debian's chromium through playwright-core (never a downloaded browser).
// Further down: the real booth (examples/booth.rs), a private Mosquitto and
// mosquitto_pub/_sub helpers for the tests against the real daemon.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const PIN = '4711';
export const TOKEN = 'tech-token-for-browser-tests';
export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = process.env.STUDIOD_CHROMIUM || '/usr/bin/chromium';

/**
 * Start the fake server. Resolves once it printed its URL. `listen` picks
 * the address (default: a free port); `stateDir` keeps sessions there, as
 * the daemon does in its state_dir.
 */
export async function startFake({ listen = '127.0.0.1:0', stateDir } = {}) {
  // STUDIOD_HTTP_FAKE may point at a built binary (faster than cargo run).
  const [cmd, args] = process.env.STUDIOD_HTTP_FAKE
    ? [process.env.STUDIOD_HTTP_FAKE, []]
    : ['cargo', ['run', '--quiet', '--example', 'http_fake', '--']];
  const extra = stateDir ? ['--state-dir', stateDir] : [];
  const child = track(spawn(cmd, [...args, '--listen', listen, '--pin', PIN, '--token', TOKEN, ...extra], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'inherit'],
  }));
  const commands = [];
  const waiters = [];
  const oks = [];
  let resolveUrl;
  let rejectUrl;
  const url = new Promise((res, rej) => { resolveUrl = res; rejectUrl = rej; });
  child.on('exit', (code) => rejectUrl(new Error(`http_fake exited early (${code})`)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith('URL ')) resolveUrl(line.slice(4).trim());
    else if (line.startsWith('COMMAND ')) {
      commands.push(JSON.parse(line.slice(8)));
      for (const w of waiters.splice(0)) w();
    } else if (line.startsWith('OK ')) {
      oks.push(line.slice(3));
      for (const w of waiters.splice(0)) w();
    }
  });
  const startup = setTimeout(() => rejectUrl(new Error('http_fake did not start within 300 s')), 300_000);
  const base = await url;
  clearTimeout(startup);

  /** Wait (bounded) for a recorded command after index `from` matching `pred`. */
  async function waitFor(what, pred, { from = 0, timeoutMs = 10_000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = commands.findIndex((c, j) => j >= from && pred(c));
      if (i >= 0) return { command: commands[i], index: i };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} command within ${timeoutMs} ms; got ${JSON.stringify(commands.slice(from))}`);
      await new Promise((res) => { const t = setTimeout(res, left); waiters.push(() => { clearTimeout(t); res(); }); });
    }
  }

  /** Send a control line on stdin and wait for its acknowledgement. */
  async function control(line, timeoutMs = 5_000) {
    const deadline = Date.now() + timeoutMs;
    const seen = oks.length;
    child.stdin.write(line + '\n');
    for (;;) {
      if (oks.slice(seen).includes(line)) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`control "${line}" not acknowledged`);
      await new Promise((res) => { const t = setTimeout(res, left); waiters.push(() => { clearTimeout(t); res(); }); });
    }
  }

  async function stop() {
    if (child.exitCode !== null) return;
    const gone = new Promise((res) => child.once('exit', res));
    child.stdin.end('quit\n');
    const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(t);
  }

  /** Freeze or resume the whole server (SIGSTOP/SIGCONT): a network gone silent. */
  const signal = (sig) => child.kill(sig);

  return { base, commands, waitFor, control, stop, signal };
}

/** Headless chromium with a fresh profile, tablet-sized. */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'studiod-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(10_000);
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// ---- the real booth (examples/booth.rs) and a private Mosquitto ----------------

/** Every child we started, killed if this test process exits without stopping them. */
const children = new Set();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Wait for a child's exit within `ms`, then SIGKILL it (bounded either way). */
async function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((res) => child.once('exit', res));
  const t = setTimeout(() => child.kill('SIGKILL'), ms);
  await gone;
  clearTimeout(t);
}

/**
 * Lines of a child's stdout with the time they arrived (performance.now(),
 * the one clock all timings in these tests use), and bounded waits on them.
 */
export class LineLog {
  constructor() {
    this.entries = []; // {t, kind, json, line}
    this.waiters = [];
    this.closed = null; // reason, once the stream ended
  }

  push(line) {
    const t = performance.now();
    const sp = line.indexOf(' ');
    const kind = sp < 0 ? line : line.slice(0, sp);
    let json = null;
    if (sp >= 0 && (line[sp + 1] === '{' || line[sp + 1] === '[')) {
      try { json = JSON.parse(line.slice(sp + 1)); } catch { /* not JSON: kept as text */ }
    }
    this.entries.push({ t, kind, json, line });
    for (const w of this.waiters.splice(0)) w();
  }

  close(reason) {
    this.closed = reason;
    for (const w of this.waiters.splice(0)) w();
  }

  get length() { return this.entries.length; }

  /** The first entry at index ≥ from with pred(entry), within timeoutMs. */
  async waitFor(what, pred, { from = 0, timeoutMs = 10_000 } = {}) {
    const deadline = performance.now() + timeoutMs;
    let i = from;
    for (;;) {
      for (; i < this.entries.length; i++) if (pred(this.entries[i])) return { entry: this.entries[i], index: i };
      const left = deadline - performance.now();
      if (this.closed) throw new Error(`no ${what}: ${this.closed}; last lines:\n${this.tail()}`);
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; last lines:\n${this.tail()}`);
      await new Promise((res) => { const t = setTimeout(res, left); this.waiters.push(() => { clearTimeout(t); res(); }); });
    }
  }

  /** Fail if an entry with pred(entry) arrives at index ≥ from within forMs (a bounded negative check). */
  async expectNone(what, pred, { from = 0, forMs }) {
    const hit = await this.waitFor(what, pred, { from, timeoutMs: forMs }).catch((e) => {
      if (this.closed) throw e;
      return null;
    });
    if (hit) throw new Error(`unexpected ${what}: ${hit.entry.line}`);
  }

  /** The last entry before index `before` with pred(entry), or undefined. */
  last(pred, before = this.entries.length) {
    for (let i = Math.min(before, this.entries.length) - 1; i >= 0; i--) if (pred(this.entries[i])) return this.entries[i];
    return undefined;
  }

  tail(n = 15) {
    return this.entries.slice(-n).map((e) => '  ' + e.line).join('\n');
  }
}

/**
 * Start the real booth (examples/booth.rs: the daemon in-process with
 * virtual cameras and Art-Net/OSC monitors). `STUDIOD_BOOTH` may point at a
 * built binary (faster than cargo run). Resolves once it printed READY.
 */
export async function startBooth({ mqttUrl } = {}) {
  const [cmd, args] = process.env.STUDIOD_BOOTH
    ? [process.env.STUDIOD_BOOTH, []]
    : ['cargo', ['run', '--quiet', '--example', 'booth', '--']];
  const extra = mqttUrl ? ['--mqtt', mqttUrl] : [];
  const child = track(spawn(cmd, [...args, '--pin', PIN, '--token', TOKEN, ...extra], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'inherit'],
  }));
  const log = new LineLog();
  createInterface({ input: child.stdout }).on('line', (line) => log.push(line));
  child.on('exit', (code, signal) => log.close(`booth exited (${code ?? signal})`));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin.end('quit\n');
    // A clean shutdown takes ≤ 1.5 s grace per stage (daemon::SHUTDOWN_GRACE).
    await waitExit(child, 10_000);
  };
  try {
    // cargo run may have to build first; a built binary starts in seconds.
    const limit = process.env.STUDIOD_BOOTH ? 30_000 : 600_000;
    const url = await log.waitFor('URL line', (e) => e.kind === 'URL', { timeoutMs: limit });
    await log.waitFor('READY line', (e) => e.kind === 'READY', { from: url.index, timeoutMs: 30_000 });
    const base = url.entry.line.slice(4).trim();
    return {
      base,
      log,
      /** Send a control line (`cameras`) on stdin. */
      control(line) { child.stdin.write(line + '\n'); },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A free TCP port on loopback (may be taken again before use: callers retry). */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

const MOSQUITTO = '/usr/sbin/mosquitto';

/**
 * A private Mosquitto on 127.0.0.1 (own temp folder, no persistence): ready
 * once it logged that it is running. Retries on another port if the picked
 * one was taken meanwhile (bounded).
 */
export async function startMosquitto() {
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'studiod-mosquitto-'));
    const port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, [
      '# private broker for the browser tests',
      // As root, mosquitto would switch to its own user; stay root like tests/support/mosquitto.rs.
      'user root',
      'per_listener_settings false',
      'allow_anonymous true',
      'persistence false',
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error', 'log_type warning', 'log_type notice', 'log_type information',
      `listener ${port} 127.0.0.1`,
      '',
    ].join('\n'));
    const child = track(spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] }));
    const log = new LineLog();
    createInterface({ input: child.stderr }).on('line', (line) => log.push(line));
    child.on('exit', (code, signal) => log.close(`mosquitto exited (${code ?? signal})`));
    child.on('error', (e) => log.close(`cannot start ${MOSQUITTO}: ${e.message} (run scripts/setup.sh)`));
    const cleanup = () => rmSync(dir, { recursive: true, force: true });
    try {
      // Mosquitto logs "… mosquitto version X running" once its listeners are open.
      await log.waitFor('mosquitto running', (e) => / running$/.test(e.line), { timeoutMs: 10_000 });
    } catch (e) {
      await waitExit(child, 0);
      cleanup();
      if (/Address already in use/.test(log.tail(50))) continue;
      throw e;
    }
    return {
      port,
      url: `mqtt://127.0.0.1:${port}`,
      log,
      async stop() {
        child.kill('SIGTERM');
        await waitExit(child, 5_000);
        cleanup();
      },
    };
  }
  throw new Error('could not start mosquitto on a free loopback port (5 tries)');
}

/** Run a child to completion within timeoutMs; resolves {code, stdout}. */
function runBounded(cmd, args, timeoutMs) {
  return new Promise((res, rej) => {
    const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { child.kill('SIGKILL'); rej(new Error(`${cmd} did not finish within ${timeoutMs} ms: ${stderr}`)); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(t); rej(e); });
    child.on('exit', (code) => { clearTimeout(t); res({ code, stdout, stderr }); });
  });
}

/** mosquitto_pub one message at QoS 1 (resolves once the broker acknowledged it). */
export async function mqttPublish(port, topic, payload) {
  const r = await runBounded('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-m', payload], 15_000);
  if (r.code !== 0) throw new Error(`mosquitto_pub exited ${r.code}: ${r.stderr}`);
}

/**
 * mosquitto_sub for `count` messages on `topic` (QoS 1), giving up after
 * `waitS` seconds (-W). `subscribed` resolves once the broker acknowledged
 * the subscription (its -d debug output says SUBACK), so a publish after it
 * cannot be missed; `messages` resolves to the payloads when it exits.
 */
export function mqttSubscribe(port, topic, { count = 1, waitS = 10 } = {}) {
  // stdbuf: mosquitto_sub's debug lines are block-buffered on a pipe, so SUBACK would show only at exit.
  const child = track(spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', '-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic,
    '-C', String(count), '-W', String(waitS), '-F', 'MSG %p'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const log = new LineLog();
  createInterface({ input: child.stdout }).on('line', (line) => log.push(line));
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((res) => child.on('exit', (code) => { log.close(`mosquitto_sub exited (${code})`); res(code); }));
  // -W bounds it; the extra margin only covers a wedged process.
  const kill = setTimeout(() => child.kill('SIGKILL'), (waitS + 5) * 1000);
  exited.then(() => clearTimeout(kill));
  const messages = exited.then((code) => {
    const msgs = log.entries.filter((e) => e.kind === 'MSG').map((e) => e.line.slice(4));
    if (msgs.length < count) throw new Error(`mosquitto_sub on ${topic} got ${msgs.length}/${count} messages (exit ${code}) ${stderr}`);
    return msgs;
  });
  // Whoever awaits `messages` sees its failure; a test that failed before
  // awaiting it must not get a second, unhandled one.
  messages.catch(() => {});
  const subscribed = log.waitFor('SUBACK', (e) => /received SUBACK/.test(e.line), { timeoutMs: 10_000 });
  subscribed.catch(() => {});
  return {
    subscribed,
    messages,
    stop() { child.kill('SIGKILL'); },
  };
}

// ---- expected DMX of the example booth, written out from scenes/*.toml ----------
// Computed here independently of studiod's patch code (as tests/support does):
// normalised → 16-bit by round(x·65535); 8-bit channels carry round(v16/257);
// 16-bit ones coarse = v >> 8, fine = v & 0xFF; kelvin linear over the profile's
// cct_range; #rrggbb per channel as byte/255.
const u16 = (x) => Math.round(x * 65535);
export const dmx8 = (x) => Math.round(u16(x) / 257);
export const dmx16 = (x) => [u16(x) >> 8, u16(x) & 0xff];
const godoxCct = (k) => (k - 2800) / (6500 - 2800); // godox-p600bi-hard cct_range
const rgb = (hex) => [1, 3, 5].map((i) => dmx8(parseInt(hex.slice(i, i + 2), 16) / 255));

/** Universe 0, channels 1–32, for a scene's light part (booth layout in studiod.example.toml). */
function universe({ key, keyCct, fill, fillCct, back, hair, product, backdrop }) {
  const d = [
    ...dmx16(key), ...dmx16(godoxCct(keyCct)), // key: godox cct-16bit at 1
    dmx8(fill), dmx8(godoxCct(fillCct)), // fill: godox cct-8bit at 5
    dmx8(back), 0, 0, 0, 0, 0, // back: aputure ls 600d at 7 (ch 8–12 fixed 0)
    dmx8(hair), // hair: dimmer at 13
    ...dmx16(product), // product: 16-bit dimmer at 14
    ...rgb(backdrop), // backdrop: rgb at 16
  ];
  return [...d, ...new Array(32 - d.length).fill(0)];
}

export const LOOKS = {
  'flash-sale': universe({ key: 1.0, keyCct: 5600, fill: 0.7, fillCct: 5600, back: 1.0, hair: 0.8, product: 0.9, backdrop: '#ff8800' }),
  intro: universe({ key: 0.85, keyCct: 5000, fill: 0.55, fillCct: 5000, back: 0.6, hair: 0.5, product: 0.2, backdrop: '#2040ff' }),
};

/** An ARTNET log entry whose first 32 channels are exactly `look`. */
export const isLook = (look) => (e) => e.kind === 'ARTNET' && e.json.universe === 0 && e.json.data.length === look.length && e.json.data.every((v, i) => v === look[i]);

/**
 * Where a screenshot goes: `docs/` when STUDIOD_UPDATE_SCREENSHOTS=1 (to
 * refresh the committed pictures), else the temp folder, so a test run never
 * dirties the checkout.
 */
export function shotPath(name) {
  return process.env.STUDIOD_UPDATE_SCREENSHOTS === '1' ? join(REPO, 'docs', name) : join(tmpdir(), `studiod-${name}`);
}

/**
 * Register before/after hooks that start the fake server and a browser page
 * and hand them to `ready` (shared by the creator and technician tests).
 * One hook does both: node's root-level hooks do not wait for each other.
 */
export function fakeSession(hooks, ready) {
  const session = {};
  hooks.before(async () => {
    session.fake = await startFake();
    session.browser = await launch();
    session.page = await session.browser.context.newPage();
    ready(session);
  });
  hooks.after(async () => {
    await session.browser?.close();
    await session.fake?.stop();
  });
  return session;
}

/** The creator signed in on `page` (PIN) and the technician on a page of a
 * second browser (token), as two people at one booth; resolves once the
 * tablet shows its scenes and /tech shows `techReady`. */
export async function signInBoth(page, base, techReady) {
  await page.goto(base + '/');
  for (const d of PIN) await page.click(`#keypad button[data-k="${d}"]`);
  await page.click('#pin-enter');
  await page.waitForSelector('#app:not([hidden]) .scene[data-scene="house"]');
  const techBrowser = await launch();
  const tech = await techBrowser.context.newPage();
  await tech.goto(base + '/tech');
  await tech.fill('#token', TOKEN);
  await tech.click('#token-form button');
  await tech.waitForSelector(techReady);
  return { techBrowser, tech };
}
