//! [`Stack`]: one codec over another, outer next to the socket. WSS (RFC 7118 §1) is
//! `Stack<TlsCodec, WsCodec>`: TLS records carry the WebSocket upgrade and frames.

use super::codec::{CodecError, Plain, StreamCodec};

/// `outer` faces the socket, `inner` faces SIP; what `inner` must send back (a 101, a pong,
/// a Close) goes out through `outer`.
#[derive(Debug)]
pub struct Stack<O, I> {
    outer: O,
    inner: I,
    /// What `inner` produced, before `outer` encodes it (reused; dropped when large).
    scratch: Vec<u8>,
}

/// A scratch buffer above this is dropped after use rather than kept by an idle connection.
const KEEP_SCRATCH_BYTES: usize = 2048;

impl<O: StreamCodec, I: StreamCodec> Stack<O, I> {
    /// `inner` over `outer`.
    pub fn new(outer: O, inner: I) -> Self {
        Self {
            outer,
            inner,
            scratch: Vec::new(),
        }
    }

    /// Sends what `inner` produced through `outer`.
    fn pass_down(&mut self, wire: &mut Vec<u8>) -> Result<(), CodecError> {
        let out = if self.scratch.is_empty() {
            Ok(())
        } else {
            self.outer.write(&self.scratch, wire)
        };
        self.scratch.clear();
        if self.scratch.capacity() > KEEP_SCRATCH_BYTES {
            self.scratch = Vec::new();
        }
        out
    }
}

impl<O: StreamCodec, I: StreamCodec> StreamCodec for Stack<O, I> {
    fn read(
        &mut self,
        input: &[u8],
        plain: &mut dyn FnMut(Plain<'_>),
        wire: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let inner = &mut self.inner;
        let scratch = &mut self.scratch;
        let mut inner_err = None;
        let outer = self.outer.read(
            input,
            &mut |p| {
                // After the inner layer failed, the rest of its bytes mean nothing.
                if inner_err.is_some() {
                    return;
                }
                let bytes = match p {
                    Plain::Stream(b) | Plain::Message(b) => b,
                };
                if let Err(e) = inner.read(bytes, plain, scratch) {
                    inner_err = Some(e);
                }
            },
            wire,
        );
        // The inner layer's last words (a Close, an HTTP error) go out even when it failed.
        let down = self.pass_down(wire);
        if let Some(e) = inner_err {
            return Err(e);
        }
        outer?;
        down
    }

    fn write(&mut self, sip: &[u8], wire: &mut Vec<u8>) -> Result<(), CodecError> {
        let r = self.inner.write(sip, &mut self.scratch);
        let down = self.pass_down(wire);
        r?;
        down
    }

    fn is_handshaking(&self) -> bool {
        self.outer.is_handshaking() || self.inner.is_handshaking()
    }
}
