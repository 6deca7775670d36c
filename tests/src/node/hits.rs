//! Search results as a client prints them.

/// One search result as a client prints it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hit {
    pub name: String,
    /// As the server listed it: `ip` or `ip:port`.
    pub peer: String,
    pub size: u64,
}

/// Parses a row of the results table, `  N  SIZE  PEER  COPIES  NAME` with the columns
/// padded to line up: SIZE is `1000 B`, or `4.2 MiB (4404019 B)` (`4,2 MiB` in Portuguese)
/// when the short form is rounded; COPIES is a number or `-`; NAME is the rest of the line
/// after the two spaces that follow COPIES, exactly (it may hold spaces).
pub fn parse_hit(line: &str) -> Option<Hit> {
    fn token<'a>(rest: &mut &'a str) -> Option<&'a str> {
        let s = rest.trim_start_matches(' ');
        let end = s.find(' ').unwrap_or(s.len());
        let (tok, tail) = s.split_at(end);
        *rest = tail;
        (!tok.is_empty()).then_some(tok)
    }
    let mut rest = line.strip_prefix("  ")?;
    let _number: usize = token(&mut rest)?.parse().ok()?;
    let value = token(&mut rest)?;
    let size = match token(&mut rest)? {
        "B" => value.parse().ok()?,
        _unit => {
            let exact = token(&mut rest)?.strip_prefix('(')?.parse().ok()?;
            (token(&mut rest)? == "B)").then_some(exact)?
        }
    };
    let peer = token(&mut rest)?.to_owned();
    let copies = token(&mut rest)?;
    if copies != "-" {
        copies.parse::<usize>().ok()?;
    }
    let name = rest.strip_prefix("  ")?.to_owned();
    Some(Hit { name, peer, size })
}

/// A search result, for comparisons.
pub fn hit(name: &str, peer: impl ToString, size: usize) -> Hit {
    Hit {
        name: name.to_owned(),
        peer: peer.to_string(),
        size: size as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use napshare_core::client::{ClientEvent, SearchHit};
    use napshare_core::hash::ContentHash;
    use napshare_host::lang::{Lang, Localize};

    /// What the client prints is read back exactly, whatever the names and sizes.
    #[test]
    fn the_printed_table_reads_back() {
        let names = [
            "plain.txt",
            "my song.mp3",
            "  two  spaces  ",
            "2  3",
            "- 4",
            "canção (ao vivo) [2024].flac",
        ];
        let hits: Vec<SearchHit> = names
            .iter()
            .enumerate()
            .map(|(i, name)| SearchHit {
                name: (*name).to_owned(),
                peer: format!("127.0.0.{i}:4{i}000"),
                size: [0, 1023, 1024, 4_404_019, 1 << 40, u64::MAX][i],
                hash: (i % 2 == 0).then_some(ContentHash([i as u8; 32])),
            })
            .collect();
        let event = ClientEvent::SearchDone {
            pattern: String::new(),
            hits: hits.clone(),
        };
        for lang in [Lang::En, Lang::Pt] {
            let text = event.in_lang(lang).to_string();
            let rows: Vec<Hit> = text
                .lines()
                .skip(2)
                .map(|l| parse_hit(l).unwrap_or_else(|| panic!("{l:?}")))
                .collect();
            let wanted: Vec<Hit> = hits
                .iter()
                .map(|h| Hit {
                    name: h.name.clone(),
                    peer: h.peer.clone(),
                    size: h.size,
                })
                .collect();
            assert_eq!(rows, wanted, "{text}");
        }
    }
}
