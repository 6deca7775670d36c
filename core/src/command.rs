//! What a user types at the client: parsed once here for every runtime.
//!
//! Command words are accepted in English (the seed's words) and in Brazilian Portuguese,
//! whatever the locale: see [`WORDS`].

use crate::names::{check_file_name, BadName};
use crate::wire::{parse_size, PeerAddr};

/// A user command. Command words are case-insensitive (`search` works like `SEARCH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// `CREATEFILE name [size]`: share a file of the shared folder; a given size must match.
    CreateFile { name: String, size: Option<u64> },
    /// `DELETEFILE name`: stop sharing it.
    DeleteFile { name: String },
    /// `SEARCH pattern`: case-sensitive substring; empty finds everything.
    Search { pattern: String },
    /// `DOWNLOAD [peer] name`: fetch `name` from the peer at `peer`, or from every peer
    /// the latest search (or a new one) lists with it.
    ///
    /// `DOWNLOAD N` (no peer, a name of digits only) is result `N` of the latest search
    /// when that search listed at least `N` results, and a file named `N` otherwise: the
    /// client decides, as only it knows the latest results (see
    /// [`Client::command`](crate::client::Client::command)).
    Download {
        peer: Option<PeerAddr>,
        name: String,
    },
    /// `LEAVE`: leave the network and exit.
    Leave,
    /// `HELP` (or a blank line).
    Help,
}

/// The commands, for messages that name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    CreateFile,
    DeleteFile,
    Search,
    Download,
    Leave,
    Help,
}

/// Every command word: the seed's English word and the Portuguese one, both always
/// accepted (in any case), and the command they mean.
pub const WORDS: &[(&str, &str, Verb)] = &[
    ("CREATEFILE", "COMPARTILHAR", Verb::CreateFile),
    ("DELETEFILE", "REMOVER", Verb::DeleteFile),
    ("SEARCH", "BUSCAR", Verb::Search),
    ("DOWNLOAD", "BAIXAR", Verb::Download),
    ("LEAVE", "SAIR", Verb::Leave),
    ("HELP", "AJUDA", Verb::Help),
];

/// More words for leaving, in English.
const LEAVE_TOO: &[&str] = &["QUIT", "EXIT"];

/// Every command word the parser accepts, in upper case (matching ignores case), with its
/// command: what the prompt's tab completion offers.
pub fn command_words() -> impl Iterator<Item = (&'static str, Verb)> {
    let words = WORDS.iter().flat_map(|&(en, pt, v)| [(en, v), (pt, v)]);
    words.chain(LEAVE_TOO.iter().map(|&w| (w, Verb::Leave)))
}

impl Verb {
    /// The command a word means, in either language and any case.
    pub fn from_word(word: &str) -> Option<Self> {
        let word = word.to_uppercase();
        if LEAVE_TOO.contains(&word.as_str()) {
            return Some(Self::Leave);
        }
        WORDS
            .iter()
            .find(|(en, pt, _)| word == *en || word == *pt)
            .map(|(_, _, v)| *v)
    }
}

/// Why a line is not a command; the message is shown to the user with the help text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    Unknown(String),
    Usage(Verb),
    BadName(BadName),
}

impl From<BadName> for CommandError {
    fn from(e: BadName) -> Self {
        Self::BadName(e)
    }
}

