//! Standard input, read on its own thread: it blocks, and neither runtime can poll it
//! portably (a pipe, a file or a terminal).

use std::io::BufRead;

/// Reads standard input line by line on a new thread, calling `each` with every line and
/// then once with `None` at end of input (or on a read error).
#[allow(clippy::disallowed_methods)] // the one thread the host needs, see the module docs
pub fn spawn_stdin_reader(mut each: impl FnMut(Option<String>) + Send + 'static) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            match line {
                Ok(l) => each(Some(l)),
                Err(_) => break,
            }
        }
        each(None);
    });
}
