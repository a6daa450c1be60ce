//! The chain task: owns the pty, frames incoming bytes, routes packets to
//! cameras, fires timers and paces output.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_serial::{SerialPort, SerialStream};

use super::camera::{Camera, Outbox};
use super::proto::{Frame, Framer};
use super::ChainOptions;

/// State shared between the task and the [`super::VirtualChain`] handle.
pub struct Shared {
    pub inner: Mutex<Inner>,
    pub changed: watch::Sender<u64>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not make the observers unusable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

pub struct Inner {
    pub opts: ChainOptions,
    pub cams: Vec<Camera>,
    pub out: Outbox,
    /// Every packet seen on the line, in order.
    pub line_log: Vec<Vec<u8>>,
    pub device: Option<PathBuf>,
}

pub enum Control {
    Unplug(oneshot::Sender<()>),
    Replug(oneshot::Sender<io::Result<()>>),
    Inject(Vec<u8>),
    NetworkChange,
    Shutdown(oneshot::Sender<()>),
}

/// One incarnation of the pty ("cable plugged in").
struct Port {
    reader: ReadHalf<SerialStream>,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    writer: JoinHandle<()>,
    /// Held open so the master never sees EIO when the daemon closes the
    /// slave and reopens it.
    _slave: SerialStream,
    readable: bool,
}

impl Port {
    fn open(link: &Path, baud: Option<u32>) -> io::Result<(Port, PathBuf)> {
        let (master, slave) = SerialStream::pair().map_err(io::Error::from)?;
        let name = slave.name().ok_or_else(|| io::Error::other("pty slave has no name"))?;
        let device = PathBuf::from(name);
        replace_symlink(&device, link)?;
        let (reader, writer) = tokio::io::split(master);
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(writer, rx, baud));
        Ok((Port { reader, tx, writer, _slave: slave, readable: true }, device))
    }

    async fn close(self) {
        self.writer.abort();
        // Wait until the write half is really dropped, so the master fd is
        // closed when `unplug()` returns.
        let _ = self.writer.await;
    }
}

