//! The file server: answers peers' requests for files this client shares.
//!
//! A classic peer sends one `GET name range` and gets raw bytes until the close (or a close
//! with no bytes when the file is not shared). A napshare peer sends any number of `XGET`
//! and `XPIECES` requests on one connection and gets a framed reply to each, in order: a
//! header line, then exactly the bytes it announces, or an `ERROR` line.
//!
//! Files are found by name or hash in this client's own table, never by joining a name
//! onto a path as given, so no request can reach a file that was not shared.

use std::time::Instant;

use super::{Client, Command, Role, QUIET};
use crate::hash::ContentHash;
use crate::wire::{ByteRange, GetLine, LineBuf, PeerError, PeerReply, PeerRequest, MAX_LINE};
use crate::ConnId;

/// One connection to our file server.
#[derive(Debug)]
pub(super) struct Upload {
    pub(super) rx: LineBuf,
    /// A file range is being written by the driver; later requests wait for it.
    pub(super) sending: bool,
    /// The peer spoke the extension (`XGET`, `XPIECES`): errors get an `ERROR` reply.
    /// Before that, anything but a request closes the connection with no bytes, the
    /// classic error signal, so a classic peer never takes an error text for a file.
    pub(super) ext: bool,
    /// When an unterminated request is taken as whole: some classic peers send `GET`
    /// with no line ending and wait.
    pub(super) partial_due: Option<Instant>,
}

impl Upload {
    pub(super) fn new() -> Self {
        Self {
            rx: LineBuf::new(MAX_LINE),
            sending: false,
            ext: false,
            partial_due: None,
        }
    }
}

impl Client {
    /// Bytes from a peer of our file server.
    pub(super) fn upload_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if let Some(Role::Upload(up)) = self.roles.get_mut(&conn) {
            up.rx.extend(data);
        }
        self.serve_requests(conn);
        if let Some(Role::Upload(up)) = self.roles.get_mut(&conn) {
            // Only a last line with no end yet waits for the quiet time.
            let rest = up.rx.partial();
            up.partial_due = (!rest.is_empty() && !rest.contains(&b'\n')).then_some(now + QUIET);
        }
    }

    /// Ends the unterminated requests that waited [`QUIET`], and answers them.
    pub(super) fn upload_timeouts(&mut self, now: Instant) {
        let due: Vec<ConnId> = self
            .roles
            .iter()
            .filter_map(|(conn, role)| match role {
                Role::Upload(up) if up.partial_due.is_some_and(|d| d <= now) => Some(*conn),
                _ => None,
            })
            .collect();
        for conn in due {
            if let Some(Role::Upload(up)) = self.roles.get_mut(&conn) {
                up.partial_due = None;
                up.rx.extend(b"\n");
            }
            self.serve_requests(conn);
        }
    }

    /// The earliest unterminated request's deadline.
    pub(super) fn upload_deadline(&self) -> Option<Instant> {
        self.roles
            .values()
            .filter_map(|role| match role {
                Role::Upload(up) => up.partial_due,
                _ => None,
            })
            .min()
    }

    /// Answers the requests buffered on `conn`, one at a time.
    pub(super) fn serve_requests(&mut self, conn: ConnId) {
        loop {
            let Some(Role::Upload(up)) = self.roles.get_mut(&conn) else {
                return;
            };
            if up.sending {
                return;
            }
            let line = match up.rx.next_line() {
                None => return,
                Some(Ok(l)) if l.iter().all(u8::is_ascii_whitespace) => continue,
                Some(Ok(l)) => String::from_utf8_lossy(l).into_owned(),
                Some(Err(_)) => return self.drop_upload(conn),
            };
            if line.starts_with("GET ") && !up.ext {
                return self.serve_classic(conn, &line);
            }
            let request = PeerRequest::parse(&line);
            up.ext |= request.is_ok();
            if !up.ext {
                return self.drop_upload(conn);
            }
            let mut out = Vec::new();
            match request {
                Ok(PeerRequest::Get { hash, start, len }) => {
                    self.serve_range(conn, hash, start, len, &mut out);
                }
                Ok(PeerRequest::Pieces { hash }) => match self.shared_by_hash(hash) {
                    Some((_, pieces)) => {
                        let (size, list) = (pieces.size(), pieces.pieces());
                        let count = list.len() as u64;
                        PeerReply::Pieces { size, count }.encode(&mut out);
                        out.extend(list.iter().flatten());
                    }
                    None => refuse(&mut out, PeerError::NotFound, "not shared here"),
                },
                Err(_) => refuse(&mut out, PeerError::BadRequest, "not understood"),
            }
            self.send(conn, out);
        }
    }

    /// `XGET`: the header now, the bytes by the driver.
    fn serve_range(
        &mut self,
        conn: ConnId,
        hash: ContentHash,
        start: u64,
        len: u64,
        out: &mut Vec<u8>,
    ) {
        let Some((name, pieces)) = self.shared_by_hash(hash) else {
            return refuse(out, PeerError::NotFound, "not shared here");
        };
        let end = start.checked_add(len);
        if end.is_none_or(|end| end > pieces.size()) {
            return refuse(out, PeerError::BadRange, "past the end of the file");
        }
        PeerReply::Data { hash, start, len }.encode(out);
        if len == 0 {
            return;
        }
        let path = self.config.shared_dir.join(name);
        let range = ByteRange {
            start,
            end: Some(start + len - 1),
        };
        let header = std::mem::take(out);
        self.send(conn, header);
        if let Some(Role::Upload(up)) = self.roles.get_mut(&conn) {
            up.sending = true;
        }
        self.commands.push_back(Command::SendFile {
            conn,
            path,
            range,
            close: false,
        });
    }

    /// A classic `GET`: the bytes, then the close; a close with no bytes when the file is
    /// not shared.
    fn serve_classic(&mut self, conn: ConnId, line: &str) {
        let found = GetLine::parse(line)
            .ok()
            .and_then(|g| g.readings().find(|r| self.shared.contains_key(r.name)));
        let Some(get) = found else {
            return self.drop_upload(conn);
        };
        // The name is a key of our table, checked when it was shared.
        let path = self.config.shared_dir.join(get.name);
        if let Some(Role::Upload(up)) = self.roles.get_mut(&conn) {
            up.sending = true;
        }
        self.commands.push_back(Command::SendFile {
            conn,
            path,
            range: get.range,
            close: true,
        });
    }

    /// The file of a [`Command::SendFile`] on `conn` could not be opened (it went away,
    /// shrank or stopped being a regular file since it was shared). A classic peer gets
    /// the close with no bytes that is its error signal; a napshare peer already has the
    /// reply's header, which announced bytes it cannot be given, so its connection ends
    /// too and it fetches the range elsewhere.
    pub fn handle_upload_failed(&mut self, _now: Instant, conn: ConnId, _why: &str) {
        if matches!(self.roles.get(&conn), Some(Role::Upload(_))) {
            self.drop_upload(conn);
        }
    }

    fn drop_upload(&mut self, conn: ConnId) {
        self.roles.remove(&conn);
        self.commands.push_back(Command::Close { conn });
    }

    fn shared_by_hash(&self, hash: ContentHash) -> Option<(&str, &crate::hash::PieceHashes)> {
        let name = self.by_hash.get(&hash)?;
        self.shared.get(name).map(|p| (name.as_str(), p))
    }
}

