//! How the client's events, errors and failure reasons read in each language: the core
//! hands them over as data ([`napshare_core::client::ClientEvent`] and the types it
//! carries), and this is the one place they become text.

use std::fmt;

use napshare_core::client::{
    copies, ClientError, ClientEvent, DownloadFailure, FileError, LostReason, PeerProblem,
    SearchHit,
};

use crate::lang::{human_size, is_rounded, Lang, Localize};
use crate::text::help;

/// "1 peer", "2 peers" (Portuguese says "peer" too).
fn peers(n: usize) -> String {
    match n {
        1 => "1 peer".into(),
        n => format!("{n} peers"),
    }
}

impl Localize for ClientEvent {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Lang::{En, Pt};
        match (self, lang) {
            (Self::Joined { server }, En) => write!(f, "joined the network at {server}"),
            (Self::Joined { server }, Pt) => write!(f, "entrou na rede em {server}"),
            (Self::Shared { name, size }, En) => write!(f, "sharing {name} ({size} bytes)"),
            (Self::Shared { name, size }, Pt) => {
                write!(f, "compartilhando {name} ({size} bytes)")
            }
            (Self::Unshared { name }, En) => write!(f, "stopped sharing {name}"),
            (Self::Unshared { name }, Pt) => write!(f, "deixou de compartilhar {name}"),
            (Self::SearchDone { pattern, hits }, _) => {
                let n = hits.len();
                match (lang, n) {
                    (En, 1) => write!(f, "search \"{pattern}\": 1 result")?,
                    (En, _) => write!(f, "search \"{pattern}\": {n} results")?,
                    (Pt, 1) => write!(f, "busca \"{pattern}\": 1 resultado")?,
                    (Pt, _) => write!(f, "busca \"{pattern}\": {n} resultados")?,
                }
                if !hits.is_empty() {
                    write!(f, "\n{}", results_table(hits, lang))?;
                }
                Ok(())
            }
            (
                Self::DownloadStarted {
                    name,
                    sources,
                    size,
                },
                _,
            ) => {
                let from = peers(*sources);
                match (size, lang) {
                    (Some(size), En) => {
                        write!(f, "downloading {name} from {from} ({size} bytes)")
                    }
                    (Some(size), Pt) => write!(f, "baixando {name} de {from} ({size} bytes)"),
                    (None, En) => write!(
                        f,
                        "downloading {name} from {from} (the server does not list it there, \
                         so its size is unknown and a cut transfer cannot be told from a \
                         whole one)"
                    ),
                    (None, Pt) => write!(
                        f,
                        "baixando {name} de {from} (o servidor não o lista lá, então o \
                         tamanho é desconhecido e uma transferência interrompida não se \
                         distingue de uma completa)"
                    ),
                }
            }
            (Self::DownloadProgress { name, done, size }, _) => match size {
                Some(size) if *size > 0 => {
                    let pct = *done as f64 * 100.0 / *size as f64;
                    let of = lang.pick("of", "de");
                    write!(f, "{name}: {done} {of} {size} bytes ({pct:.0}%)")
                }
                _ => write!(f, "{name}: {done} bytes"),
            },
            (
                Self::DownloadDone {
                    name,
                    bytes,
                    elapsed,
                    path,
                },
                _,
            ) => {
                let secs = elapsed.as_secs_f64();
                let rate = *bytes as f64 / secs.max(1e-6) / 1_048_576.0;
                let path = path.display();
                match lang {
                    En => write!(
                        f,
                        "downloaded {name}: {bytes} bytes in {secs:.3} s ({rate:.2} MiB/s), \
                         saved as {path}"
                    ),
                    Pt => {
                        let secs = format!("{secs:.3}").replace('.', ",");
                        let rate = format!("{rate:.2}").replace('.', ",");
                        write!(
                            f,
                            "baixado {name}: {bytes} bytes em {secs} s ({rate} MiB/s), \
                             salvo como {path}"
                        )
                    }
                }
            }
            (Self::DownloadFailed { name, reason }, En) => {
                write!(f, "download of {name} failed: {}", reason.in_lang(lang))
            }
            (Self::DownloadFailed { name, reason }, Pt) => {
                write!(f, "falha ao baixar {name}: {}", reason.in_lang(lang))
            }
            (Self::Error(e), En) => write!(f, "error: {}", e.in_lang(lang)),
            (Self::Error(e), Pt) => write!(f, "erro: {}", e.in_lang(lang)),
            (Self::Help, _) => f.write_str(help(lang)),
            (Self::ServerLost { reason, retry_in }, _) => {
                let reason = reason.in_lang(lang);
                match (retry_in, lang) {
                    (None, En) => write!(f, "lost the server: {reason}"),
                    (None, Pt) => write!(f, "perdeu o servidor: {reason}"),
                    (Some(wait), En) => write!(
                        f,
                        "lost the server: {reason}; trying again in {} s",
                        wait.as_secs_f64().ceil()
                    ),
                    (Some(wait), Pt) => write!(
                        f,
                        "perdeu o servidor: {reason}; tentando de novo em {} s",
                        wait.as_secs_f64().ceil()
                    ),
                }
            }
            (Self::LeavingAfterDownloads { downloads: n }, En) => {
                let what = if *n == 1 {
                    "the download"
                } else {
                    "the downloads"
                };
                write!(
                    f,
                    "leaving once {what} in progress ({n}) finish; Ctrl-C leaves now (an \
                     unfinished download resumes next time)"
                )
            }
            (Self::LeavingAfterDownloads { downloads: n }, Pt) => write!(
                f,
                "saindo da rede quando terminarem os downloads em andamento ({n}); Ctrl-C \
                 sai agora (um download incompleto continua da próxima vez)"
            ),
            (Self::Left, En) => f.write_str("left the network"),
            (Self::Left, Pt) => f.write_str("saiu da rede"),
        }
    }
}

