//! Line framing: every classic message is one line ended by `\n` (`\r\n` accepted; any
//! `\r`s just before the `\n` belong to the terminator, so that no field can end in one).

/// The longest line napshare accepts, terminator included. Long enough for a 255-byte file
/// name in a `FILE` reply with an IPv6 peer and a 20-digit size, short enough that a
/// client sending garbage cannot make the server buffer much.
pub const MAX_LINE: usize = 4096;

/// Why a line could not be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// No `\n` within [`MAX_LINE`] bytes (or the limit given to [`LineBuf`]).
    TooLong,
}

/// Finds the first complete line in `buf`.
///
/// Returns the line without its terminator (`\n` or `\r\n`) and the number of bytes it took,
/// or `Ok(None)` when `buf` holds no `\n` yet and is still under `limit`.
pub fn decode_line(buf: &[u8], limit: usize) -> Result<Option<(&[u8], usize)>, LineError> {
    let window = &buf[..buf.len().min(limit)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) => Ok(Some((strip_cr(&buf[..end]), end + 1))),
        None if buf.len() >= limit => Err(LineError::TooLong),
        None => Ok(None),
    }
}

/// `line` without the `\r`s at its end: `A\r\r\n` is `A`, as a field ending in `\r`
/// could not be sent back (its encoding would end in `\r\n` and lose the `\r`).
fn strip_cr(mut line: &[u8]) -> &[u8] {
    while let Some(rest) = line.strip_suffix(b"\r") {
        line = rest;
    }
    line
}

/// A bounded, incremental receive buffer that yields whole lines.
///
/// Bytes go in with [`LineBuf::extend`]; lines come out of [`LineBuf::next_line`]. A line
/// over the limit is reported once as [`LineError::TooLong`] and then skipped up to its
/// `\n`, so the buffer never holds more than `limit` bytes and the connection can go on.
#[derive(Debug)]
pub struct LineBuf {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already handed out.
    consumed: usize,
    /// Dropping the rest of an overlong line.
    skipping: bool,
    limit: usize,
}

