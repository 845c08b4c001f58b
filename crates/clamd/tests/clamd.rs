//! The clamd client against a real clamd (Debian's clamav-daemon) with the project's test
//! signatures: clean, infected (EICAR, the project marker), over the stream limit, over TCP
//! and a unix socket, large streams in bounded chunks, and clamd going away. The PING probe
//! against a stand-in server is tested in `src/lib.rs`.

use std::pin::Pin;
use std::task::{Context, Poll};

use intake_clamd::{Clamd, ClamdAddress, ClamdError, Verdict};
use intake_testkit::clamd::{ClamdFixture, TEST_MARKER, eicar};
use tokio::io::{AsyncRead, ReadBuf};

/// An endless-looking reader of `len` bytes of one value, produced on the fly: the test
/// never holds the whole stream, as the scan stage never holds a whole S3 object.
struct Generated {
    left: u64,
    byte: u8,
    largest_read: usize,
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left) as usize;
        buf.put_slice(&vec![self.byte; n]);
        self.left -= n as u64;
        self.largest_read = self.largest_read.max(n);
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn verdicts_from_a_real_clamd() {
    let fixture = ClamdFixture::start("1M").await.expect("clamd");
    for address in [
        ClamdAddress::Tcp(fixture.tcp_address()),
        ClamdAddress::Unix(fixture.socket_path()),
    ] {
        intake_clamd::ping(&address, std::time::Duration::from_secs(2))
            .await
            .unwrap_or_else(|e| panic!("{address}: {e}"));
        let clamd = Clamd::new(address.clone());
        clamd
            .ping()
            .await
            .unwrap_or_else(|e| panic!("{address}: {e}"));
        assert!(
            clamd.version().await.unwrap().starts_with("ClamAV 1."),
            "{address}"
        );

        assert_eq!(
            clamd
                .scan(&b"a perfectly ordinary text file\n"[..])
                .await
                .unwrap(),
            Verdict::Clean,
            "{address}"
        );
        assert_eq!(
            clamd.scan(&eicar()[..]).await.unwrap(),
            Verdict::Infected {
                signature: "Intake.Test.EICAR.UNOFFICIAL".into()
            },
            "{address}"
        );
        let mut marked = b"some bytes before ".to_vec();
        marked.extend_from_slice(TEST_MARKER);
        assert_eq!(
            clamd.scan(&marked[..]).await.unwrap(),
            Verdict::Infected {
                signature: "Intake.Test.Marker.UNOFFICIAL".into()
            },
            "{address}"
        );
        assert_eq!(
            clamd.scan(&b""[..]).await.unwrap(),
            Verdict::Clean,
            "an empty stream is clean"
        );
    }
}

#[tokio::test]
async fn over_the_stream_limit_is_unscannable_not_an_error() {
    let fixture = ClamdFixture::start("1M").await.expect("clamd");
    let clamd = Clamd::new(ClamdAddress::Tcp(fixture.tcp_address()));
    // clamd closes the socket mid-stream; the client must still read the reply.
    let verdict = clamd
        .scan(Generated {
            left: 8 * 1024 * 1024,
            byte: b'x',
            largest_read: 0,
        })
        .await
        .unwrap();
    match verdict {
        Verdict::Unscannable { reason } => assert!(reason.contains("size limit"), "{reason}"),
        other => panic!("expected unscannable, got {other:?}"),
    }
}

#[tokio::test]
async fn large_streams_go_through_in_bounded_chunks() {
    let fixture = ClamdFixture::start("100M").await.expect("clamd");
    let mut clamd = Clamd::new(ClamdAddress::Tcp(fixture.tcp_address()));
    clamd.chunk_size = 256 * 1024;
    let mut input = Generated {
        left: 50 * 1024 * 1024,
        byte: 0x41,
        largest_read: 0,
    };
    assert_eq!(clamd.scan(&mut input).await.unwrap(), Verdict::Clean);
    assert_eq!(input.left, 0, "the whole stream was sent");
    assert!(
        input.largest_read <= 256 * 1024,
        "read at most one chunk at a time ({})",
        input.largest_read
    );
}

#[tokio::test]
async fn clamd_going_away_is_an_error_never_a_verdict() {
    let mut fixture = ClamdFixture::start("1M").await.expect("clamd");
    let clamd = Clamd::new(ClamdAddress::Tcp(fixture.tcp_address()));
    fixture.stop();
    let err = clamd.scan(&eicar()[..]).await.unwrap_err();
    assert!(matches!(err, ClamdError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.code(), "scanner_unreachable");
    assert!(err.to_string().contains(&fixture.tcp_address()), "{err}");

    fixture.restart().await.expect("clamd back");
    assert!(matches!(
        clamd.scan(&eicar()[..]).await.unwrap(),
        Verdict::Infected { .. }
    ));
}
