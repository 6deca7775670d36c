//! Sending a file range to a socket: by `sendfile(2)`, which hands the range to the kernel
//! with no copy through user space, or by reading it into a buffer and writing that.
//! `benches/upload.rs` measures both; BENCHMARKS.md has the numbers behind [`METHOD`].

use std::io::{self, Write};
use std::os::fd::AsFd;

use napshare_host::Upload;

/// How file ranges are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Sendfile,
    ReadWrite,
}

/// The method uploads use: the faster one in `benches/upload.rs`. On the project's
/// machine read/write beat `sendfile` by about a third on loopback (BENCHMARKS.md), so
/// that is what uploads use; `sendfile` stays for the benchmark to re-measure.
pub const METHOD: Method = Method::ReadWrite;

/// Largest span handed to one `sendfile` call.
const SPAN: u64 = 1 << 20;

/// Writes as much of `up` as `sock` takes now; `Ok(true)` once all of it is sent.
pub fn send_upload<S: Write + AsFd>(
    sock: &mut S,
    up: &mut Upload,
    method: Method,
) -> io::Result<bool> {
    loop {
        if up.is_done() {
            return Ok(true);
        }
        let result = match (method, up.kernel_range()) {
            (Method::Sendfile, Some((file, pos, end))) => {
                let mut offset = pos;
                let count = (end - pos).min(SPAN) as usize;
                rustix::fs::sendfile(sock.as_fd(), file, Some(&mut offset), count)
                    .map(|n| up.advance(n as u64))
                    .map_err(io::Error::from)
            }
            _ => {
                let chunk = up.chunk()?;
                if chunk.is_empty() {
                    continue;
                }
                match sock.write(chunk) {
                    Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        up.consume(n);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
