//! A reader that hashes what passes through it: the scanner streams every byte of the
//! object, so the SHA-256 the catalog needs costs no second read of the object.

use std::pin::Pin;
use std::task::{Context, Poll};

use intake_core::outcome::ContentDigest;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

/// Wraps `inner`, hashing and counting every byte read from it.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The digest of what was read, if it was exactly `expected` bytes (a scanner that
    /// stopped early has not seen the whole object, and its digest would be wrong).
    pub fn finish(self, expected: u64) -> Option<ContentDigest> {
        if self.bytes != expected {
            return None;
        }
        let sha256 = hex::encode(self.hasher.finalize());
        Some(ContentDigest {
            sha256,
            size: self.bytes,
        })
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let fresh = &buf.filled()[before..];
            this.hasher.update(fresh);
            this.bytes += fresh.len() as u64;
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn the_digest_is_sha256_of_everything_read_and_only_of_a_full_read() {
        let data = b"The quick brown fox jumps over the lazy dog".to_vec();
        let mut reader = Hashing::new(&data[..]);
        let mut sink = Vec::new();
        reader.read_to_end(&mut sink).await.unwrap();
        let digest = reader.finish(data.len() as u64).unwrap();
        // The well-known SHA-256 of this sentence.
        assert_eq!(
            digest.sha256,
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
        );
        assert_eq!(digest.size, 43);

        let mut partial = Hashing::new(&data[..]);
        let mut first = [0u8; 10];
        partial.read_exact(&mut first).await.unwrap();
        assert_eq!(partial.finish(data.len() as u64), None);
    }
}