impl LineBuf {
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            consumed: 0,
            skipping: false,
            limit,
        }
    }

    /// Appends received bytes. While skipping an overlong line, bytes up to its end are
    /// dropped here so they never use memory.
    pub fn extend(&mut self, mut data: &[u8]) {
        self.compact();
        if self.skipping {
            match data.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.skipping = false;
                    data = &data[end + 1..];
                }
                None => return,
            }
        }
        self.buf.extend_from_slice(data);
    }

    /// Returns the next complete line (terminator stripped), `Some(Err)` once for an
    /// overlong line, or `None` when more bytes are needed.
    pub fn next_line(&mut self) -> Option<Result<&[u8], LineError>> {
        let pending = &self.buf[self.consumed..];
        match decode_line(pending, self.limit) {
            Ok(Some((_, used))) => {
                let start = self.consumed;
                self.consumed += used;
                let line = &self.buf[start..start + used - 1];
                Some(Ok(strip_cr(line)))
            }
            Ok(None) => None,
            Err(e) => {
                // Drop the overlong line. If its `\n` is already here, the lines after it
                // are too and must survive; otherwise drop all we hold and skip the rest of
                // the line as it comes.
                match pending.iter().position(|&b| b == b'\n') {
                    Some(end) => self.consumed += end + 1,
                    None => {
                        self.buf.clear();
                        self.consumed = 0;
                        self.skipping = true;
                    }
                }
                Some(Err(e))
            }
        }
    }

    /// Appends received bytes and hands each complete line to `each` until it returns
    /// `false`; the same lines, errors and state as [`LineBuf::extend`] and then
    /// [`LineBuf::next_line`] until `None` or `false`.
    ///
    /// When nothing is held (the usual case: a request arrives whole), the lines are
    /// handed out straight from `data` and only an unterminated tail is copied.
    pub fn feed(&mut self, data: &[u8], mut each: impl FnMut(Result<&[u8], LineError>) -> bool) {
        if self.skipping || self.consumed < self.buf.len() {
            self.extend(data);
            while let Some(line) = self.next_line() {
                if !each(line) {
                    return;
                }
            }
            return;
        }
        self.compact();
        let mut rest = data;
        loop {
            let line = match decode_line(rest, self.limit) {
                Ok(Some((line, used))) => {
                    rest = &rest[used..];
                    Ok(line)
                }
                Ok(None) => break,
                Err(e) => {
                    // As in `next_line`: drop the overlong line, up to its `\n` if it is
                    // here, else all of it as it comes.
                    match rest.iter().position(|&b| b == b'\n') {
                        Some(end) => rest = &rest[end + 1..],
                        None => {
                            rest = &[];
                            self.skipping = true;
                        }
                    }
                    Err(e)
                }
            };
            if !each(line) {
                break;
            }
        }
        self.buf.extend_from_slice(rest);
    }

    /// The bytes of an unterminated last line, for peers that end a reply without `\n`.
    pub fn partial(&self) -> &[u8] {
        if self.skipping {
            return &[];
        }
        &self.buf[self.consumed..]
    }

    /// Takes the unterminated last line as if its `\n` had arrived.
    pub fn take_partial(&mut self) -> Option<Vec<u8>> {
        let rest = self.partial();
        if rest.is_empty() {
            return None;
        }
        let line = strip_cr(rest).to_vec();
        self.buf.clear();
        self.consumed = 0;
        Some(line)
    }

    /// Bytes held but not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Moves unconsumed bytes to the front and gives back memory after a burst.
    fn compact(&mut self) {
        if self.consumed > 0 {
            self.buf.drain(..self.consumed);
            self.consumed = 0;
        }
        if self.buf.is_empty() && self.buf.capacity() > 2 * self.limit {
            self.buf = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(buf: &mut LineBuf) -> Vec<Result<String, LineError>> {
        let mut out = Vec::new();
        while let Some(r) = buf.next_line() {
            out.push(r.map(|l| String::from_utf8_lossy(l).into_owned()));
        }
        out
    }

    #[test]
    fn crlf_and_lf_both_end_a_line() {
        let mut b = LineBuf::new(64);
        b.extend(b"A\r\nB\nC");
        assert_eq!(lines(&mut b), vec![Ok("A".into()), Ok("B".into())]);
        assert_eq!(b.partial(), b"C");
        b.extend(b"\n");
        assert_eq!(lines(&mut b), vec![Ok("C".into())]);
    }

    #[test]
    fn overlong_line_is_reported_once_and_skipped() {
        let mut b = LineBuf::new(8);
        b.extend(b"0123456789");
        assert_eq!(lines(&mut b), vec![Err(LineError::TooLong)]);
        b.extend(b"abcdef");
        assert_eq!(lines(&mut b), vec![]);
        assert_eq!(b.buffered(), 0);
        b.extend(b"xyz\nOK\n");
        assert_eq!(lines(&mut b), vec![Ok("OK".into())]);
    }

    #[test]
    fn lines_after_an_overlong_line_in_the_same_chunk_survive() {
        let mut b = LineBuf::new(8);
        b.extend(b"0123456789\nA\nB");
        assert_eq!(lines(&mut b), vec![Err(LineError::TooLong), Ok("A".into())]);
        b.extend(b"\nC\n");
        assert_eq!(lines(&mut b), vec![Ok("B".into()), Ok("C".into())]);
    }

    /// `feed` gives what `extend` then `next_line` give, however the bytes are split.
    #[test]
    fn feeding_matches_extend_and_next_line() {
        let input: &[u8] = b"A\r\nBB\n0123456789abc\nC\n\n0123456789\r\nD\r";
        for limit in [4, 8, 64] {
            for split in 0..input.len() {
                for stop_after in [1, 2, usize::MAX] {
                    let mut a = LineBuf::new(limit);
                    let mut b = LineBuf::new(limit);
                    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
                    for chunk in [&input[..split], &input[split..]] {
                        let mut n = 0;
                        a.feed(chunk, |l| {
                            got_a.push(l.map(<[u8]>::to_vec));
                            n += 1;
                            n < stop_after
                        });
                        b.extend(chunk);
                        let mut n = 0;
                        while let Some(l) = b.next_line() {
                            got_b.push(l.map(<[u8]>::to_vec));
                            n += 1;
                            if n >= stop_after {
                                break;
                            }
                        }
                        assert_eq!(a.partial(), b.partial(), "limit {limit} split {split}");
                        assert_eq!(a.buffered(), b.buffered(), "limit {limit} split {split}");
                    }
                    assert_eq!(got_a, got_b, "limit {limit} split {split}");
                }
            }
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_fits() {
        let mut b = LineBuf::new(4);
        b.extend(b"abc\n");
        assert_eq!(lines(&mut b), vec![Ok("abc".into())]);
    }
}