/// The numbered results of a search as an aligned table, one row per hit under a header:
///
/// ```text
///   #     size              peer             copies  name
///   1  4.2 MiB (4404019 B)  127.0.0.1:40001       2  my song.mp3
///   2   1000 B              127.0.0.1             -  notes.txt
/// ```
///
/// The name comes last, whole: a long name makes its own row long but never pushes the
/// other columns out of line, and the name can be read back exactly (everything after the
/// two spaces that follow the copies column). The size is exact in bytes when the short
/// form rounds it; `copies` is how many peers hold the same content, known only where the
/// server speaks the hash extension (`-` otherwise).
pub fn results_table(hits: &[SearchHit], lang: Lang) -> String {
    let head = [
        "#",
        lang.pick("size", "tamanho"),
        "peer",
        lang.pick("copies", "cópias"),
        lang.pick("name", "nome"),
    ];
    let rows: Vec<[String; 5]> = hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let size = if is_rounded(h.size) {
                format!("{} ({} B)", human_size(h.size, lang), h.size)
            } else {
                human_size(h.size, lang)
            };
            let copies = copies(hits, h).map_or("-".to_owned(), |n| n.to_string());
            [
                (i + 1).to_string(),
                size,
                h.peer.clone(),
                copies,
                h.name.clone(),
            ]
        })
        .collect();
    let width = |col: usize| {
        rows.iter()
            .map(|r| r[col].chars().count())
            .chain([head[col].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let w = [width(0), width(1), width(2), width(3)];
    let line = |cells: [&str; 5]| {
        // Numbers to the right, text to the left; the name unpadded at the end.
        format!(
            "  {:>w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
        )
    };
    let mut out = vec![line(head)];
    for r in &rows {
        out.push(line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    out.join("\n")
}

impl Localize for ClientError {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Lang::{En, Pt};
        match (self, lang) {
            (Self::Command(e), _) => e.localize(lang, f),
            (Self::CannotShare { name, why }, En) => {
                write!(f, "cannot share {name}: {}", why.in_lang(lang))
            }
            (Self::CannotShare { name, why }, Pt) => {
                write!(
                    f,
                    "não é possível compartilhar {name}: {}",
                    why.in_lang(lang)
                )
            }
            (Self::WrongSize { name, size, given }, En) => {
                write!(f, "cannot share {name}: it has {size} bytes, not {given}")
            }
            (Self::WrongSize { name, size, given }, Pt) => write!(
                f,
                "não é possível compartilhar {name}: ele tem {size} bytes, não {given}"
            ),
            (Self::NotShared { name }, En) => {
                write!(f, "{name} was not shared; telling the server anyway")
            }
            (Self::NotShared { name }, Pt) => write!(
                f,
                "{name} não estava compartilhado; avisando o servidor mesmo assim"
            ),
            (Self::NotConnected, En) => {
                f.write_str("not connected to the server (trying again in a moment): search later")
            }
            (Self::NotConnected, Pt) => f.write_str(
                "sem conexão com o servidor (tentando de novo em instantes): busque mais tarde",
            ),
            (Self::BadName { name, why }, En) => {
                write!(f, "cannot download {name:?}: {}", why.in_lang(lang))
            }
            (Self::BadName { name, why }, Pt) => {
                write!(f, "não é possível baixar {name:?}: {}", why.in_lang(lang))
            }
            (Self::AlreadyDownloading { name }, En) => {
                write!(f, "{name} is already downloading")
            }
            (Self::AlreadyDownloading { name }, Pt) => write!(f, "{name} já está sendo baixado"),
            (Self::ServerRefused { message }, En) => {
                write!(f, "the server refused a request: {message}")
            }
            (Self::ServerRefused { message }, Pt) => {
                write!(f, "o servidor recusou um pedido: {message}")
            }
            (Self::SearchCutOff { pattern }, En) => {
                write!(f, "search \"{pattern}\" was cut off: lost the server")
            }
            (Self::SearchCutOff { pattern }, Pt) => {
                write!(
                    f,
                    "a busca \"{pattern}\" foi interrompida: perdeu o servidor"
                )
            }
        }
    }
}

impl Localize for FileError {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str(lang.pick(
                "no such file in the shared folder",
                "esse arquivo não está na pasta compartilhada",
            )),
            Self::Other(why) => f.write_str(why),
        }
    }
}

impl Localize for DownloadFailure {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Lang::{En, Pt};
        match (self, lang) {
            (Self::NobodyHasIt, En) => {
                f.write_str("no peer on the network has it (SEARCH to see what there is)")
            }
            (Self::NobodyHasIt, Pt) => {
                f.write_str("nenhum peer da rede o tem (BUSCAR mostra o que há)")
            }
            (Self::NoResultOrFile { results }, En) => write!(
                f,
                "the latest search listed {results} result{}, and no peer on the network \
                 has a file of that name (SEARCH, then DOWNLOAD a number from its list)",
                if *results == 1 { "" } else { "s" }
            ),
            (Self::NoResultOrFile { results }, Pt) => write!(
                f,
                "a última busca listou {results} resultado{}, e nenhum peer da rede tem um \
                 arquivo com esse nome (BUSCAR, depois BAIXAR um número da lista)",
                if *results == 1 { "" } else { "s" }
            ),
            (Self::OpenPart(e), En) => write!(f, "cannot open the partial file: {e}"),
            (Self::OpenPart(e), Pt) => {
                write!(f, "não foi possível abrir o arquivo parcial: {e}")
            }
            (Self::Write(e), En) => write!(f, "cannot write the file: {e}"),
            (Self::Write(e), Pt) => write!(f, "não foi possível gravar o arquivo: {e}"),
            (Self::Save(e), En) => write!(f, "cannot save the file: {e}"),
            (Self::Save(e), Pt) => write!(f, "não foi possível salvar o arquivo: {e}"),
            (Self::Peer { peer, problem }, _) => write!(f, "{peer}: {}", problem.in_lang(lang)),
            (Self::NoPeerSentAll, En) => f.write_str("no peer could send the whole file"),
            (Self::NoPeerSentAll, Pt) => {
                f.write_str("nenhum peer conseguiu enviar o arquivo inteiro")
            }
            (Self::NoPeerForRest(last), _) => {
                f.write_str(lang.pick(
                    "no peer could send the rest",
                    "nenhum peer conseguiu enviar o resto",
                ))?;
                match last {
                    Some((peer, problem)) => write!(f, " ({peer}: {})", problem.in_lang(lang)),
                    None => Ok(()),
                }
            }
            (Self::Stopping, En) => f.write_str("the client is stopping"),
            (Self::Stopping, Pt) => f.write_str("o cliente está encerrando"),
        }
    }
}

