//! Standard input, read on its own thread: it blocks, and neither runtime can poll it
//! portably (a pipe, a file or a terminal). Stop signals are watched on another.

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

/// Calls `stop` on the first SIGINT (Ctrl-C) or SIGTERM, from a thread of its own, so the
/// process can end cleanly (a client leaves the network first); a second signal ends the
/// process at once, for when the clean way hangs.
#[allow(clippy::disallowed_methods)] // the signal thread, see the module docs
pub fn on_stop_signal(stop: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        let mut stop = Some(stop);
        for signal in signals.forever() {
            match stop.take() {
                Some(stop) => stop(),
                None => std::process::exit(128 + signal),
            }
        }
    });
    Ok(())
}
