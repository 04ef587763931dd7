//! How the command line shows long work: a bar on a terminal (stderr, so
//! stdout stays the command's result), plain periodic lines with counts
//! when stderr is a pipe or a file. The work reports through
//! [`Progress`]; only this file knows about terminals.
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::support::progress::{Periodic, Progress, Update};

/// The renderer for this process's stderr; `every` paces plain lines.
pub(super) fn stderr(every: Duration) -> Arc<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Arc::new(Bar::new())
    } else {
        Arc::new(Periodic::new(every, |line: &str| eprintln!("{line}")))
    }
}

/// One bar, restyled when the work moves to a new stage.
struct Bar {
    bar: ProgressBar,
    /// The task and stage the bar shows.
    showing: Mutex<Option<(String, String)>>,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar,
            showing: Mutex::new(None),
        }
    }

    fn restyle(&self, u: &Update<'_>) {
        let template = match u.total {
            Some(_) => "{spinner} {msg} [{bar:30}] {pos}/{len} {prefix} ({eta} left)",
            None => "{spinner} {msg}: {pos} {prefix} ({elapsed})",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_length(u.total.unwrap_or(0));
        self.bar.set_prefix(u.unit.to_string());
        self.bar.set_message(format!("{}: {}", u.task, u.stage));
        self.bar.reset_eta();
    }
}

impl Progress for Bar {
    fn update(&self, u: &Update<'_>) {
        {
            let mut showing = self.showing.lock().unwrap_or_else(PoisonError::into_inner);
            let same = showing
                .as_ref()
                .is_some_and(|(t, s)| t == u.task && s == u.stage);
            if !same {
                *showing = Some((u.task.to_string(), u.stage.to_string()));
                self.restyle(u);
            }
        }
        if let Some(total) = u.total {
            self.bar.set_length(total);
        }
        self.bar.set_position(u.done);
    }

    fn finish(&self, line: &str) {
        // Above the bar, which is redrawn below it.
        self.bar.println(line);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
