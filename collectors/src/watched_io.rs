//! A stream whose reads are watched: the one wrapper behind both recording a connection's first
//! bytes (to tell which protocol a wrong port speaks) and capping what one scrape may read (so a
//! server announcing a gigabyte reply cannot make the exporter buffer it). Writes pass through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What watches the reads of a [`Watched`] stream.
pub trait ReadWatch: Unpin {
    /// Before each read: an error fails the read without touching the stream.
    fn before_read(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The bytes one read brought: an error fails that read.
    fn after_read(&mut self, read: &[u8]) -> io::Result<()>;
}

/// `inner`, its reads shown to `watch`.
pub struct Watched<S, W> {
    inner: S,
    watch: W,
}

impl<S, W> Watched<S, W> {
    /// Wrap `inner`.
    pub fn new(inner: S, watch: W) -> Self {
        Self { inner, watch }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin, W: ReadWatch> AsyncRead for Watched<S, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.watch.before_read()?;
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = buf.filled().get(before..).unwrap_or_default();
        Poll::Ready(this.watch.after_read(read))
    }
}

impl<S: AsyncWrite + Unpin, W: Unpin> AsyncWrite for Watched<S, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
