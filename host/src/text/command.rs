//! How the user's commands read in each language: their words, their usage, the help
//! text and the errors a mistyped line gets. The core parses both languages' words
//! ([`napshare_core::command::WORDS`]); this is the text around them.

use std::fmt;

use napshare_core::command::{CommandError, Verb, WORDS};
use napshare_core::names::BadName;

use crate::lang::{Lang, Localize};

/// The command word in `lang`.
pub fn word(verb: Verb, lang: Lang) -> &'static str {
    let (en, pt, _) = WORDS
        .iter()
        .find(|(_, _, v)| *v == verb)
        .expect("every verb has its words");
    lang.pick(en, pt)
}

/// How the command is used, in `lang`.
pub fn usage(verb: Verb, lang: Lang) -> String {
    let args = match (verb, lang) {
        (Verb::CreateFile, Lang::En) => " name [size]",
        (Verb::CreateFile, Lang::Pt) => " nome [tamanho]",
        (Verb::DeleteFile, Lang::En) => " name",
        (Verb::DeleteFile, Lang::Pt) => " nome",
        (Verb::Search, Lang::En) => " [pattern]",
        (Verb::Search, Lang::Pt) => " [padrão]",
        (Verb::Download, Lang::En) => " N | DOWNLOAD [peer] name",
        (Verb::Download, Lang::Pt) => " N | BAIXAR [peer] nome",
        (Verb::Leave | Verb::Help, _) => "",
    };
    format!("{}{args}", word(verb, lang))
}

impl Localize for CommandError {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, lang) {
            (Self::Unknown(w), Lang::En) => write!(f, "unknown command `{w}`"),
            (Self::Unknown(w), Lang::Pt) => write!(f, "comando desconhecido `{w}`"),
            (Self::Usage(v), Lang::En) => write!(f, "usage: {}", usage(*v, lang)),
            (Self::Usage(v), Lang::Pt) => write!(f, "uso: {}", usage(*v, lang)),
            (Self::BadName(e), Lang::En) => write!(f, "bad file name: {}", e.in_lang(lang)),
            (Self::BadName(e), Lang::Pt) => {
                write!(f, "nome de arquivo inválido: {}", e.in_lang(lang))
            }
        }
    }
}

impl Localize for BadName {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self, lang) {
            (Self::Empty, Lang::En) => "the name is empty",
            (Self::Empty, Lang::Pt) => "o nome está vazio",
            (Self::Dots, Lang::En) => "the name is `.` or `..`",
            (Self::Dots, Lang::Pt) => "o nome é `.` ou `..`",
            (Self::Separator, Lang::En) => "the name contains a path separator",
            (Self::Separator, Lang::Pt) => "o nome contém um separador de caminho",
            (Self::Control, Lang::En) => "the name contains a control character",
            (Self::Control, Lang::Pt) => "o nome contém um caractere de controle",
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use napshare_core::command::UserCommand;

    #[test]
    fn errors_speak_the_users_language() {
        let usage = UserCommand::parse("baixar").unwrap_err();
        assert_eq!(
            usage.in_lang(Lang::En).to_string(),
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
    fn every_word_is_in_both_help_texts() {
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
}
