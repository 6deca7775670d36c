//! Everything the client says to its user, in English or Brazilian Portuguese: the core
//! hands over plain data (events, errors, command words) and these modules make the text.

mod command;
mod event;

pub use command::{help, usage, word, AJUDA, HELP};
pub use event::results_table;
