//! Server-sent events framing, just enough to read Intake's `GET /v1/files/{id}/events`:
//! bytes in as they arrive, whole `event:`/`data:` frames out. A frame may be split across
//! network chunks anywhere (even inside a UTF-8 character), so bytes are buffered until the
//! blank line that ends a frame.

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when the frame has none (the SSE default).
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Turns a byte stream into [`SseEvent`]s.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
}

impl SseParser {
    /// Feeds `chunk` and returns every frame it completes. Comments (`: keep-alive`) and
    /// frames without data are dropped, as the SSE spec says.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some((end, separator)) = frame_end(&self.buffer) {
            let frame: Vec<u8> = self.buffer.drain(..end + separator).take(end).collect();
            if let Some(event) = parse_frame(&String::from_utf8_lossy(&frame)) {
                events.push(event);
            }
        }
        events
    }
}

/// Where the first frame ends and how long its blank-line separator is (`\n\n` from axum;
/// `\r\n\r\n` from servers that use CRLF).
fn frame_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn parse_frame(frame: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut data: Option<String> = None;
    for line in frame.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        // One optional space after the colon belongs to the syntax, not the value.
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            // "" is a comment line; `id` and `retry` are not needed here.
            _ => {}
        }
    }
    Some(SseEvent {
        event: event.unwrap_or_else(|| "message".into()),
        data: data?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let stream = "event: state\ndata: {\"state\":\"processing\"}\n\n: keep-alive\n\nevent: state\ndata: {\"state\":\"d\u{f6}ne\"}\n\n";
        let bytes = stream.as_bytes();
        // Every split point, including inside the two-byte 'ö'.
        for split in 0..bytes.len() {
            let mut parser = SseParser::default();
            let mut events = parser.push(&bytes[..split]);
            events.extend(parser.push(&bytes[split..]));
            assert_eq!(
                events,
                vec![
                    event("state", "{\"state\":\"processing\"}"),
                    event("state", "{\"state\":\"d\u{f6}ne\"}"),
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn multi_line_data_crlf_and_defaults() {
        let mut parser = SseParser::default();
        let events = parser.push(b"data: a\r\ndata:b\r\n\r\nevent: x\n\nevent: y\ndata\n\n");
        assert_eq!(
            events,
            vec![event("message", "a\nb"), event("y", "")],
            "a frame without data is dropped; `data` without a colon is an empty line"
        );
        assert!(
            parser.push(b"event: state\ndata: {}").is_empty(),
            "not ended yet"
        );
        assert_eq!(parser.push(b"\n\n"), vec![event("state", "{}")]);
    }
}
