//! The real binaries, run as a user runs them: with an environment, reading
//! what they print on stderr and how they exit.

use std::process::Command;

/// Runs `binary` with `args` and nothing in its environment but `env` (so no
/// setting exported where the tests run reaches it), and returns its exit code
/// and stderr lines.
pub fn run_binary(binary: &str, env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, Vec<String>) {
    let output = Command::new(binary)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code(),
        stderr.lines().map(str::to_owned).collect(),
    )
}

/// Runs `binary`, which must refuse to start with one line on stderr and exit
/// code 2 (a configuration error); returns that line.
pub fn expect_config_error(binary: &str, env: &[(&str, &str)], args: &[&str]) -> String {
    let (code, lines) = run_binary(binary, env, args);
    assert_eq!(code, Some(2), "{env:?} {args:?}: {lines:?}");
    assert_eq!(lines.len(), 1, "{env:?} {args:?} printed {lines:?}");
    lines.into_iter().next().unwrap_or_default()
}

/// Runs `binary`, which must start and then fail (exit code 1); returns its
/// stderr lines, the log of the failure.
pub fn expect_run_failure(binary: &str, env: &[(&str, &str)]) -> Vec<String> {
    let (code, lines) = run_binary(binary, env, &[]);
    assert_eq!(code, Some(1), "{env:?}: {lines:?}");
    lines
}

/// The start-up contract of a service that only runs on MongoDB
/// (`ratecast-api`, `ratecast-fetcher`), checked on the real binary.
pub mod mongo_service {
    use super::{expect_config_error, expect_run_failure};

    /// Without `MONGO_CONNECTION_URI` it refuses to start: one line naming it, exit 2.
    pub fn refuses_to_start_without_a_mongo_uri(binary: &str) {
        let line = expect_config_error(binary, &[], &[]);
        assert!(line.contains("MONGO_CONNECTION_URI"), "{line}");
    }

    /// A bad value of `var` stops start-up with one line naming it, exit 2.
    pub fn refuses_a_bad_value_of(binary: &str, var: &str) {
        let uri = (
            "MONGO_CONNECTION_URI",
            "mongodb://localhost/?replicaSet=rs0",
        );
        let line = expect_config_error(binary, &[uri, (var, "port")], &[]);
        assert!(line.contains(var), "{line}");
    }

    /// A malformed URI fails at once (exit 1) with the cause in the log; the
    /// service listens on `port_var` = 0 meanwhile.
    pub fn fails_at_once_on_a_malformed_uri(binary: &str, port_var: &str) {
        let lines = expect_run_failure(
            binary,
            &[
                ("MONGO_CONNECTION_URI", "postgres://nope"),
                (port_var, "0"),
                ("LOG_FORMAT", "text"),
            ],
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("invalid MongoDB connection URI")),
            "{lines:?}"
        );
    }
}
