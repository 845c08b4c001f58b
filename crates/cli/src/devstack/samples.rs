//! The sample files `intake up` uploads: the ones shipped in `samples/` (built into the
//! binary, so `intake up` works from any directory) and the infected one, assembled at
//! run time. Each knows the end state it should reach.

use std::borrow::Cow;

/// Where a sample should end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Done,
    Quarantined,
}

impl Expect {
    pub fn state(self) -> &'static str {
        match self {
            Expect::Done => "done",
            Expect::Quarantined => "quarantined",
        }
    }
}

pub struct Sample {
    pub filename: &'static str,
    /// What a browser would declare for the name.
    pub content_type: &'static str,
    pub bytes: Cow<'static, [u8]>,
    pub expect: Expect,
}

/// The EICAR anti-virus test file, assembled from parts so that no file in the repository
/// holds it (scanners on developer machines would otherwise flag the source tree). The
/// same parts as `intake_testkit::clamd::eicar`.
pub fn eicar() -> Vec<u8> {
    let parts = [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-",
        "ANTIVIRUS-TEST-",
        "FILE!$H+H*",
    ];
    parts.concat().into_bytes()
}

/// Every sample, in upload order. With `scanning` off the infected sample passes
/// unscanned, so it is then expected to end `done`.
pub fn all(scanning: bool) -> Vec<Sample> {
    let shipped = |filename, content_type, bytes: &'static [u8], expect| Sample {
        filename,
        content_type,
        bytes: Cow::Borrowed(bytes),
        expect,
    };
    vec![
        shipped(
            "photo.jpg",
            "image/jpeg",
            include_bytes!("../../../../samples/photo.jpg"),
            Expect::Done,
        ),
        shipped(
            "logo.png",
            "image/png",
            include_bytes!("../../../../samples/logo.png"),
            Expect::Done,
        ),
        shipped(
            "report.pdf",
            "application/pdf",
            include_bytes!("../../../../samples/report.pdf"),
            Expect::Done,
        ),
        shipped(
            "notes.txt",
            "text/plain; charset=utf-8",
            include_bytes!("../../../../samples/notes.txt"),
            Expect::Done,
        ),
        // Declared as the PDF its name claims, as a browser would; validate judges the
        // content.
        shipped(
            "invoice.pdf",
            "application/pdf",
            include_bytes!("../../../../samples/invoice.pdf"),
            Expect::Quarantined,
        ),
        Sample {
            filename: "eicar.txt",
            content_type: "text/plain",
            bytes: Cow::Owned(eicar()),
            expect: if scanning {
                Expect::Quarantined
            } else {
                Expect::Done
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_non_empty_and_named_once() {
        let samples = all(true);
        let mut names: Vec<_> = samples.iter().map(|s| s.filename).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), samples.len());
        assert!(samples.iter().all(|s| !s.bytes.is_empty()));
        assert_eq!(eicar().len(), 68);
    }
}
