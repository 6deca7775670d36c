//! What the user sees: one line per event, and download progress as a bar per download on
//! a terminal (bytes, rate, time left) or as a few quiet lines when output goes to a pipe.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::prompt::PromptOut;
use crate::client::ClientEvent;
use crate::lang::{Lang, Localize};

use super::Script;

/// Prints a client's events on standard output.
pub struct Ui {
    lang: Lang,
    bars: Option<MultiProgress>,
    progress: BTreeMap<String, Progress>,
    /// A one-shot client's: it shows events its own way (see [`Script`]).
    script: Option<(Script, Option<u64>)>,
    /// The interactive prompt, when it runs: lines go through it, and no bars are drawn
    /// (see `prompt.rs` for why).
    prompt: Option<PromptOut>,
}

enum Progress {
    Bar(ProgressBar),
    /// Without a terminal: the last quarter of the file reported.
    Quiet(u64),
}

impl Default for Ui {
    fn default() -> Self {
        Self::new()
    }
}

impl Ui {
    /// Speaks the locale's language ([`super::lang_from_env`]); see [`Ui::with_lang`].
    pub fn new() -> Self {
        Self::with_lang(super::lang_from_env())
    }

    /// Speaks `lang`; bars only when standard output is a terminal.
    pub fn with_lang(lang: Lang) -> Self {
        let bars = std::io::stdout()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Self {
            lang,
            bars,
            progress: BTreeMap::new(),
            script: None,
            prompt: None,
        }
    }

    /// For a one-shot client: events on standard error, the result kept for its end.
    pub fn for_script(script: Script, lang: Lang) -> Self {
        Self {
            lang,
            bars: None,
            progress: BTreeMap::new(),
            script: Some((script, None)),
            prompt: None,
        }
    }

    /// Prints through the interactive prompt.
    pub(super) fn with_prompt(prompt: PromptOut, lang: Lang) -> Self {
        Self {
            lang,
            bars: None,
            progress: BTreeMap::new(),
            script: None,
            prompt: Some(prompt),
        }
    }

    pub fn show(&mut self, event: &ClientEvent) {
        if let Some((script, progress)) = &mut self.script {
            return script.show(event, progress, self.lang);
        }
        if let Some(prompt) = &self.prompt {
            prompt.observe(event);
        }
        match event {
            ClientEvent::DownloadStarted { name, size, .. } => {
                self.say(event);
                // A bar for a file that arrives in a blink would only flicker.
                let progress = match (&self.bars, size) {
                    (Some(multi), Some(size)) if *size >= BAR_FROM => {
                        Progress::Bar(multi.add(bar(name, *size, self.lang)))
                    }
                    _ => Progress::Quiet(0),
                };
                self.progress.insert(name.clone(), progress);
            }
            ClientEvent::DownloadProgress { name, done, size } => {
                let report = match (self.progress.get_mut(name), size) {
                    (Some(Progress::Bar(bar)), _) => {
                        bar.set_position(*done);
                        false
                    }
                    (Some(Progress::Quiet(last)), Some(size)) if *size > 0 => {
                        let quarter = done * 4 / size;
                        let new = quarter > *last && quarter < 4;
                        *last = quarter.max(*last);
                        new
                    }
                    _ => false,
                };
                if report {
                    self.say(event);
                }
            }
            ClientEvent::DownloadDone { name, .. } | ClientEvent::DownloadFailed { name, .. } => {
                if let Some(Progress::Bar(bar)) = self.progress.remove(name) {
                    bar.finish_and_clear();
                    if let Some(multi) = &self.bars {
                        multi.remove(&bar);
                    }
                }
                self.say(event);
            }
            other => self.say(other),
        }
    }

    /// Prints an event in the user's language.
    fn say(&self, event: &ClientEvent) {
        self.line(&event.in_lang(self.lang).to_string());
    }

    /// Prints above the bars, through the bars' own printer on a terminal so that it
    /// always knows where they are.
    fn line(&self, text: &str) {
        if let Some(prompt) = &self.prompt {
            return prompt.print(text);
        }
        match &self.bars {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => println!("{text}"),
        }
    }
}

/// Files smaller than this get no bar.
const BAR_FROM: u64 = 1 << 20;

fn bar(name: &str, size: u64, lang: Lang) -> ProgressBar {
    let bar = ProgressBar::new(size);
    let style = ProgressStyle::with_template(lang.pick(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} faltam {eta}",
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(name.to_owned());
    bar
}
