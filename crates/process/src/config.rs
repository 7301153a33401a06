//! Turning flags and env into a configuration, or one clear line and exit code 2;
//! and the same flags blind to the environment, for tests and for `Default`s.
//!
//! Every default is the flag's own (`default_value` in its `#[arg]`): a library
//! `Default` is [`defaults`] of its argument group, so the binary and the tests
//! run with the same limits. Tests build configurations with
//! [`parse_ignoring_env`], so nothing exported in a developer's shell
//! (`MONGO_CONNECTION_URI`, `ASSET_LIST`, `RATE_LIMIT`…) changes what they test.

use std::{ffi::OsString, time::Duration};

use clap::{Args, Command, CommandFactory, FromArgMatches, error::ErrorKind};

/// Parses flags and env into `C`. `--help`/`--version` print and exit 0; a bad
/// value prints one line naming the flag and its env var and exits with code 2.
pub fn parse_or_exit<C: CommandFactory + FromArgMatches>() -> C {
    parse_command_or_exit(C::command(), std::env::args_os())
}

/// [`parse_or_exit`] with `command` (`C`'s, adjusted) and `argv` (program name first).
pub fn parse_command_or_exit<C, I, T>(command: Command, argv: I) -> C
where
    C: FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let name = command.get_name().to_owned();
    let parsed = command
        .clone()
        .try_get_matches_from(argv)
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

/// `C` parsed from `argv` (program name first) as its binary would, except that
/// every `env = "…"` of `C` and its subcommands is ignored.
pub fn parse_ignoring_env<C, I, T>(argv: I) -> Result<C, clap::Error>
where
    C: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut matches = without_env(C::command()).try_get_matches_from(argv)?;
    C::from_arg_matches_mut(&mut matches)
}

/// The defaults of the argument group `A`, whatever the environment holds.
///
/// # Panics
/// If `A` has a required argument: it has no defaults to give.
pub fn defaults<A: Args + FromArgMatches>() -> A {
    let command = without_env(A::augment_args(Command::new("defaults")));
    command
        .try_get_matches_from(["defaults"])
        .and_then(|mut matches| A::from_arg_matches_mut(&mut matches))
        .unwrap_or_else(|error| panic!("{} has no defaults: {error}", std::any::type_name::<A>()))
}

/// `command` with no argument read from the environment, subcommands included.
fn without_env(command: Command) -> Command {
    command
        .mut_args(|arg| arg.env(None))
        .mut_subcommands(without_env)
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

    #[derive(clap::Parser, Debug)]
    struct Probe {
        #[arg(
            long,
            env = "RATECAST_PROCESS_TEST_PROBE",
            default_value = "from the flag"
        )]
        probe: String,
        #[command(subcommand)]
        inner: Option<Inner>,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Inner {
        Inner {
            #[arg(long, env = "RATECAST_PROCESS_TEST_INNER")]
            value: Option<String>,
        },
    }

    /// Every argument of `command` and its subcommands, with where it sits.
    fn env_vars(command: &Command) -> Vec<String> {
        command
            .get_arguments()
            .filter_map(|arg| arg.get_env().map(|env| env.to_string_lossy().into_owned()))
            .chain(command.get_subcommands().flat_map(env_vars))
            .collect()
    }

    #[test]
    fn configurations_for_tests_and_defaults_read_no_environment_variable() {
        let command = <Probe as CommandFactory>::command();
        assert_eq!(
            env_vars(&command),
            ["RATECAST_PROCESS_TEST_PROBE", "RATECAST_PROCESS_TEST_INNER"]
        );
        assert!(env_vars(&without_env(command)).is_empty());
        assert_eq!(defaults::<Probe>().probe, "from the flag");
        let parsed: Probe =
            parse_ignoring_env(["x", "--probe", "given", "inner", "--value", "v"]).expect("parses");
        assert_eq!(parsed.probe, "given");
        assert!(matches!(parsed.inner, Some(Inner::Inner { value: Some(v) }) if v == "v"));
    }

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
