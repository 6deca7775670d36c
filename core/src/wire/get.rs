//! `GET` requests between peers: `GET <name> <range>`.
//!
//! Range forms (all ends inclusive, as in HTTP byte ranges):
//! `start` and `start-` mean from `start` to the end of the file; `start-end` and
//! `start end` mean bytes `start..=end`.

use std::io::Write as _;

use super::message::{parse_size, ParseError};

/// A byte range of a file; `end` is inclusive, `None` means "to the end of the file".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

impl ByteRange {
    pub const ALL: Self = Self {
        start: 0,
        end: None,
    };

    /// The half-open span `[start, stop)` this range covers of a file of `len` bytes, or
    /// `None` when it starts past the end or ends before it starts.
    pub fn clamp(&self, len: u64) -> Option<(u64, u64)> {
        let stop = match self.end {
            Some(end) if end < self.start => return None,
            Some(end) => end.saturating_add(1).min(len),
            None => len,
        };
        (self.start <= len).then_some((self.start, stop))
    }
}

/// A `GET` request: which file and which bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Get<'a> {
    pub name: &'a str,
    pub range: ByteRange,
}

/// The readings of one `GET` line. `GET a 1 2` is either bytes 1..=2 of `a` or everything
/// from byte 2 of `a 1`; the file server takes the first reading whose name it shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetLine<'a> {
    pub first: Get<'a>,
    pub second: Option<Get<'a>>,
}

impl<'a> GetLine<'a> {
    /// Parses one line (without its terminator).
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let rest = line
            .strip_prefix("GET ")
            .ok_or(ParseError::UnknownCommand)?;
        let (head, last) = rest.rsplit_once(' ').ok_or(ParseError::MissingField)?;
        if head.is_empty() {
            return Err(ParseError::MissingField);
        }
        let single = parse_range(last).map(|range| Get { name: head, range });
        let pair = head.rsplit_once(' ').and_then(|(name, start)| {
            let (start, end) = (parse_size(start).ok()?, parse_size(last).ok()?);
            // `GET track 1 0` cannot mean bytes 1..=0 of `track`: it is `track 1` from 0.
            (!name.is_empty() && start <= end).then_some(Get {
                name,
                range: ByteRange {
                    start,
                    end: Some(end),
                },
            })
        });
        match (pair, single) {
            (Some(pair), single) => Ok(Self {
                first: pair,
                second: single.ok(),
            }),
            (None, single) => Ok(Self {
                first: single?,
                second: None,
            }),
        }
    }

    /// The readings in order of preference.
    pub fn readings(&self) -> impl Iterator<Item = Get<'a>> {
        std::iter::once(self.first).chain(self.second)
    }
}

fn parse_range(s: &str) -> Result<ByteRange, ParseError> {
    match s.split_once('-') {
        None => Ok(ByteRange {
            start: parse_size(s)?,
            end: None,
        }),
        Some((start, "")) => Ok(ByteRange {
            start: parse_size(start)?,
            end: None,
        }),
        Some((start, end)) => Ok(ByteRange {
            start: parse_size(start)?,
            end: Some(parse_size(end)?),
        }),
    }
}

impl Get<'_> {
    /// Appends the request in the form every classic peer serves (`GET name start`) when
    /// the range is open-ended, else as `GET name start-end`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = match self.range.end {
            None => writeln!(out, "GET {} {}", self.name, self.range.start),
            Some(end) => writeln!(out, "GET {} {}-{}", self.name, self.range.start, end),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(name: &str, start: u64, end: Option<u64>) -> Get<'_> {
        Get {
            name,
            range: ByteRange { start, end },
        }
    }

    #[test]
    fn every_range_form() {
        let one = |l| GetLine::parse(l).unwrap().first;
        assert_eq!(one("GET a.txt 5"), get("a.txt", 5, None));
        assert_eq!(one("GET a.txt 5-"), get("a.txt", 5, None));
        assert_eq!(one("GET a.txt 5-9"), get("a.txt", 5, Some(9)));
        assert_eq!(one("GET a.txt 5 9"), get("a.txt", 5, Some(9)));
        assert_eq!(one("GET my file.txt 0"), get("my file.txt", 0, None));
    }

    #[test]
    fn two_numbers_have_two_readings() {
        let l = GetLine::parse("GET track 1 20").unwrap();
        let all: Vec<_> = l.readings().collect();
        assert_eq!(
            all,
            vec![get("track", 1, Some(20)), get("track 1", 20, None)]
        );
        let l = GetLine::parse("GET track 1 0").unwrap();
        let all: Vec<_> = l.readings().collect();
        assert_eq!(all, vec![get("track 1", 0, None)]);
    }

    #[test]
    fn bad_requests() {
        for l in [
            "GET",
            "GET a",
            "GET  1",
            "GET a x",
            "GET a -5",
            "GET a 1-x",
            "PUT a 0",
        ] {
            assert!(GetLine::parse(l).is_err(), "{l}");
        }
    }

    #[test]
    fn clamp_is_inclusive_and_bounded() {
        assert_eq!(
            ByteRange {
                start: 0,
                end: Some(9)
            }
            .clamp(100),
            Some((0, 10))
        );
        assert_eq!(
            ByteRange {
                start: 90,
                end: None
            }
            .clamp(100),
            Some((90, 100))
        );
        assert_eq!(
            ByteRange {
                start: 100,
                end: None
            }
            .clamp(100),
            Some((100, 100))
        );
        assert_eq!(
            ByteRange {
                start: 101,
                end: None
            }
            .clamp(100),
            None
        );
        assert_eq!(
            ByteRange {
                start: 5,
                end: Some(4)
            }
            .clamp(100),
            None
        );
        assert_eq!(
            ByteRange {
                start: 0,
                end: Some(u64::MAX)
            }
            .clamp(7),
            Some((0, 7))
        );
    }
}
