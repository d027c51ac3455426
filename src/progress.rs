//! Progress of long command-line runs (demo data, imports, rebuilds, exports) on standard error:
//! position, rate and time left. Drawn only when standard error is a terminal, so logs, pipes and
//! CI output stay clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar for `len` steps of `what` (e.g. "responses"), with rate and ETA.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {human_pos}/{human_len} {per_sec} ETA {eta} ({elapsed})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(len), target())
        .with_style(style)
        .with_message(what.to_string())
}

/// For work whose size is unknown beforehand: what is being done and for how long.
pub fn spinner(what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let spinner = ProgressBar::with_draw_target(None, target())
        .with_style(style)
        .with_message(what.to_string());
    spinner.enable_steady_tick(Duration::from_millis(200));
    spinner
}

/// For work counted as it goes, without a known total: position and rate.
pub fn counter(what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} {msg}: {human_pos} {per_sec} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let counter = ProgressBar::with_draw_target(None, target())
        .with_style(style)
        .with_message(what.to_string());
    counter.enable_steady_tick(Duration::from_millis(200));
    counter
}
