//! What the user sees: one line per event, and download progress as a bar per download on
//! a terminal (bytes, rate, time left) or as a few quiet lines when output goes to a pipe.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::lang::{Lang, Localize};
use crate::prompt::PromptOut;
use napshare_core::client::ClientEvent;

use crate::Script;

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
    /// Speaks the locale's language ([`crate::lang_from_env`]); see [`Ui::with_lang`].
    pub fn new() -> Self {
        Self::with_lang(crate::lang_from_env())
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

/// A bar drawn nowhere until it is given a place (a [`MultiProgress`], or a target).
fn bar(name: &str, size: u64, lang: Lang) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::hidden());
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

/// How long the first scan of the shared folder reads before it shows a bar: a folder read
/// in less goes by without one.
const SCAN_BAR_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The scan of the shared folder at start, on a terminal: a bar (bytes read, rate, time
/// left) once reading has taken a second; cleared when dropped. Nothing when
/// standard output is not a terminal.
pub struct ScanBar {
    bar: Option<ProgressBar>,
    started: std::time::Instant,
    terminal: bool,
    lang: Lang,
}

impl ScanBar {
    #[allow(clippy::disallowed_methods)] // the host's clock for a bar, outside the core
    pub fn new(lang: Lang) -> Self {
        Self {
            bar: None,
            started: std::time::Instant::now(),
            terminal: std::io::stdout().is_terminal(),
            lang,
        }
    }

    /// `done` bytes of `total` have been gone through.
    pub fn update(&mut self, done: u64, total: u64) {
        if self.bar.is_none() && self.terminal && self.started.elapsed() >= SCAN_BAR_AFTER {
            let message = self.lang.pick(
                "hashing the shared folder",
                "calculando os hashes da pasta compartilhada",
            );
            let bar = bar(message, total, self.lang);
            // The rate and time left count from here, not from a jump to what was read
            // before the bar showed.
            bar.set_position(done);
            bar.reset_eta();
            bar.set_draw_target(ProgressDrawTarget::stdout());
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    }
}

impl Drop for ScanBar {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
