//! A TCP listener whose connections can be cut from a handler, so a `Drop`
//! fault closes the socket without a single byte of response. A TLS
//! connection is cut the same way: no response and no `close_notify`, just
//! a closed socket, as a connection to Graph lost mid-request looks.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

use super::tls::TlsIncoming;

/// Plain TCP, or TLS connections whose handshake is done.
pub(crate) enum KillableListener {
    Plain(TcpListener),
    Tls {
        incoming: TlsIncoming,
        local_addr: SocketAddr,
    },
}

/// What a connection carries bytes over: a TCP stream or a TLS one.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

pub(crate) struct KillableStream {
    inner: Box<dyn Transport>,
    kill: Arc<AtomicBool>,
}

impl KillableStream {
    fn new(inner: Box<dyn Transport>) -> Self {
        Self {
            inner,
            kill: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Per-connection handle given to handlers through `ConnectInfo`.
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle {
    kill: Arc<AtomicBool>,
}

impl ConnHandle {
    /// Makes every further read or write on the connection fail, so the
    /// server drops it without answering.
    pub(super) fn kill(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let listener = match self {
            KillableListener::Plain(listener) => listener,
            KillableListener::Tls { incoming, .. } => {
                let (tls, addr) = incoming.next().await;
                return (KillableStream::new(Box::new(tls)), addr);
            }
        };
        loop {
            match TcpListener::accept(listener).await {
                Ok((s, a)) => {
                    let _ = s.set_nodelay(true);
                    return (KillableStream::new(Box::new(s)), a);
                }
                Err(e) => {
                    tracing::debug!("emulator accept error: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match self {
            KillableListener::Plain(listener) => listener.local_addr(),
            KillableListener::Tls { local_addr, .. } => Ok(*local_addr),
        }
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        ConnHandle {
            kill: stream.io().kill.clone(),
        }
    }
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "dropped by emulator fault",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
