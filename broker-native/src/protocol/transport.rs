//! The byte stream under the frames: a plain TCP socket or a TLS session over one, split into
//! a read half and a write half so the reader and the writer of a connection run as separate
//! tasks. Both sides box the halves so one code path serves plaintext and TLS alike (one
//! virtual call per socket read or write, next to the syscall it makes).

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The read half of a connection's byte stream.
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;

/// The write half of a connection's byte stream.
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The first byte of a TLS record carrying a handshake (a ClientHello opens with one). A
/// Courier frame opens with the high byte of its length, which is 0 for every frame under
/// 16 MiB and never 0x16 for a first frame (the pre-handshake limit is 64 KiB), so a server
/// tells TLS from plaintext by the first byte without reading it.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Splits a plain TCP socket (no lock between the halves).
pub fn split_tcp(stream: TcpStream) -> (ReadHalf, WriteHalf) {
    let (rd, wr) = stream.into_split();
    (Box::new(rd), Box::new(wr))
}

/// Splits any stream, such as a TLS session (its halves share a lock, as TLS state is one).
pub fn split<S>(stream: S) -> (ReadHalf, WriteHalf)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    (Box::new(rd), Box::new(wr))
}
