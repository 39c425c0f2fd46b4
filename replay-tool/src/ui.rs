//! Terminal output: colour only on a terminal and never with `NO_COLOR` set, progress bars only
//! when stderr is a terminal (quiet when piped or in CI).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Copy, Debug)]
pub struct Ui {
    /// Colour on stdout.
    pub color: bool,
    /// Colour on stderr.
    pub err_color: bool,
    /// Progress bars on stderr.
    pub progress: bool,
}

/// `NO_COLOR` set to anything non-empty turns colour off (https://no-color.org).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

impl Ui {
    pub fn detect() -> Ui {
        let err_tty = std::io::stderr().is_terminal();
        Ui {
            color: !no_color() && std::io::stdout().is_terminal(),
            err_color: !no_color() && err_tty,
            progress: err_tty,
        }
    }

    /// A bar counting `total` units (records, bytes) for long work, hidden unless on a terminal.
    pub fn bar(&self, total: u64, unit: &str, message: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        // Short enough for an 80-column terminal: a wrapped bar redraws badly.
        let template = format!("{{msg}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit}, {{eta}} left");
        bar.set_style(ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A spinner counting bytes of unknown total.
    pub fn bytes_spinner(&self, message: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {binary_bytes} ({binary_bytes_per_sec})")
                .expect("valid"),
        );
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    pub fn good(&self, s: &str) -> String {
        paint(self.color, "32;1", s)
    }

    pub fn bad(&self, s: &str) -> String {
        paint(self.color, "31;1", s)
    }

    pub fn dim(&self, s: &str) -> String {
        paint(self.color, "2", s)
    }

    pub fn bold(&self, s: &str) -> String {
        paint(self.color, "1", s)
    }

    pub fn err_bad(&self, s: &str) -> String {
        paint(self.err_color, "31;1", s)
    }

    pub fn err_warn(&self, s: &str) -> String {
        paint(self.err_color, "33;1", s)
    }
}

fn paint(on: bool, sgr: &str, s: &str) -> String {
    if on { format!("\x1b[{sgr}m{s}\x1b[0m") } else { s.to_owned() }
}