impl Localize for PeerProblem {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Lang::{En, Pt};
        match (self, lang) {
            (Self::CannotConnect(e), En) => write!(f, "cannot connect: {e}"),
            (Self::CannotConnect(e), Pt) => write!(f, "não foi possível conectar: {e}"),
            (Self::Closed, En) => f.write_str("closed the connection"),
            (Self::Closed, Pt) => f.write_str("fechou a conexão"),
            (Self::StoppedAfter { got, size }, En) => {
                write!(f, "stopped after {got} of {size} bytes")
            }
            (Self::StoppedAfter { got, size }, Pt) => {
                write!(f, "parou depois de {got} de {size} bytes")
            }
            (Self::SentNothing { name }, En) => {
                write!(f, "sent nothing (it does not share {name})")
            }
            (Self::SentNothing { name }, Pt) => {
                write!(f, "não enviou nada (não compartilha {name})")
            }
            (Self::OverlongReply, En) => f.write_str("sent an overlong reply"),
            (Self::OverlongReply, Pt) => f.write_str("enviou uma resposta longa demais"),
            (Self::UnaskedReply, En) => f.write_str("sent a reply nobody asked for"),
            (Self::UnaskedReply, Pt) => f.write_str("enviou uma resposta que ninguém pediu"),
            (Self::WrongRange, En) => f.write_str("sent a range it was not asked for"),
            (Self::WrongRange, Pt) => f.write_str("enviou um trecho que não foi pedido"),
            (Self::OtherSize, En) => f.write_str("lists another size for the file"),
            (Self::OtherSize, Pt) => f.write_str("informa outro tamanho para o arquivo"),
            (Self::Refused { code, message }, En) => write!(f, "refused: {code:?} {message}"),
            (Self::Refused { code, message }, Pt) => write!(f, "recusou: {code:?} {message}"),
            (Self::BadReply(text), En) => write!(f, "sent a bad reply: {text:?}"),
            (Self::BadReply(text), Pt) => write!(f, "enviou uma resposta inválida: {text:?}"),
            (Self::BadPieceHashes, En) => f.write_str("sent piece hashes that do not match"),
            (Self::BadPieceHashes, Pt) => f.write_str("enviou hashes de pedaços que não conferem"),
            (Self::CorruptPiece(i), En) => write!(f, "sent a corrupt piece {i}"),
            (Self::CorruptPiece(i), Pt) => write!(f, "enviou o pedaço {i} corrompido"),
        }
    }
}