/// Points `link` at `target`, replacing an existing symlink atomically but
/// refusing to clobber a regular file.
pub fn replace_symlink(target: &Path, link: &Path) -> io::Result<()> {
    if let Ok(md) = std::fs::symlink_metadata(link) {
        if !md.file_type().is_symlink() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists and is not a symlink", link.display())));
        }
    }
    let mut tmp = link.as_os_str().to_owned();
    tmp.push(format!(".sim-tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// Removes `link` if it is a symlink.
pub fn remove_symlink(link: &Path) {
    if std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = std::fs::remove_file(link);
    }
}

/// Wire time of `bytes` bytes at `baud` (8N1: 10 bits per byte).
pub fn wire_time(bytes: usize, baud: u32) -> Duration {
    Duration::from_secs_f64(bytes as f64 * 10.0 / f64::from(baud.max(1)))
}

async fn write_loop(mut w: WriteHalf<SerialStream>, mut rx: mpsc::UnboundedReceiver<Vec<u8>>, baud: Option<u32>) {
    let mut line_free = Instant::now();
    while let Some(chunk) = rx.recv().await {
        if let Some(b) = baud {
            // The chunk reaches the far end only once its last bit is out.
            line_free = line_free.max(Instant::now()) + wire_time(chunk.len(), b);
            sleep_until(line_free).await;
        }
        if w.write_all(&chunk).await.is_err() || w.flush().await.is_err() {
            break;
        }
    }
}

pub struct Engine {
    shared: Arc<Shared>,
    link: PathBuf,
    ctl: mpsc::UnboundedReceiver<Control>,
    port: Option<Port>,
    /// Received bytes with the instant they become visible to the cameras.
    rx: VecDeque<(Instant, u8)>,
    rx_line_free: Instant,
    framer: Framer,
}

impl Engine {
    /// Opens the first pty and returns the engine ready to `run`.
    pub fn start(shared: Arc<Shared>, link: PathBuf, ctl: mpsc::UnboundedReceiver<Control>) -> io::Result<Engine> {
        let baud = shared.lock().opts.baud;
        let (port, device) = Port::open(&link, baud)?;
        shared.lock().device = Some(device);
        Ok(Engine { shared, link, ctl, port: Some(port), rx: VecDeque::new(), rx_line_free: Instant::now(), framer: Framer::default() })
    }

    pub async fn run(mut self) {
        let mut buf = [0u8; 256];
        loop {
            let deadline = self.next_deadline();
            let readable = self.port.as_ref().is_some_and(|p| p.readable);
            tokio::select! {
                ctl = self.ctl.recv() => match ctl {
                    None => break,
                    Some(Control::Shutdown(done)) => {
                        self.unplug().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(c) => self.control(c).await,
                },
                r = read_some(&mut self.port, &mut buf), if readable => match r {
                    Ok(n) if n > 0 => self.received(&buf[..n]),
                    // We hold the slave open, so this only happens if the
                    // pty itself broke; stop reading instead of spinning.
                    _ => {
                        if let Some(p) = self.port.as_mut() {
                            p.readable = false;
                        }
                    }
                },
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
            }
            self.step();
        }
        self.unplug().await;
    }

    fn received(&mut self, bytes: &[u8]) {
        let now = Instant::now();
        let baud = self.shared.lock().opts.baud;
        for &b in bytes {
            let at = match baud {
                Some(baud) => {
                    self.rx_line_free = self.rx_line_free.max(now) + wire_time(1, baud);
                    self.rx_line_free
                }
                None => now,
            };
            self.rx.push_back((at, b));
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let inner = self.shared.lock();
        let cams = inner.cams.iter().filter_map(|c| c.next_deadline());
        cams.chain(self.rx.front().map(|(t, _)| *t)).min()
    }

    /// Processes everything due now and hands replies to the writer.
    fn step(&mut self) {
        let now = Instant::now();
        let mut inner = self.shared.lock();
        let inner = &mut *inner;
        while let Some(&(at, b)) = self.rx.front() {
            if at > now {
                break;
            }
            self.rx.pop_front();
            match self.framer.push(b) {
                Some(Frame::Packet(p)) => route(inner, now, p),
                Some(Frame::TooLong(h)) => {
                    if let Some(c) = addressed(&mut inner.cams, h) {
                        c.length_error(&mut inner.out);
                    }
                }
                None => {}
            }
        }
        for c in &mut inner.cams {
            c.poll(now, &mut inner.out);
        }
        self.flush(inner);
        self.shared.bump();
    }

    fn flush(&self, inner: &mut Inner) {
        let packets = std::mem::take(&mut inner.out.packets);
        if let Some(p) = &self.port {
            for pk in packets {
                let _ = p.tx.send(pk);
            }
        }
    }

    async fn control(&mut self, c: Control) {
        match c {
            Control::Unplug(done) => {
                self.unplug().await;
                let _ = done.send(());
            }
            Control::Replug(done) => {
                self.unplug().await;
                let r = self.replug();
                let _ = done.send(r);
            }
            Control::Inject(bytes) => {
                if let Some(p) = &self.port {
                    let _ = p.tx.send(bytes);
                }
            }
            Control::NetworkChange => {
                let mut inner = self.shared.lock();
                let inner = &mut *inner;
                for c in &mut inner.cams {
                    c.network_change(&mut inner.out);
                }
            }
            Control::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    async fn unplug(&mut self) {
        if let Some(p) = self.port.take() {
            p.close().await;
        }
        remove_symlink(&self.link);
        self.rx.clear();
        self.framer = Framer::default();
        self.shared.lock().device = None;
    }

    fn replug(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let baud = self.shared.lock().opts.baud;
        let (port, device) = Port::open(&self.link, baud)?;
        self.port = Some(port);
        let mut inner = self.shared.lock();
        inner.device = Some(device);
        for c in &mut inner.cams {
            c.reset_link(now);
        }
        Ok(())
    }
}

async fn read_some(port: &mut Option<Port>, buf: &mut [u8]) -> io::Result<usize> {
    match port {
        Some(p) => p.reader.read(buf).await,
        None => std::future::pending().await,
    }
}

fn addressed(cams: &mut [Camera], header: u8) -> Option<&mut Camera> {
    let a = header & 0x0F;
    if header & 0xF0 != 0x80 || !(1..=7).contains(&a) {
        return None;
    }
    cams.iter_mut().find(|c| c.address == Some(a))
}

/// Routes one packet from the controller over the bus.
fn route(inner: &mut Inner, now: Instant, p: Vec<u8>) {
    inner.line_log.push(p.clone());
    let h = p[0];
    if h == 0x88 {
        return broadcast(inner, now, &p);
    }
    let opts = inner.opts.clone();
    if let Some(c) = addressed(&mut inner.cams, h) {
        c.handle(now, &p, false, &opts, &mut inner.out);
    }
    // Unknown address (or a header not from the controller): nobody answers.
}

fn broadcast(inner: &mut Inner, now: Instant, p: &[u8]) {
    let n = inner.cams.len() as u8;
    match &p[1..] {
        // AddressSet: every camera relays the packet (even faulty ones), so
        // the chain always answers.
        [0x30, first, 0xFF] if (1..=7).contains(first) => {
            for (i, c) in inner.cams.iter_mut().enumerate() {
                let a = first + i as u8;
                c.address = (a <= 7).then_some(a);
                c.log.push(p.to_vec());
            }
            inner.out.packets.push(vec![0x88, 0x30, first + n, 0xFF]);
        }
        [0x01, 0x00, 0x01, 0xFF] => {
            for c in &mut inner.cams {
                c.if_clear(now);
                c.log.push(p.to_vec());
            }
            inner.out.packets.push(p.to_vec());
        }
        _ => {
            // Other broadcasts execute on every addressed camera, silently.
            let opts = inner.opts.clone();
            for c in inner.cams.iter_mut().filter(|c| c.address.is_some()) {
                c.handle(now, p, true, &opts, &mut inner.out);
            }
        }
    }
}
