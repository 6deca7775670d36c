//! What a `napshare` process says outside its client's events: the lines it prints as it
//! starts and stops, its start-up errors and the questions of the interactive start, in
//! the user's language. The locale is read here, once, and nowhere in the core proper.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::lang::{Lang, Localize};

/// The language of the process's locale: `LC_ALL`, then `LC_MESSAGES`, then `LANG` (see
/// [`Lang::from_locale`]).
pub fn lang_from_env() -> Lang {
    let var = |name| std::env::var(name).ok();
    Lang::from_locale(
        var("LC_ALL").as_deref(),
        var("LC_MESSAGES").as_deref(),
        var("LANG").as_deref(),
    )
}

/// One message of the host.
#[derive(Debug, Clone)]
pub enum Say {
    ServerListening(SocketAddr),
    ServerStopping,
    CannotListen(SocketAddr, String),
    CannotWatchSignals(String),
    ServerStopped(String),
    CannotResolve(String, String),
    CannotStartFileServer(String),
    /// Where the file server listens, and whether the classic port was taken.
    FileServerListening(SocketAddr, bool),
    CannotReadShared(PathBuf, String),
    NameCannotBeShared(PathBuf),
    CannotCreateDownloads(PathBuf, String),
    /// The interactive start's questions, and its complaint about an answer.
    AskMode,
    AskServer,
    AnswerServerOrClient,
    NoAnswer,
}

impl Localize for Say {
    fn localize(&self, lang: Lang, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Lang::{En, Pt};
        match (self, lang) {
            (Self::ServerListening(a), En) => write!(f, "napshare server listening on {a}"),
            (Self::ServerListening(a), Pt) => write!(f, "servidor napshare escutando em {a}"),
            (Self::ServerStopping, En) => f.write_str("napshare server stopping"),
            (Self::ServerStopping, Pt) => f.write_str("servidor napshare encerrando"),
            (Self::CannotListen(a, e), En) => write!(f, "cannot listen on {a}: {e}"),
            (Self::CannotListen(a, e), Pt) => {
                write!(f, "não foi possível escutar em {a}: {e}")
            }
            (Self::CannotWatchSignals(e), En) => write!(f, "cannot watch for stop signals: {e}"),
            (Self::CannotWatchSignals(e), Pt) => {
                write!(f, "não foi possível observar os sinais de parada: {e}")
            }
            (Self::ServerStopped(e), En) => write!(f, "server stopped: {e}"),
            (Self::ServerStopped(e), Pt) => write!(f, "o servidor parou: {e}"),
            (Self::CannotResolve(s, e), En) => write!(f, "cannot resolve server {s}: {e}"),
            (Self::CannotResolve(s, e), Pt) => {
                write!(f, "não foi possível resolver o servidor {s}: {e}")
            }
            (Self::CannotStartFileServer(e), En) => {
                write!(f, "cannot start the file server: {e}")
            }
            (Self::CannotStartFileServer(e), Pt) => {
                write!(f, "não foi possível iniciar o servidor de arquivos: {e}")
            }
            (Self::FileServerListening(a, false), En) => {
                write!(f, "file server listening on {a}")
            }
            (Self::FileServerListening(a, true), En) => {
                write!(f, "port 1235 is taken; file server listening on {a}")
            }
            (Self::FileServerListening(a, false), Pt) => {
                write!(f, "servidor de arquivos escutando em {a}")
            }
            (Self::FileServerListening(a, true), Pt) => write!(
                f,
                "a porta 1235 está ocupada; servidor de arquivos escutando em {a}"
            ),
            (Self::CannotReadShared(p, e), En) => {
                write!(f, "cannot read shared folder {}: {e}", p.display())
            }
            (Self::CannotReadShared(p, e), Pt) => write!(
                f,
                "não foi possível ler a pasta compartilhada {}: {e}",
                p.display()
            ),
            (Self::NameCannotBeShared(p), En) => {
                write!(f, "not sharing {}: its name cannot be shared", p.display())
            }
            (Self::NameCannotBeShared(p), Pt) => write!(
                f,
                "{} não será compartilhado: o nome não pode ser compartilhado",
                p.display()
            ),
            (Self::CannotCreateDownloads(p, e), En) => {
                write!(f, "cannot create downloads folder {}: {e}", p.display())
            }
            (Self::CannotCreateDownloads(p, e), Pt) => write!(
                f,
                "não foi possível criar a pasta de downloads {}: {e}",
                p.display()
            ),
            (Self::AskMode, En) => f.write_str("Run as server or client? (servidor/cliente): "),
            (Self::AskMode, Pt) => {
                f.write_str("Executar como servidor ou cliente? (servidor/cliente): ")
            }
            (Self::AskServer, En) => f.write_str("Server address (ip[:port]): "),
            (Self::AskServer, Pt) => f.write_str("Endereço do servidor (ip[:porta]): "),
            (Self::AnswerServerOrClient, En) => f.write_str("please answer server or client"),
            (Self::AnswerServerOrClient, Pt) => {
                f.write_str("por favor, responda servidor ou cliente")
            }
            (Self::NoAnswer, En) => f.write_str("no answer"),
            (Self::NoAnswer, Pt) => f.write_str("sem resposta"),
        }
    }
}

impl Say {
    /// The message in `lang`, as a `String`.
    pub fn text(&self, lang: Lang) -> String {
        self.in_lang(lang).to_string()
    }
}
