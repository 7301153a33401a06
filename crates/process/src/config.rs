//! Turning flags and env into a configuration, or one clear line and exit code 2.

use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, error::ErrorKind};

/// Parses flags and env into `C`. `--help`/`--version` print and exit 0; a bad
/// value prints one line naming the flag and its env var and exits with code 2.
pub fn parse_or_exit<C: CommandFactory + FromArgMatches>() -> C {
    let command = C::command();
    let name = command.get_name().to_owned();
    let parsed = command
        .clone()
        .try_get_matches()
        .and_then(|mut matches| C::from_arg_matches_mut(&mut matches));
    match parsed {
        Ok(config) => config,
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            error.exit()
        }
        Err(error) => {
            eprintln!("{name}: {}", one_line(&command, &error));
            std::process::exit(2);
        }
    }
}

/// clap's first error line, plus the env var of the offending flag.
fn one_line(command: &clap::Command, error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    // clap puts the names of missing arguments on the lines after the first.
    let first = rendered
        .split("\n\n")
        .next()
        .unwrap_or("error: invalid configuration")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let env = error
        .get(clap::error::ContextKind::InvalidArg)
        .map(|arg| arg.to_string())
        .and_then(|arg| {
            let long = arg
                .trim_start_matches("--")
                .split([' ', '='])
                .next()?
                .to_owned();
            let found = command
                .get_arguments()
                .find(|a| a.get_long() == Some(long.as_str()))?
                .get_env()?
                .to_string_lossy()
                .into_owned();
            Some(found)
        });
    match env {
        Some(env) => format!("{first} (flag or env {env})"),
        None => first,
    }
}

/// Parses `90`, `90s`, `30m`, `24h` or `7d` into a whole number of seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("{value:?} is not a duration like 90s, 30m, 24h or 7d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    match amount.checked_mul(scale) {
        Some(0) => Err("must be greater than zero".into()),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Err(format!("{value:?} is too long")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
