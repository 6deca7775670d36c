//! The file server: answers peers' `GET` requests for files this client shares.

use super::{Client, Command, Role};
use crate::wire::GetLine;
use crate::ConnId;

impl Client {
    pub(super) fn on_get(&mut self, conn: ConnId, line: Option<&str>) {
        let found = line
            .and_then(|l| GetLine::parse(l).ok())
            .and_then(|g| g.readings().find(|r| self.shared.contains_key(r.name)));
        match found {
            Some(get) => {
                // The name is a key of our table; the path is built only from a name we
                // checked when it was shared.
                let path = self.config.shared_dir.join(get.name);
                self.roles.insert(conn, Role::Serving);
                self.commands.push_back(Command::SendFile {
                    conn,
                    path,
                    range: get.range,
                });
            }
            None => {
                // Classic error signal: close with no bytes.
                self.roles.remove(&conn);
                self.commands.push_back(Command::Close { conn });
            }
        }
    }
}
