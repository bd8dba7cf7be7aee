//! The write side of a connection: frames are gathered into a batch and the batch goes to the
//! socket in as few `writev` calls as possible — one, unless the kernel takes less than all.
//!
//! Small frames (under [`COPY_LIMIT`] bytes of payload, nearly every request and reply) are
//! copied whole into one reusable buffer, because copying a few hundred bytes costs less
//! than another entry in the `iovec`; a larger payload is not copied — its header goes into
//! the buffer and the payload itself (a reference-counted [`Bytes`]) becomes its own slice
//! of the vectored write. A batch is cut at [`BATCH_BYTES`], so one busy connection does not
//! buffer without bound (its queue of frames is bounded before this).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use tokio::io::AsyncWriteExt;

use super::frame::{Frame, FrameError, HEADER_LEN};
use super::transport::WriteHalf;

/// Payloads at least this big are written from where they are instead of being copied.
pub const COPY_LIMIT: usize = 4096;

/// A batch is written once it holds this many bytes; the writer gathers no more before.
pub const BATCH_BYTES: usize = 256 * 1024;

/// Slices handed to one `writev` (well under every system's `IOV_MAX`).
const MAX_SLICES: usize = 64;

/// The initial capacity of the copy buffer: one small frame's worth, so an idle connection
/// costs little; it grows with the batches a busy connection writes.
const INITIAL_CAPACITY: usize = 512;

/// Gathers frames and writes them in batches.
pub struct FrameWriter {
    io: WriteHalf,
    max: usize,
    /// Small frames and the headers of large ones, not yet cut into `pieces`.
    buf: BytesMut,
    /// The batch so far, in order, but for what is still in `buf`.
    pieces: VecDeque<Bytes>,
    /// Bytes gathered and not yet written.
    pending: usize,
}

impl FrameWriter {
    /// A writer of frames of at most `max` bytes after the length prefix to `io`.
    pub fn new(io: WriteHalf, max: usize) -> Self {
        FrameWriter {
            io,
            max: max.max(HEADER_LEN),
            buf: BytesMut::with_capacity(INITIAL_CAPACITY),
            pieces: VecDeque::new(),
            pending: 0,
        }
    }

    /// Raises or lowers the maximum frame size (after the handshake).
    pub fn set_max(&mut self, max: usize) {
        self.max = max.max(HEADER_LEN);
    }

    /// Bytes gathered and not yet written.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// True once the batch is big enough to be written before gathering more.
    pub fn is_full(&self) -> bool {
        self.pending >= BATCH_BYTES
    }

    /// Adds `frame` to the batch; a frame over the maximum is refused (nothing is added).
    pub fn feed(&mut self, frame: Frame) -> Result<(), FrameError> {
        let length = HEADER_LEN + frame.payload.len();
        if length > self.max || length > u32::MAX as usize {
            return Err(FrameError::BadLength {
                length: length as u64,
                max: self.max,
            });
        }
        self.buf.reserve(4 + HEADER_LEN);
        self.buf.put_u32(length as u32);
        self.buf.put_u8(frame.kind as u8);
        self.buf.put_u64(frame.id);
        if frame.payload.len() < COPY_LIMIT {
            self.buf.extend_from_slice(&frame.payload);
        } else {
            self.pieces.push_back(self.buf.split().freeze());
            self.pieces.push_back(frame.payload);
        }
        self.pending += 4 + length;
        Ok(())
    }

    /// Writes the whole batch: vectored writes until the socket took every byte.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.pieces.push_back(self.buf.split().freeze());
        }
        while !self.pieces.is_empty() {
            let written = {
                let slices: Vec<IoSlice<'_>> = self
                    .pieces
                    .iter()
                    .take(MAX_SLICES)
                    .map(|p| IoSlice::new(p))
                    .collect();
                self.io.write_vectored(&slices).await?
            };
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.pending -= written;
            let mut left = written;
            while left > 0 {
                let first = self
                    .pieces
                    .front_mut()
                    .expect("written bytes were gathered");
                if first.len() <= left {
                    left -= first.len();
                    self.pieces.pop_front();
                } else {
                    first.advance(left);
                    left = 0;
                }
            }
        }
        self.io.flush().await
    }

    /// Adds `frame` and writes the batch.
    pub async fn send(&mut self, frame: Frame) -> Result<(), FrameError> {
        self.feed(frame)?;
        self.flush().await.map_err(FrameError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{FrameCodec, Kind};
    use futures::StreamExt;
    use tokio_util::codec::FramedRead;

    /// Frames of every size class, written in batches over a socket pair that takes few
    /// bytes at a time, arrive whole and in order.
    #[tokio::test]
    async fn batches_of_small_and_large_frames_arrive_whole_and_in_order() {
        let (a, b) = tokio::io::duplex(1000);
        let mut writer = FrameWriter::new(Box::new(a), 1 << 20);
        let sizes = [
            0usize,
            1,
            100,
            COPY_LIMIT - 1,
            COPY_LIMIT,
            70_000,
            3,
            200_000,
            5,
        ];
        let frames: Vec<Frame> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| Frame::new(Kind::Reply, i as u64, vec![i as u8; *n]))
            .collect();
        let expected = frames.clone();
        let writing = tokio::spawn(async move {
            for chunk in frames.chunks(4) {
                for f in chunk {
                    writer.feed(f.clone()).unwrap();
                }
                writer.flush().await.unwrap();
                assert_eq!(writer.pending(), 0);
            }
            writer
        });
        let mut reader = FramedRead::new(b, FrameCodec::new(1 << 20));
        for want in expected {
            let got = reader.next().await.unwrap().unwrap();
            assert_eq!(got, want);
        }
        let mut writer = writing.await.unwrap();
        let too_big = Frame::new(Kind::Reply, 1, vec![0u8; 1 << 20]);
        assert!(matches!(
            writer.feed(too_big),
            Err(FrameError::BadLength { .. })
        ));
        assert_eq!(writer.pending(), 0, "a refused frame adds nothing");
    }
}
