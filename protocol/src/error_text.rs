//! An error and its causes as one line for a person, each cause once.
//!
//! Many errors put their cause's text in their own message *and* expose the cause as
//! their `source()` (thiserror's `#[from]` with `"…: {0}"`), so printing the chain as
//! it comes (anyhow's `{:#}`) repeats it: `database: disk I/O error: disk I/O error`.
//! Every binary of the project prints its final error through [`one_line`], which
//! leaves out a cause whose text the line already holds. Pure; used by the binaries'
//! `main`s, which is why it lives in the crate they all share.

use std::error::Error;

/// `error` and its causes, joined by `": "`, each cause's text at most once.
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("disk I/O error")]
        Io,
    }

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("database: {0}")]
        Repeats(#[from] Inner),
        #[error("opening the store")]
        Context(#[source] Inner),
    }

    #[test]
    fn each_cause_is_said_once() {
        assert_eq!(
            one_line(&Outer::Repeats(Inner::Io)),
            "database: disk I/O error"
        );
        assert_eq!(
            one_line(&Outer::Context(Inner::Io)),
            "opening the store: disk I/O error"
        );
    }
}