fn refuse(out: &mut Vec<u8>, code: PeerError, message: &str) {
    PeerReply::Error {
        code,
        message: message.into(),
    }
    .encode(out);
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::client::tests::{config, epoch};
    use crate::client::SharedFile;
    use crate::hash::FileHasher;

    /// A client sharing `a.txt` (5 bytes) and a peer connected to its file server; what
    /// the peer's `request` makes it do when the file cannot be opened.
    fn upload_fails(request: &[u8]) -> Vec<Command> {
        let now = epoch();
        let mut hasher = FileHasher::new(5);
        hasher.update(b"hello");
        let pieces = hasher.finish().unwrap();
        let root = pieces.root().to_string();
        let files = vec![SharedFile {
            name: "a.txt".into(),
            pieces,
        }];
        let mut c = Client::new(now, config(), files);
        let peer: SocketAddr = "10.0.0.7:4000".parse().unwrap();
        let conn = c.handle_accept(now, peer);
        let request = String::from_utf8_lossy(request).replace("HASH", &root);
        c.handle_bytes(now, conn, request.as_bytes());
        let drained = |c: &mut Client| std::iter::from_fn(|| c.poll_command()).collect::<Vec<_>>();
        let asked = drained(&mut c);
        assert!(
            matches!(asked.last(), Some(Command::SendFile { conn: c, .. }) if *c == conn),
            "{asked:?}"
        );
        c.handle_upload_failed(now, conn, "No such file or directory");
        drained(&mut c)
    }

    /// The core, not the runtime, decides what a peer gets when the file it asked for can
    /// no longer be opened: the connection ends (a classic peer reads that as the error;
    /// a napshare peer was promised bytes it cannot get, and fetches them elsewhere).
    #[test]
    fn a_file_that_cannot_be_opened_ends_the_upload() {
        for request in [&b"GET a.txt 0\n"[..], b"XGET HASH 0 5\n"] {
            let then = upload_fails(request);
            assert!(
                matches!(then[..], [Command::Close { .. }]),
                "{}: {then:?}",
                String::from_utf8_lossy(request)
            );
        }
    }
}
