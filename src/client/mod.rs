//! The client subcommands: they talk to a running server over its API (`http`), turn every
//! failure into one line and an exit code, and print text from the server made safe for a
//! terminal (`say!`).

/// Prints a line for people with every control character but the line break escaped
/// (`\x1b`), so text from a server or a customer (a description, a URL, an answer's body)
/// cannot retitle, clear or rewrite the operator's terminal. `--json` output needs no
/// escaping: JSON strings carry control characters escaped.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::client::print_quietly(
            format!("{}\n", $crate::client::terminal_safe(&format!($($arg)*))).as_bytes(),
        )
    };
}

/// Writes to stdout; a reader that went away (`| head`) ends the command quietly, exit 0.
pub fn print_quietly(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// The text with control characters other than line break and tab shown escaped.
pub fn terminal_safe(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "\\x{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

mod commands;
mod http;
pub mod listen;
pub mod manage;

pub use commands::*;
pub use http::{Client, ClientError, finish};

#[cfg(test)]
mod tests {
    #[test]
    fn terminal_control_sequences_are_shown_not_obeyed() {
        let evil = "shop\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{9b}31m";
        let safe = super::terminal_safe(evil);
        assert_eq!(safe, "shop\\x{1b}]0;pwned\\x{7}\\x{1b}[2J\\x{d}\\x{9b}31m");
        assert!(!safe.chars().any(|c| c.is_control()));
        assert_eq!(super::terminal_safe("two\nlines\tok"), "two\nlines\tok");
    }
}
