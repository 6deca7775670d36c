//! What a user types at the client: parsed once here for every runtime.
//!
//! Command words are accepted in English (the seed's words) and in Brazilian Portuguese,
//! whatever the locale: see [`WORDS`].

use std::fmt;

use crate::lang::{Lang, Localize};
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
    /// The command word in `lang`.
    pub fn word(self, lang: Lang) -> &'static str {
        let (en, pt, _) = WORDS
            .iter()
            .find(|(_, _, v)| *v == self)
            .expect("every verb has its words");
        lang.pick(en, pt)
    }

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

    /// How the command is used, in `lang`.
    pub fn usage(self, lang: Lang) -> String {
        let args = match (self, lang) {
            (Self::CreateFile, Lang::En) => " name [size]",
            (Self::CreateFile, Lang::Pt) => " nome [tamanho]",
            (Self::DeleteFile, Lang::En) => " name",
            (Self::DeleteFile, Lang::Pt) => " nome",
            (Self::Search, Lang::En) => " [pattern]",
            (Self::Search, Lang::Pt) => " [padrão]",
            (Self::Download, Lang::En) => " N | DOWNLOAD [peer] name",
            (Self::Download, Lang::Pt) => " N | BAIXAR [peer] nome",
            (Self::Leave | Self::Help, _) => "",
        };
        format!("{}{args}", self.word(lang))
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

impl std::error::Error for CommandError {}

impl Localize for CommandError {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, lang) {
            (Self::Unknown(w), Lang::En) => write!(f, "unknown command `{w}`"),
            (Self::Unknown(w), Lang::Pt) => write!(f, "comando desconhecido `{w}`"),
            (Self::Usage(v), Lang::En) => write!(f, "usage: {}", v.usage(lang)),
            (Self::Usage(v), Lang::Pt) => write!(f, "uso: {}", v.usage(lang)),
            (Self::BadName(e), Lang::En) => write!(f, "bad file name: {}", e.in_lang(lang)),
            (Self::BadName(e), Lang::Pt) => {
                write!(f, "nome de arquivo inválido: {}", e.in_lang(lang))
            }
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.localize(Lang::En, f)
    }
}

/// The help text in English (what `HELP` prints by default).
pub const HELP: &str = "\
commands:
  CREATEFILE name [size]   share a file that is in the shared folder      (COMPARTILHAR)
  DELETEFILE name          stop sharing a file                            (REMOVER)
  SEARCH pattern           find files on the network (case-sensitive      (BUSCAR)
                           substring); the results are numbered
  DOWNLOAD N               download result N of the latest search, from   (BAIXAR)
                           every peer that has the same content
  DOWNLOAD [peer] name     download a file: from that peer (as SEARCH shows it),
                           or from every peer that has it
  LEAVE                    leave the network and exit, once the downloads (SAIR)
                           in progress are done (end of input does the
                           same; Ctrl-C leaves at once)
  HELP                     this text                                      (AJUDA)
A number names a result only when the latest search listed that many; otherwise (no
search yet, or fewer results) it is a file name: with no result 3, DOWNLOAD 3 fetches
a file named \"3\". DOWNLOAD peer 3 always means the file named \"3\".
The Portuguese word on the right of a command works the same.
At a terminal: Tab completes commands and file names, Up/Down recall earlier lines,
Ctrl-C clears the line, Ctrl-D leaves.";

/// The help text in Portuguese.
pub const AJUDA: &str = "\
comandos:
  COMPARTILHAR nome [tamanho]  compartilha um arquivo que está na pasta      (CREATEFILE)
                               compartilhada
  REMOVER nome                 deixa de compartilhar um arquivo              (DELETEFILE)
  BUSCAR padrão                procura arquivos na rede (trecho do nome,     (SEARCH)
                               diferencia maiúsculas); os resultados são
                               numerados
  BAIXAR N                     baixa o resultado N da última busca, de todos (DOWNLOAD)
                               os peers que têm o mesmo conteúdo
  BAIXAR [peer] nome           baixa um arquivo: desse peer (como a busca o
                               mostra), ou de todos os peers que o têm
  SAIR                         sai da rede e encerra, quando terminarem os   (LEAVE)
                               downloads em andamento (o fim da entrada faz
                               o mesmo; Ctrl-C sai na hora)
  AJUDA                        este texto                                    (HELP)
Um número indica um resultado só quando a última busca listou essa quantidade; senão
(nenhuma busca ainda, ou menos resultados) é um nome de arquivo: sem resultado 3,
BAIXAR 3 baixa um arquivo chamado \"3\". BAIXAR peer 3 é sempre o arquivo chamado \"3\".
A palavra em inglês à direita de um comando funciona do mesmo jeito.
No terminal: Tab completa comandos e nomes de arquivo, as setas para cima e para baixo
trazem linhas anteriores, Ctrl-C apaga a linha, Ctrl-D sai.";

/// The help text in `lang`.
pub fn help(lang: Lang) -> &'static str {
    lang.pick(HELP, AJUDA)
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
        // Every word is listed in both help texts.
        for (en, pt, _) in WORDS {
            for text in [HELP, AJUDA] {
                assert!(
                    text.contains(en) && text.contains(pt),
                    "{en}/{pt} in {text}"
                );
            }
        }
    }

    #[test]
    fn errors_speak_the_users_language() {
        let usage = UserCommand::parse("baixar").unwrap_err();
        assert_eq!(
            usage.to_string(),
            "usage: DOWNLOAD N | DOWNLOAD [peer] name"
        );
        assert_eq!(
            usage.in_lang(Lang::Pt).to_string(),
            "uso: BAIXAR N | BAIXAR [peer] nome"
        );
        let unknown = UserCommand::parse("PEGAR x").unwrap_err();
        assert_eq!(
            unknown.in_lang(Lang::Pt).to_string(),
            "comando desconhecido `PEGAR`"
        );
        let bad = UserCommand::parse("REMOVER ../x").unwrap_err();
        assert_eq!(
            bad.in_lang(Lang::Pt).to_string(),
            "nome de arquivo inválido: o nome contém um separador de caminho"
        );
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
