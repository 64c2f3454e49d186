//! Progress for large transfers: a bar on stderr (bytes, rate, ETA) when it
//! is a terminal and the transfer is over 1 MiB or of unknown size (vaultd
//! passes no upstream Content-Length: it could reveal a redacted length); never on a pipe unless
//! `--progress` forces it; never with `-s`.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// Transfers at or below this size show nothing.
const THRESHOLD: u64 = 1 << 20;

#[derive(Clone, Copy, Debug)]
pub struct Mode {
    pub silent: bool,
    pub forced: bool,
}

/// A bar for a transfer of `total` bytes (`None` if unknown), or `None`
/// when nothing should be shown.
pub fn bar(mode: Mode, total: Option<u64>, label: &'static str) -> Option<ProgressBar> {
    if mode.silent {
        return None;
    }
    let target = if mode.forced {
        // indicatif hides itself off a terminal; --progress means "show it anyway".
        ProgressDrawTarget::term_like(Box::new(Stderr))
    } else if std::io::stderr().is_terminal() && total.is_none_or(|t| t > THRESHOLD) {
        ProgressDrawTarget::stderr()
    } else {
        return None;
    };
    let pb = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), target).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("static template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, target).with_style(
            ProgressStyle::with_template("{msg} {bytes} {binary_bytes_per_sec} {elapsed}")
                .expect("static template"),
        ),
    };
    pb.set_message(label);
    Some(pb)
}

/// stderr for a forced bar: plain lines, no cursor tricks needed.
#[derive(Debug)]
struct Stderr;

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        writeln!(std::io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        write!(std::io::stderr(), "{s}")
    }
    fn clear_line(&self) -> std::io::Result<()> {
        writeln!(std::io::stderr())
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
