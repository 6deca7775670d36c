//! The command line, defined once for every runtime.

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::help;
use crate::lang::Lang;
use crate::lang::Localize;
use crate::Say;

/// `--idle-timeout`'s default: the core's, chosen so that a frozen client leaves the index
/// within [`napshare_core::server::FROZEN_BOUND`].
const DEFAULT_IDLE_SECS: u64 = napshare_core::server::DEFAULT_IDLE_TIMEOUT.as_secs();

/// napshare: a Napster-style peer-to-peer file sharer.
///
/// Run one index server, then any number of clients; clients search the server and
/// download straight from each other. With no arguments it asks, like the seed, which one
/// to run.
#[derive(Debug, Parser)]
#[command(name = "napshare", version, about, long_about, after_help = help::TOP)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Option<Mode>,
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum Mode {
    /// Run the index server.
    #[command(alias = "servidor", after_help = help::SERVER)]
    Server(ServerArgs),
    /// Run a client: join a server, share a folder, then read commands from standard input.
    #[command(alias = "cliente", after_help = help::CLIENT)]
    Client(ClientArgs),
    /// Search the network once, print the results and exit (for scripts).
    #[command(after_help = help::SEARCH)]
    Search(SearchArgs),
    /// Download one file by name from every peer that has it, then exit (for scripts).
    #[command(after_help = help::GET)]
    Get(GetArgs),
    /// Share a folder with no prompt until stopped (SIGINT or SIGTERM).
    #[command(after_help = help::SHARE)]
    Share(ShareArgs),
    /// Run one index replica of a cluster's partition (see `server --nats`).
    #[command(after_help = help::INDEX)]
    Index(IndexArgs),
    /// Print a shell completion script on standard output.
    #[command(after_help = help::COMPLETIONS)]
    Completions(CompletionsArgs),
}

#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct ServerArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "0.0.0.0:1234")]
    pub listen: SocketAddr,
    /// Most results one search returns.
    #[arg(long, default_value_t = 1000)]
    pub max_results: usize,
    /// Most files one client may share; more are refused.
    #[arg(long, default_value_t = 10_000)]
    pub max_files: usize,
    /// Longest request line in bytes, line end included; a longer line is dropped.
    #[arg(long, default_value_t = napshare_core::wire::MAX_LINE)]
    pub max_line: usize,
    /// Seconds a new connection may take to send JOIN before it is closed.
    #[arg(long, default_value_t = 10)]
    pub join_timeout: u64,
    /// Seconds a napshare client may stay silent (it pings every third of this) before it
    /// is taken for gone and its files leave the index: a frozen or unplugged client is
    /// gone from searches within this time; 0 never. Classic clients, which cannot ping,
    /// are never timed out.
    #[arg(long, default_value_t = DEFAULT_IDLE_SECS)]
    pub idle_timeout: u64,
    /// Most connections open at once; more are closed as they come.
    #[arg(long, default_value_t = 16_384)]
    pub max_connections: usize,
    /// Most reply bytes waiting for one client; a client that stops reading past this is
    /// dropped.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_queued: usize,
    /// Run as a gateway of the NATS cluster at these URLs (comma-separated): what clients
    /// share is published to the cluster and searches are answered from all of it.
    #[arg(long, value_delimiter = ',', value_name = "URL")]
    pub nats: Vec<String>,
    /// Milliseconds a gateway waits for the index replicas' answers to a search; a
    /// partition that has not answered by then is left out of that result.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub search_deadline: u64,
}

#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct IndexArgs {
    /// The NATS cluster's URLs (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "URL", required = true)]
    pub nats: Vec<String>,
    /// Which partition this replica holds, as K/P: partition K (from 0) of P.
    #[arg(long, value_parser = partition, value_name = "K/P")]
    pub partition: (u32, u32),
}

/// `K/P` with K < P.
fn partition(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not K/P with 0 <= K < P, such as 0/4");
    let (k, p) = text.split_once('/').ok_or_else(bad)?;
    let (k, p): (u32, u32) = (k.parse().map_err(|_| bad())?, p.parse().map_err(|_| bad())?);
    if k >= p {
        return Err(bad());
    }
    Ok((k, p))
}

#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct ClientArgs {
    /// The index server, as HOST or HOST:PORT (port 1234 when absent).
    #[arg(long)]
    pub server: String,
    /// Folder whose files are shared.
    #[arg(long, default_value = "public")]
    pub shared: PathBuf,
    /// Folder downloads are saved to.
    #[arg(long, default_value = "downloads")]
    pub downloads: PathBuf,
    /// Address of this client's file server [default: 0.0.0.0:1235, or a free port when
    /// 1235 is taken].
    #[arg(long)]
    pub peer_listen: Option<SocketAddr>,
    /// Do not watch the shared folder. By default a file copied into, changed in, renamed
    /// in or removed from it is shared, shared again or no longer shared within about a
    /// second; with this flag only CREATEFILE and DELETEFILE do that.
    #[arg(long)]
    pub no_watch: bool,
}