impl UserCommand {
    pub fn parse(line: &str) -> Result<Self, CommandError> {
        let line = line.trim();
        let (word, rest) = match line.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (line, ""),
        };
        if word.is_empty() || word == "?" {
            return Ok(Self::Help);
        }
        let Some(verb) = Verb::from_word(word) else {
            return Err(CommandError::Unknown(word.to_owned()));
        };
        match verb {
            Verb::Help => Ok(Self::Help),
            Verb::CreateFile => {
                if rest.is_empty() {
                    return Err(CommandError::Usage(verb));
                }
                // A trailing number is the size: `CREATEFILE my song.mp3 4096`.
                let (name, size) = match rest.rsplit_once(' ') {
                    Some((name, size)) if parse_size(size).is_ok() => {
                        (name.trim_end(), parse_size(size).ok())
                    }
                    _ => (rest, None),
                };
                check_file_name(name)?;
                Ok(Self::CreateFile {
                    name: name.to_owned(),
                    size,
                })
            }
            Verb::DeleteFile => {
                if rest.is_empty() {
                    return Err(CommandError::Usage(verb));
                }
                check_file_name(rest)?;
                Ok(Self::DeleteFile {
                    name: rest.to_owned(),
                })
            }
            Verb::Search => Ok(Self::Search {
                pattern: rest.to_owned(),
            }),
            Verb::Download => {
                if rest.is_empty() {
                    return Err(CommandError::Usage(verb));
                }
                // `DOWNLOAD 10.0.0.1:4000 song.mp3` names a peer; anything else is a name.
                let (peer, name) = match rest.split_once(char::is_whitespace) {
                    Some((p, name)) => match p.parse::<PeerAddr>() {
                        Ok(peer) => (Some(peer), name.trim()),
                        Err(_) => (None, rest),
                    },
                    None => (None, rest),
                };
                check_file_name(name)?;
                Ok(Self::Download {
                    peer,
                    name: name.to_owned(),
                })
            }
            Verb::Leave => Ok(Self::Leave),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_commands_in_either_case() {
        assert_eq!(
            UserCommand::parse("CREATEFILE alpha.txt 100"),
            Ok(UserCommand::CreateFile {
                name: "alpha.txt".into(),
                size: Some(100)
            })
        );
        assert_eq!(
            UserCommand::parse("createfile my song.mp3"),
            Ok(UserCommand::CreateFile {
                name: "my song.mp3".into(),
                size: None
            })
        );
        assert_eq!(
            UserCommand::parse("download 127.0.0.1:4000 my song.mp3"),
            Ok(UserCommand::Download {
                peer: Some("127.0.0.1:4000".parse().unwrap()),
                name: "my song.mp3".into()
            })
        );
        assert_eq!(
            UserCommand::parse("DOWNLOAD my song.mp3"),
            Ok(UserCommand::Download {
                peer: None,
                name: "my song.mp3".into()
            })
        );
        assert_eq!(
            UserCommand::parse("SEARCH"),
            Ok(UserCommand::Search {
                pattern: String::new()
            })
        );
        assert_eq!(UserCommand::parse("leave"), Ok(UserCommand::Leave));
    }

    #[test]
    fn every_listed_word_is_a_command() {
        for (word, _) in command_words() {
            let line = format!("{} x", word.to_lowercase());
            assert!(
                !matches!(UserCommand::parse(&line), Err(CommandError::Unknown(_))),
                "{word}"
            );
        }
    }

    #[test]
    fn portuguese_words_mean_the_same_commands() {
        for (en, pt) in [
            ("CREATEFILE a.txt 3", "compartilhar a.txt 3"),
            ("DELETEFILE a.txt", "Remover a.txt"),
            ("SEARCH canção", "BUSCAR canção"),
            (
                "DOWNLOAD 10.0.0.1:4000 a b.mp3",
                "baixar 10.0.0.1:4000 a b.mp3",
            ),
            ("DOWNLOAD 3", "BAIXAR 3"),
            ("LEAVE", "SAIR"),
            ("HELP", "AJUDA"),
        ] {
            assert_eq!(UserCommand::parse(pt), UserCommand::parse(en), "{pt}");
            assert!(UserCommand::parse(pt).is_ok(), "{pt}");
        }
    }

    #[test]
    fn mistakes_are_errors() {
        assert!(matches!(
            UserCommand::parse("FETCH x"),
            Err(CommandError::Unknown(_))
        ));
        assert!(matches!(
            UserCommand::parse("DOWNLOAD 1.2.3.4 ../etc/passwd"),
            Err(CommandError::BadName(_))
        ));
        assert!(matches!(
            UserCommand::parse("DOWNLOAD"),
            Err(CommandError::Usage(_))
        ));
    }
}
