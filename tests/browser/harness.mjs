// Shared set-up for the browser tests: start the HTTP server over a fake
// engine (examples/http_fake.rs), follow the commands it records, and launch
// Debian's chromium through playwright-core (never a downloaded browser).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const PIN = '4711';
export const TOKEN = 'tech-token-for-browser-tests';
export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = process.env.STUDIOD_CHROMIUM || '/usr/bin/chromium';

/** Start the fake server. Resolves once it printed its URL. */
export async function startFake() {
  // STUDIOD_HTTP_FAKE may point at a built binary (faster than cargo run).
  const [cmd, args] = process.env.STUDIOD_HTTP_FAKE
    ? [process.env.STUDIOD_HTTP_FAKE, []]
    : ['cargo', ['run', '--quiet', '--example', 'http_fake', '--']];
  const child = spawn(cmd, [...args, '--listen', '127.0.0.1:0', '--pin', PIN, '--token', TOKEN], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
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

  return { base, commands, waitFor, control, stop };
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
