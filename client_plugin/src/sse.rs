//! Server-sent events, just enough of the format for the matchmaker's streamed join.
//!
//! The HTTP layer hands over body bytes split anywhere (mid-line, mid-UTF-8 character), so the
//! decoder buffers until a line ends and emits an event's `data` when its blank line arrives.
//! Comment lines (`:` keep-alives) and fields other than `data` are ignored.

/// Incremental decoder: feed body chunks, get complete events' data.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes of the line not yet terminated.
    pending: Vec<u8>,
    /// `data` lines of the event being read, joined with `\n` as the format requires.
    data: Option<String>,
}

/// Longest line accepted; a matchmaker event is a few kilobytes (a 2048-byte token in base64).
const MAX_LINE: usize = 256 * 1024;

/// The stream broke the format badly enough that continuing makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// A line or event is longer than any the matchmaker sends.
    #[error("an event-stream line or event exceeds {MAX_LINE} bytes")]
    LineTooLong,
    /// A line is not UTF-8 text.
    #[error("an event-stream line is not UTF-8")]
    NotUtf8,
}

impl SseDecoder {
    /// Consumes `chunk` and returns the data of every event it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, SseError> {
        let mut events = Vec::new();
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            self.pending.extend_from_slice(&rest[..pos]);
            rest = &rest[pos + 1..];
            let mut line = std::mem::take(&mut self.pending);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
            if self.data.as_ref().is_some_and(|data| data.len() > MAX_LINE) {
                return Err(SseError::LineTooLong);
            }
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() > MAX_LINE {
            return Err(SseError::LineTooLong);
        }
        Ok(events)
    }

    fn line(&mut self, line: &str) -> Option<String> {
        if line.is_empty() {
            return self.data.take();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        if field == "data" {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_reassembled() {
        let stream = b": keep-alive\n\ndata: {\"a\":1}\n\ndata: {\"b\":\r\ndata: 2}\r\n\r\n";
        for split in 0..stream.len() {
            let mut decoder = SseDecoder::default();
            let mut events = decoder.push(&stream[..split]).unwrap();
            events.extend(decoder.push(&stream[split..]).unwrap());
            assert_eq!(events, vec!["{\"a\":1}".to_string(), "{\"b\":\n2}".to_string()], "split at {split}");
        }
    }

    #[test]
    fn comments_and_other_fields_are_ignored() {
        let mut decoder = SseDecoder::default();
        let events = decoder.push(b": ping\n\nevent: x\nid: 3\nretry: 10\n\ndata:no-space\n\n").unwrap();
        assert_eq!(events, vec!["no-space".to_string()]);
    }

    #[test]
    fn an_unterminated_event_is_not_emitted() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.push(b"data: half").unwrap().is_empty());
        assert!(decoder.push(b"\n").unwrap().is_empty());
    }

    #[test]
    fn refuses_endless_lines_and_bad_utf8() {
        let mut decoder = SseDecoder::default();
        assert_eq!(decoder.push(&vec![b'x'; MAX_LINE + 1]), Err(SseError::LineTooLong));
        let mut many = SseDecoder::default();
        let line = format!("data: {}\n", "y".repeat(1024));
        let flood: String = std::iter::repeat_n(line.as_str(), MAX_LINE / 1024 + 2).collect();
        assert_eq!(many.push(flood.as_bytes()), Err(SseError::LineTooLong), "an event's data is bounded too");
        let mut decoder = SseDecoder::default();
        assert_eq!(decoder.push(b"data: \xff\n"), Err(SseError::NotUtf8));
    }
}
