//! The IP transports of a camera port: byte streams for the port actor
//! ([`super::port`]) exactly like a serial line, so the same link state
//! machine drives them. All protocol decisions are in the sans-IO
//! [`super::link_ip`]; this file only moves bytes and arms timers.
//!
//! - [`UdpOpener`] / [`UdpTransport`]: Sony VISCA over IP on a connected UDP
//!   socket, via a [`UdpSession`] (sequence numbers, RESET, retransmission).
//! - [`TcpOpener`] / [`TcpTransport`]: raw VISCA on one TCP connection; the
//!   port actor reconnects with its backoff when the connection drops.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, Sleep};
use tracing::debug;

use super::link_ip::{local_answer, UdpOptions, UdpSession, UdpStats};
use super::port::Opener;
use crate::visca::ip::split_packets;

async fn resolve(host: &str, port: u16) -> io::Result<std::net::SocketAddr> {
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} resolves to no address")))
}

/// Opens a [`UdpTransport`] to `host:port` (resolved at every open).
#[derive(Debug, Clone)]
pub struct UdpOpener {
    pub host: String,
    pub port: u16,
    pub options: UdpOptions,
}

impl Opener for UdpOpener {
    type Transport = UdpTransport;
    fn open(&mut self) -> impl Future<Output = io::Result<UdpTransport>> + Send {
        let (host, port, options) = (self.host.clone(), self.port, self.options);
        async move {
            let peer = resolve(&host, port).await?;
            let local: std::net::SocketAddr =
                if peer.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
            let sock = UdpSocket::bind(local).await?;
            sock.connect(peer).await?;
            Ok(UdpTransport::new(sock, options))
        }
    }
}

/// A connected UDP socket speaking VISCA over IP, seen as a byte stream of
/// VISCA packets.
#[derive(Debug)]
pub struct UdpTransport {
    sock: UdpSocket,
    session: UdpSession,
    timer: Pin<Box<Sleep>>,
    /// Reply bytes not yet read by the link.
    readable: BytesMut,
    /// A datagram the socket could not take yet.
    unsent: Option<bytes::Bytes>,
}

impl UdpTransport {
    pub fn new(sock: UdpSocket, options: UdpOptions) -> UdpTransport {
        let now = Instant::now();
        UdpTransport {
            sock,
            session: UdpSession::new(now, options),
            timer: Box::pin(tokio::time::sleep_until(now)),
            readable: BytesMut::new(),
            unsent: None,
        }
    }

    pub fn stats(&self) -> UdpStats {
        self.session.stats()
    }

    /// Sends what the session has queued; `Pending` only when the socket is full.
    fn poll_send_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let Some(d) = self.unsent.take().or_else(|| self.session.poll_datagram()) else { return Poll::Ready(Ok(())) };
            match self.sock.poll_send(cx, &d) {
                Poll::Ready(Ok(_)) => {}
                // The camera's host said "port unreachable" to an earlier
                // datagram: a lost datagram, as far as the session knows.
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => debug!("send: {e}"),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.unsent = Some(d);
                    return Poll::Pending;
                }
            }
        }
    }
}

impl AsyncRead for UdpTransport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut dgram = [0u8; 64];
        loop {
            if let Poll::Ready(Err(e)) = this.poll_send_all(cx) {
                return Poll::Ready(Err(e));
            }
            if let Some(b) = this.session.take_for_link() {
                this.readable.extend_from_slice(&b);
            }
            if !this.readable.is_empty() {
                let n = this.readable.len().min(buf.remaining());
                buf.put_slice(&this.readable[..n]);
                this.readable.advance(n);
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut dgram);
            match this.sock.poll_recv(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    this.session.receive(Instant::now(), rb.filled());
                    continue;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    debug!("recv: {e}");
                    continue;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            if let Some(at) = this.session.next_deadline() {
                if this.timer.deadline() != at {
                    this.timer.as_mut().reset(at);
                }
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.session.handle_timeout(Instant::now());
                    continue;
                }
            }
            return Poll::Pending;
        }
    }
}

impl AsyncWrite for UdpTransport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.session.write(Instant::now(), buf);
        // Datagrams the socket cannot take now go out on the next poll.
        if let Poll::Ready(Err(e)) = this.poll_send_all(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send_all(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// Opens a [`TcpTransport`] to `host:port`.
#[derive(Debug, Clone)]
pub struct TcpOpener {
    pub host: String,
    pub port: u16,
}

impl Opener for TcpOpener {
    type Transport = TcpTransport;
    fn open(&mut self) -> impl Future<Output = io::Result<TcpTransport>> + Send {
        let (host, port) = (self.host.clone(), self.port);
        async move {
            let peer = resolve(&host, port).await?;
            let stream = TcpStream::connect(peer).await?;
            stream.set_nodelay(true)?;
            Ok(TcpTransport { stream, local: BytesMut::new(), tx: BytesMut::new(), partial: Vec::new() })
        }
    }
}

/// Raw VISCA over one TCP connection, with the chain-level broadcasts
/// answered locally ([`local_answer`]).
#[derive(Debug)]
pub struct TcpTransport {
    stream: TcpStream,
    /// Local answers for the link.
    local: BytesMut,
    /// Bytes accepted from the link, not yet written.
    tx: BytesMut,
    partial: Vec<u8>,
}

impl TcpTransport {
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.tx.is_empty() {
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &self.tx))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.tx.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for TcpTransport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.local.is_empty() {
            let n = this.local.len().min(buf.remaining());
            buf.put_slice(&this.local[..n]);
            this.local.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpTransport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        for packet in split_packets(buf, &mut this.partial) {
            match local_answer(&packet) {
                Some(reply) => this.local.extend_from_slice(&reply),
                None => this.tx.extend_from_slice(&packet),
            }
        }
        if let Poll::Ready(Err(e)) = this.poll_write_out(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}
