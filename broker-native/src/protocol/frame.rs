//! Frames: `length: u32 BE | kind: u8 | id: u64 BE | payload`, where `length` counts the
//! kind, id and payload bytes (so it is at least [`HEADER_LEN`]). The [`FrameCodec`] refuses
//! a length under the header size or over its maximum *before* buffering the frame, and an
//! unknown kind, with a typed [`FrameError`]; it never panics on any input.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;
use tokio_util::codec::{Decoder, Encoder};

/// Bytes after the length prefix that every frame has: kind (1) and id (8).
pub const HEADER_LEN: usize = 9;

/// The largest frame a connection accepts before it authenticated.
pub const HANDSHAKE_MAX_FRAME: usize = 64 * 1024;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The client's opening frame: versions and credentials.
    Hello = 1,
    /// The server's answer to `Hello`: accepted (with the version) or refused.
    Welcome = 2,
    /// A client request; the id is its correlation id.
    Request = 3,
    /// The answer to the request with the same id.
    Reply = 4,
    /// A heartbeat: no payload, proves the peer alive.
    Heartbeat = 5,
    /// A protocol error: the sender closes the connection after it.
    Error = 6,
}

impl Kind {
    fn from_u8(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Hello,
            2 => Kind::Welcome,
            3 => Kind::Request,
            4 => Kind::Reply,
            5 => Kind::Heartbeat,
            6 => Kind::Error,
            _ => return None,
        })
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it carries.
    pub kind: Kind,
    /// Correlation id (requests and replies), 0 otherwise.
    pub id: u64,
    /// The encoded body.
    pub payload: Bytes,
}

impl Frame {
    /// A frame of `kind` with `id` and `payload`.
    pub fn new(kind: Kind, id: u64, payload: impl Into<Bytes>) -> Self {
        Frame {
            kind,
            id,
            payload: payload.into(),
        }
    }

    /// A heartbeat frame.
    pub fn heartbeat() -> Self {
        Frame::new(Kind::Heartbeat, 0, Bytes::new())
    }
}

/// Why bytes are not a frame.
#[derive(Debug)]
pub enum FrameError {
    /// The length prefix is under the header size or over the maximum.
    BadLength {
        /// The announced length.
        length: u64,
        /// The connection's maximum.
        max: usize,
    },
    /// The kind byte names no frame kind.
    UnknownKind(u8),
    /// The socket failed.
    Io(std::io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadLength { length, max } => write!(
                f,
                "frame length {length} outside {HEADER_LEN}..={max} bytes"
            ),
            FrameError::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            FrameError::Io(e) => write!(f, "i/o: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// The codec of [`Frame`]s with a maximum frame length (kind + id + payload).
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    /// A codec accepting frames of up to `max` bytes after the length prefix.
    pub fn new(max: usize) -> Self {
        FrameCodec {
            max: max.max(HEADER_LEN),
        }
    }

    /// Raises or lowers the maximum (after the handshake).
    pub fn set_max(&mut self, max: usize) {
        self.max = max.max(HEADER_LEN);
    }

    /// The maximum frame length.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if !(HEADER_LEN..=self.max).contains(&length) {
            return Err(FrameError::BadLength {
                length: length as u64,
                max: self.max,
            });
        }
        if src.len() < 4 + length {
            // Reserve only what this (bounded) frame needs.
            src.reserve(4 + length - src.len());
            return Ok(None);
        }
        let kind = Kind::from_u8(src[4]).ok_or(FrameError::UnknownKind(src[4]))?;
        src.advance(5);
        let id = src.get_u64();
        let payload = src.split_to(length - HEADER_LEN).freeze();
        Ok(Some(Frame { kind, id, payload }))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let length = HEADER_LEN + frame.payload.len();
        if length > self.max || length > u32::MAX as usize {
            return Err(FrameError::BadLength {
                length: length as u64,
                max: self.max,
            });
        }
        dst.reserve(4 + length);
        dst.put_u32(length as u32);
        dst.put_u8(frame.kind as u8);
        dst.put_u64(frame.id);
        dst.extend_from_slice(&frame.payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(frame: Frame) -> BytesMut {
        let mut out = BytesMut::new();
        FrameCodec::new(1 << 20).encode(frame, &mut out).unwrap();
        out
    }

    #[test]
    fn a_frame_round_trips_even_byte_by_byte() {
        let frame = Frame::new(Kind::Request, 42, Bytes::from_static(b"payload"));
        let bytes = encoded(frame.clone());
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::new();
        let mut got = None;
        for b in bytes.iter() {
            buf.put_u8(*b);
            if let Some(f) = codec.decode(&mut buf).unwrap() {
                got = Some(f);
            }
        }
        assert_eq!(got, Some(frame));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_and_undersize_lengths_are_refused_before_buffering() {
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::BadLength { .. })
        ));
        assert!(
            buf.capacity() < 1024,
            "nothing reserved for a refused frame"
        );
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2, 3][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::BadLength { length: 3, .. })
        ));
        let mut out = BytesMut::new();
        let big = Frame::new(Kind::Request, 1, vec![0u8; 200]);
        assert!(codec.encode(big, &mut out).is_err());
    }

    #[test]
    fn an_unknown_kind_is_refused() {
        let mut buf = BytesMut::from(&[0, 0, 0, 9, 99, 0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert!(matches!(
            FrameCodec::new(100).decode(&mut buf),
            Err(FrameError::UnknownKind(99))
        ));
    }

    proptest! {
        /// Arbitrary bytes never panic the decoder, and it never buffers past its maximum.
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 0..32)) {
            let mut codec = FrameCodec::new(256);
            let mut buf = BytesMut::new();
            'outer: for chunk in chunks {
                buf.extend_from_slice(&chunk);
                loop {
                    match codec.decode(&mut buf) {
                        Ok(Some(f)) => prop_assert!(f.payload.len() + HEADER_LEN <= 256),
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
                prop_assert!(buf.capacity() <= 4 + 256 + 64 * 32);
            }
        }

        /// Any frame within the maximum round-trips.
        #[test]
        fn frames_round_trip(kind in 1u8..=6, id in any::<u64>(),
                             payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let frame = Frame::new(Kind::from_u8(kind).unwrap(), id, payload);
            let mut bytes = encoded(frame.clone());
            let got = FrameCodec::new(1024).decode(&mut bytes).unwrap();
            prop_assert_eq!(got, Some(frame));
        }
    }
}