#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct SearchArgs {
    /// The index server, as HOST or HOST:PORT (port 1234 when absent).
    #[arg(long)]
    pub server: String,
    /// Case-sensitive part of the file names to find; '' finds everything.
    pub pattern: String,
    /// Print the results as one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct GetArgs {
    /// The index server, as HOST or HOST:PORT (port 1234 when absent).
    #[arg(long)]
    pub server: String,
    /// The file's exact name, as a search shows it.
    #[arg(value_parser = file_name)]
    pub name: String,
    /// Folder to save the file in (created if missing); a partial NAME.part left there by
    /// an earlier try is resumed.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Print the outcome as one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct ShareArgs {
    /// The index server, as HOST or HOST:PORT (port 1234 when absent).
    #[arg(long)]
    pub server: String,
    /// The folder whose files are shared; it must exist.
    pub dir: PathBuf,
    /// Address of the file server [default: 0.0.0.0:1235, or a free port when 1235 is
    /// taken].
    #[arg(long)]
    pub peer_listen: Option<SocketAddr>,
    /// Do not watch the folder: share only what is in it at start.
    #[arg(long)]
    pub no_watch: bool,
}

#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

/// A name `get` can fetch: the file names the protocol allows.
fn file_name(text: &str) -> Result<String, String> {
    napshare_core::names::check_file_name(text)
        .map(|()| text.to_owned())
        .map_err(|e| e.in_lang(crate::lang::Lang::En).to_string())
}

impl Cli {
    /// Parses the process's arguments for the binary `bin` (its name in help and errors),
    /// exiting with a usage message when they are wrong.
    pub fn from_env(bin: &'static str) -> Self {
        let matches = Self::command().name(bin).bin_name(bin).get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

impl ServerArgs {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            max_results: 1000,
            max_files: 10_000,
            max_line: napshare_core::wire::MAX_LINE,
            join_timeout: 10,
            idle_timeout: DEFAULT_IDLE_SECS,
            max_connections: 16_384,
            max_queued: 1 << 20,
            nats: Vec::new(),
            search_deadline: 100,
        }
    }
}

impl ClientArgs {
    pub fn new(server: String) -> Self {
        Self {
            server,
            shared: "public".into(),
            downloads: "downloads".into(),
            peer_listen: None,
            no_watch: false,
        }
    }
}

/// Asks on `input`/`output` whether to run a server or a client (and, for a client, the
/// server's address), as the seed does, in `lang`. Accepts English and the seed's
/// Portuguese words.
pub fn ask_mode(lang: Lang, input: &mut impl BufRead, output: &mut impl Write) -> io::Result<Mode> {
    let mut ask = |question: &str, output: &mut dyn Write| -> io::Result<String> {
        write!(output, "{question}")?;
        output.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            let no_answer = Say::NoAnswer.text(lang);
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, no_answer));
        }
        Ok(line.trim().to_owned())
    };
    loop {
        let answer = ask(&Say::AskMode.text(lang), output)?;
        match answer.to_lowercase().as_str() {
            "server" | "servidor" | "s" => {
                return Ok(Mode::Server(ServerArgs::new(SocketAddr::from((
                    [0, 0, 0, 0],
                    napshare_core::wire::CLASSIC_SERVER_PORT,
                )))))
            }
            "client" | "cliente" | "c" => {
                let server = ask(&Say::AskServer.text(lang), output)?;
                let server = if server.is_empty() {
                    "127.0.0.1".to_owned()
                } else {
                    server
                };
                return Ok(Mode::Client(ClientArgs::new(server)));
            }
            _ => writeln!(output, "{}", Say::AnswerServerOrClient.text(lang))?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_idle_timeout_is_the_cores() {
        let cli = Cli::try_parse_from(["napshare", "server"]).unwrap();
        let Some(Mode::Server(args)) = cli.mode else {
            panic!("not a server: {cli:?}");
        };
        let secs = std::time::Duration::from_secs(args.idle_timeout);
        assert_eq!(secs, napshare_core::server::DEFAULT_IDLE_TIMEOUT);
        assert!(secs <= napshare_core::server::FROZEN_BOUND);
        assert_eq!(ServerArgs::new(args.listen).idle_timeout, args.idle_timeout);
    }

    #[test]
    fn asks_until_it_understands() {
        let mut input = io::Cursor::new(b"what\ncliente\n10.0.0.1:999\n".to_vec());
        let mut out = Vec::new();
        let mode = ask_mode(Lang::En, &mut input, &mut out).unwrap();
        assert_eq!(mode, Mode::Client(ClientArgs::new("10.0.0.1:999".into())));
        assert!(String::from_utf8(out).unwrap().contains("please answer"));
    }

    #[test]
    fn asks_in_portuguese_when_the_locale_says_so() {
        let mut input = io::Cursor::new(
            b"hein
servidor
"
            .to_vec(),
        );
        let mut out = Vec::new();
        let mode = ask_mode(Lang::Pt, &mut input, &mut out).unwrap();
        assert!(matches!(mode, Mode::Server(_)));
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "Executar como servidor ou cliente? (servidor/cliente): \
             por favor, responda servidor ou cliente\n\
             Executar como servidor ou cliente? (servidor/cliente): "
        );
    }

    #[test]
    fn a_replica_names_its_partition() {
        let parse = |p: &str| {
            Cli::try_parse_from([
                "napshare",
                "index",
                "--nats",
                "nats://a:1,nats://b:2",
                "--partition",
                p,
            ])
        };
        let Some(Mode::Index(args)) = parse("1/4").unwrap().mode else {
            panic!("not index");
        };
        assert_eq!(args.partition, (1, 4));
        assert_eq!(args.nats, ["nats://a:1", "nats://b:2"]);
        for bad in ["4/4", "1", "a/b", "-1/2"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seed_words_are_subcommands() {
        let cli = Cli::try_parse_from(["napshare", "servidor", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(cli.mode, Some(Mode::Server(_))));
        let cli = Cli::try_parse_from(["napshare", "cliente", "--server", "h"]).unwrap();
        assert!(matches!(cli.mode, Some(Mode::Client(_))));
    }
}
