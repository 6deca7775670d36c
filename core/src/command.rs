//! What a user types at the client: parsed once here for every runtime.

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
    Download {
        peer: Option<PeerAddr>,
        name: String,
    },
    /// `LEAVE`: leave the network and exit.
    Leave,
    /// `HELP` (or a blank line).
    Help,
}

/// Why a line is not a command; the message is shown to the user with the help text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command `{0}`")]
    Unknown(String),
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("bad file name: {0}")]
    BadName(#[from] BadName),
}

pub const HELP: &str = "\
commands:
  CREATEFILE name [size]   share a file that is in the shared folder
  DELETEFILE name          stop sharing a file
  SEARCH pattern           find files on the network (case-sensitive substring)
  DOWNLOAD [peer] name     download a file: from that peer (as SEARCH shows it),
                           or from every peer that has it
  LEAVE                    leave the network and exit (end of input does the same)
  HELP                     this text
at a terminal: Tab completes commands and file names, Up/Down recall earlier lines,
Ctrl-C clears the line, Ctrl-D leaves";

/// What a command word asks for, before its arguments are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    CreateFile,
    DeleteFile,
    Search,
    Download,
    Leave,
    Help,
}

/// Every command word the parser accepts, in upper case (matching ignores case): the one
/// list both [`UserCommand::parse`] and the prompt's tab completion read.
pub const COMMAND_WORDS: &[(&str, Verb)] = &[
    ("CREATEFILE", Verb::CreateFile),
    ("DELETEFILE", Verb::DeleteFile),
    ("SEARCH", Verb::Search),
    ("DOWNLOAD", Verb::Download),
    ("LEAVE", Verb::Leave),
    ("QUIT", Verb::Leave),
    ("EXIT", Verb::Leave),
    ("HELP", Verb::Help),
    ("?", Verb::Help),
];

impl Verb {
    /// The verb of a command word, in any case.
    pub fn of(word: &str) -> Option<Self> {
        COMMAND_WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|&(_, verb)| verb)
    }
}

impl UserCommand {
    pub fn parse(line: &str) -> Result<Self, CommandError> {
        let line = line.trim();
        let (word, rest) = match line.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (line, ""),
        };
        if word.is_empty() {
            return Ok(Self::Help);
        }
        let Some(verb) = Verb::of(word) else {
            return Err(CommandError::Unknown(word.to_owned()));
        };
        match verb {
            Verb::Help => Ok(Self::Help),
            Verb::CreateFile => {
                if rest.is_empty() {
                    return Err(CommandError::Usage("CREATEFILE name [size]"));
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
                    return Err(CommandError::Usage("DELETEFILE name"));
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
                    return Err(CommandError::Usage("DOWNLOAD [peer] name"));
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
        for (word, _) in COMMAND_WORDS {
            let line = format!("{} x", word.to_ascii_lowercase());
            assert!(
                !matches!(UserCommand::parse(&line), Err(CommandError::Unknown(_))),
                "{word}"
            );
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