impl Localize for LostReason {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Lang::{En, Pt};
        match (self, lang) {
            (Self::Unreachable { server, why }, En) => {
                write!(f, "cannot reach the server at {server}: {why}")
            }
            (Self::Unreachable { server, why }, Pt) => {
                write!(f, "não foi possível alcançar o servidor em {server}: {why}")
            }
            (Self::Closed, En) => f.write_str("the server closed the connection"),
            (Self::Closed, Pt) => f.write_str("o servidor fechou a conexão"),
            (Self::NoAnswer { secs }, En) => {
                write!(f, "the server did not answer within {secs} s")
            }
            (Self::NoAnswer { secs }, Pt) => {
                write!(f, "o servidor não respondeu em {secs} s")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use napshare_core::command::CommandError;
    use napshare_core::hash::ContentHash;

    #[test]
    fn the_results_table_lines_up_and_keeps_names_whole() {
        let hit = |name: &str, peer: &str, size, hash: Option<u8>| SearchHit {
            name: name.into(),
            peer: peer.into(),
            size,
            hash: hash.map(|h| ContentHash([h; 32])),
        };
        let long = "a very long name that would not fit any column - live at the venue (2024).flac";
        let hits = vec![
            hit("my song.mp3", "127.0.0.1:40001", 4_404_019, Some(1)),
            hit("notes.txt", "127.0.0.1", 1000, None),
            hit(long, "10.0.0.12:40002", 4_404_019, Some(1)),
            hit("  spaced  ", "127.0.0.1:40001", 0, Some(2)),
        ];
        let done = ClientEvent::SearchDone {
            pattern: "s".into(),
            hits: hits.clone(),
        };
        assert_eq!(
            done.in_lang(Lang::En).to_string(),
            format!(
                "search \"s\": 4 results\n\
                 \x20 #  size                 peer             copies  name\n\
                 \x20 1  4.2 MiB (4404019 B)  127.0.0.1:40001       2  my song.mp3\n\
                 \x20 2  1000 B               127.0.0.1             -  notes.txt\n\
                 \x20 3  4.2 MiB (4404019 B)  10.0.0.12:40002       2  {long}\n\
                 \x20 4  0 B                  127.0.0.1:40001       1    spaced  "
            )
        );
        assert_eq!(
            ClientEvent::SearchDone {
                pattern: "s".into(),
                hits: hits[..2].to_vec(),
            }
            .in_lang(Lang::Pt)
            .to_string(),
            "busca \"s\": 2 resultados\n\
             \x20 #  tamanho              peer             cópias  nome\n\
             \x20 1  4,2 MiB (4404019 B)  127.0.0.1:40001       1  my song.mp3\n\
             \x20 2  1000 B               127.0.0.1             -  notes.txt"
        );
        let none = ClientEvent::SearchDone {
            pattern: "zzz".into(),
            hits: Vec::new(),
        };
        assert_eq!(
            none.in_lang(Lang::En).to_string(),
            "search \"zzz\": 0 results"
        );
        assert_eq!(
            none.in_lang(Lang::Pt).to_string(),
            "busca \"zzz\": 0 resultados"
        );
    }

    #[test]
    fn errors_are_told_in_the_users_language() {
        let both = |e: &ClientEvent| {
            (
                e.in_lang(Lang::En).to_string(),
                e.in_lang(Lang::Pt).to_string(),
            )
        };
        let not_shared = ClientEvent::Error(ClientError::NotShared {
            name: "nada.txt".into(),
        });
        assert_eq!(
            both(&not_shared),
            (
                "error: nada.txt was not shared; telling the server anyway".to_owned(),
                "erro: nada.txt não estava compartilhado; avisando o servidor mesmo assim"
                    .to_owned()
            )
        );
        let unknown = ClientEvent::Error(ClientError::Command(CommandError::Unknown(
            "FROBNICATE".into(),
        )));
        assert_eq!(
            both(&unknown),
            (
                "error: unknown command `FROBNICATE`".to_owned(),
                "erro: comando desconhecido `FROBNICATE`".to_owned()
            )
        );
        // The help follows a line that is not a command, in either language.
        let help = both(&ClientEvent::Help);
        assert!(help.0.starts_with("commands"), "{}", help.0);
        assert!(help.1.starts_with("comandos"), "{}", help.1);
        assert!(help.1.contains("BAIXAR N"), "{}", help.1);

        let lost = ClientEvent::ServerLost {
            reason: LostReason::Closed,
            retry_in: Some(std::time::Duration::from_secs(2)),
        };
        assert_eq!(
            lost.in_lang(Lang::Pt).to_string(),
            "perdeu o servidor: o servidor fechou a conexão; tentando de novo em 2 s"
        );
        let missing = ClientError::CannotShare {
            name: "x".into(),
            why: FileError::NotFound,
        };
        assert_eq!(
            missing.in_lang(Lang::Pt).to_string(),
            "não é possível compartilhar x: esse arquivo não está na pasta compartilhada"
        );
        let failed = ClientEvent::DownloadFailed {
            name: "3".into(),
            reason: DownloadFailure::NoResultOrFile { results: 2 },
        };
        assert_eq!(
            both(&failed),
            (
                "download of 3 failed: the latest search listed 2 results, and no peer on the \
                 network has a file of that name (SEARCH, then DOWNLOAD a number from its list)"
                    .to_owned(),
                "falha ao baixar 3: a última busca listou 2 resultados, e nenhum peer da rede tem \
                 um arquivo com esse nome (BUSCAR, depois BAIXAR um número da lista)"
                    .to_owned()
            )
        );
    }
}
