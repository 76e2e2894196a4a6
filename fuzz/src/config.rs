//! The gateway's configuration as it is loaded: a TOML file, then `FIELDSYNC_*`
//! environment overrides, then validation ([`Config::from_text`], what
//! [`Config::load`] runs on the file it read).

use std::collections::HashMap;
use std::path::Path;

use gateway::config::Config;

use crate::Outcome;

/// Splits an input into the file's text and the environment: the text runs to the
/// first NUL byte; after it, each line `NAME=value` sets one variable.
fn split(data: &[u8]) -> (String, HashMap<String, String>) {
    let (file, env) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let env = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    (String::from_utf8_lossy(file).into_owned(), env)
}

/// Loads a configuration from a file's text and an environment (see [`split`]). A
/// configuration that loads is valid, and written back as a file it loads as itself.
pub fn gateway_config(data: &[u8]) -> Outcome {
    let (text, env) = split(data);
    match Config::from_text(&text, Path::new("fuzz.toml"), &env) {
        Ok(config) => {
            config.validate().expect("a loaded configuration is valid");
            let written = toml::to_string(&config).expect("a configuration writes as TOML");
            let again = Config::from_text(&written, Path::new("again.toml"), &HashMap::new())
                .expect("a written configuration loads");
            assert_eq!(again, config, "a configuration survives a round trip");
            Outcome::Accepted
        }
        Err(e) => {
            assert!(!e.to_string().is_empty(), "a refusal says why");
            Outcome::Refused
        }
    }
}
