//! clamd's INSTREAM reply as a [`Verdict`]: clean, infected (with the signature), or
//! unscannable (over the stream limit, encrypted, a scan error), which is never a pass.

/// What clamd concluded about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The signature name as clamd reports it (unsigned databases add `.UNOFFICIAL`).
    Infected {
        signature: String,
    },
    /// clamd could not judge the content (over its stream limit, an encrypted archive...):
    /// never a pass; the pipeline routes it by policy (quarantine by default).
    Unscannable {
        reason: String,
    },
}

/// clamd's INSTREAM reply as a verdict; `None` for an answer that is not one.
pub fn parse_reply(reply: &str) -> Option<Verdict> {
    let reply = reply.trim_end_matches('\0').trim();
    if reply.contains("size limit exceeded") {
        return Some(Verdict::Unscannable {
            reason: format!("over clamd's stream size limit ({reply})"),
        });
    }
    let body = reply.strip_prefix("stream:").map(str::trim)?;
    if body == "OK" {
        return Some(Verdict::Clean);
    }
    if let Some(signature) = body.strip_suffix(" FOUND") {
        let signature = signature.trim();
        // Encrypted archives are reported as "Heuristics.Encrypted.*" when AlertEncrypted is
        // on: clamd could not look inside, which is not the same as finding malware.
        if signature.starts_with("Heuristics.Encrypted") {
            return Some(Verdict::Unscannable {
                reason: format!("encrypted content clamd cannot inspect ({signature})"),
            });
        }
        return Some(Verdict::Infected {
            signature: signature.to_owned(),
        });
    }
    if let Some(error) = body.strip_suffix(" ERROR") {
        return Some(Verdict::Unscannable {
            reason: format!("clamd could not scan it: {}", error.trim()),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_seen_from_clamd_1_4_6_map_to_verdicts() {
        let cases = [
            ("stream: OK\0", Some(Verdict::Clean)),
            (
                "stream: Intake.Test.EICAR.UNOFFICIAL FOUND\0",
                Some(Verdict::Infected {
                    signature: "Intake.Test.EICAR.UNOFFICIAL".into(),
                }),
            ),
            (
                "stream: Win.Test.EICAR_HDB-1 FOUND",
                Some(Verdict::Infected {
                    signature: "Win.Test.EICAR_HDB-1".into(),
                }),
            ),
            (
                "INSTREAM size limit exceeded. ERROR\0",
                Some(Verdict::Unscannable {
                    reason: "over clamd's stream size limit (INSTREAM size limit exceeded. ERROR)"
                        .into(),
                }),
            ),
            (
                "stream: Heuristics.Encrypted.Zip FOUND",
                Some(Verdict::Unscannable {
                    reason: "encrypted content clamd cannot inspect (Heuristics.Encrypted.Zip)"
                        .into(),
                }),
            ),
            (
                "stream: Can't allocate memory ERROR",
                Some(Verdict::Unscannable {
                    reason: "clamd could not scan it: Can't allocate memory".into(),
                }),
            ),
            ("PONG", None),
            ("", None),
        ];
        for (reply, verdict) in cases {
            assert_eq!(parse_reply(reply), verdict, "{reply:?}");
        }
    }
}
