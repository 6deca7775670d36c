//! Examples and exit statuses shown after each subcommand's `--help`.

/// After `napshare --help`.
pub const TOP: &str = "\
Examples:
  napshare server                                  # the index server on 0.0.0.0:1234
  napshare client --server 192.168.1.10            # a client; type HELP for its commands
  napshare search --server 192.168.1.10 --json song
  napshare get --server 192.168.1.10 --out ~/in 'my song.mp3'
  napshare share --server 192.168.1.10 ~/public
  napshare completions bash > ~/.local/share/bash-completion/completions/napshare

Exit status:
  0  done (search: something found; get: the file is saved)
  1  error: the server cannot be reached or was lost, a file or folder cannot be used,
     or the command was stopped before it was done
  2  usage: bad arguments
  3  nothing found (search: no results; get: no peer lists that name)
  4  get: the download failed (no peer could send it whole, or it could not be saved)

Run `napshare COMMAND --help` for a command's options and examples.";

/// After `napshare server --help`.
pub const SERVER: &str = "\
Examples:
  napshare server                              # listen on 0.0.0.0:1234, like the seed
  napshare server --listen 127.0.0.1:0         # a free loopback port; the address is printed
  napshare server --max-results 100 --idle-timeout 0
  napshare server --nats nats://10.0.0.1:4222,nats://10.0.0.2:4222   # a cluster gateway

Runs until stopped with SIGINT (Ctrl-C) or SIGTERM, then exits with status 0.";

/// After `napshare client --help`.
pub const CLIENT: &str = "\
Examples:
  napshare client --server 192.168.1.10
  napshare client --server index.lan:4000 --shared ~/public --downloads ~/incoming
  printf 'SEARCH song\\nDOWNLOAD 1\\n' | napshare client --server 127.0.0.1
  LANG=pt_BR.UTF-8 napshare client --server 192.168.1.10   # em português (BUSCAR, BAIXAR)

On a terminal the client shows a prompt: line editing, history (Up/Down, kept between
runs), Tab completion of commands and file names; from a pipe it reads plain lines.
Type HELP for the commands. Files copied into, changed in or removed from the shared
folder are shared, shared again or no longer shared within about a second (--no-watch
turns this off). End of input leaves the network, as LEAVE does.
Exit status: 0 after LEAVE, 1 when the server cannot be reached at start.";

/// After `napshare search --help`.
pub const SEARCH: &str = "\
Examples:
  napshare search --server 192.168.1.10 song
  napshare search --server 192.168.1.10 ''                 # everything on the network
  napshare search --server 192.168.1.10 --json .mp3 | jq -r '.results[].name'

Joins, searches, prints the results on standard output (a table, or with --json one
object: {\"pattern\": ..., \"results\": [{\"name\", \"size\", \"peer\", \"hash\"}]}, hash null
when the peer does not give one), leaves. Everything else goes to standard error.

Exit status: 0 found something, 1 error (server unreachable or lost), 2 usage,
3 nothing found.";

/// After `napshare get --help`.
pub const GET: &str = "\
Examples:
  napshare get --server 192.168.1.10 'my song.mp3'        # saved as ./my song.mp3
  napshare get --server 192.168.1.10 --out ~/in --json 'my song.mp3' | jq -r .path

Joins, searches for NAME, downloads it from every peer that lists the content most of them
have (checked piece by piece when they give its hash; a partial file from an earlier try is
resumed), leaves. Prints the saved path on standard output, or with --json one object:
{\"name\", \"path\", \"size\", \"hash\", \"elapsed\"} (elapsed in seconds), or
{\"error\", \"status\"} when it did not work. Progress goes to standard error.

Exit status: 0 saved, 1 error (server unreachable or lost), 2 usage, 3 no peer lists NAME,
4 the download failed.";

/// After `napshare share --help`.
pub const SHARE: &str = "\
Examples:
  napshare share --server 192.168.1.10 ~/public
  napshare share --server 192.168.1.10 --peer-listen 0.0.0.0:6000 ./public &

Shares the files of DIR, reading no commands, until stopped with SIGINT (Ctrl-C) or
SIGTERM: it then leaves the network and exits with status 0. While running it behaves as
a client does: files copied into, changed in or removed from DIR are shared, shared again
or no longer shared within about a second (--no-watch turns this off), and it reconnects
to a lost server. Exit status 1 when DIR is not a folder or
the server cannot be reached at start.";

/// After `napshare completions --help`.
pub const COMPLETIONS: &str = "\
Examples:
  napshare completions bash > ~/.local/share/bash-completion/completions/napshare
  napshare completions zsh > ~/.zfunc/_napshare        # with ~/.zfunc in $fpath
  napshare completions fish > ~/.config/fish/completions/napshare.fish
  napshare completions powershell >> $PROFILE";

/// After `napshare index --help`.
pub const INDEX: &str = "\
Examples:
  napshare index --nats nats://127.0.0.1:4222 --partition 0/2
  napshare index --nats nats://10.0.0.1:4222,nats://10.0.0.2:4222 --partition 1/2

Holds partition K of P of the cluster's index in memory, rebuilt from NATS JetStream at
start, and answers the gateways' searches for it. Start one or more replicas of every
partition (all with the same P); replicas of one partition share its searches and stand in
for each other. Prints \"partition K/P ready\" once it has caught up. Runs until stopped
with SIGINT or SIGTERM.";

#[cfg(test)]
mod tests {
    use napshare_core::client::exit;

    #[test]
    fn exit_statuses_in_the_help_are_the_clients() {
        for (code, word) in [
            (exit::OK, "done"),
            (exit::ERROR, "error"),
            (exit::NOT_FOUND, "nothing found"),
            (exit::FAILED, "get: the download failed"),
        ] {
            let line = format!("  {code}  {word}");
            assert!(super::TOP.contains(&line), "{line:?} is not in the help");
        }
    }
}
