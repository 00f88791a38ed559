//! tank: pull, verify, cache, unpack, push and copy OCI / Docker images from the command
//! line.
//!
//! This binary is thin: it parses flags, builds options for the tank crates, prints their
//! results on stdout and a one-line error on stderr. Everything else lives in the crates.

mod board;
mod cache;
mod copy;
mod inspect;
mod pull;
mod push;
mod run_spec;

use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressDrawTarget};
use tank_registry::{Client, ClientConfig, Mirror, Registries};
use tracing_subscriber::field::MakeExt as _;

/// Pull, verify, cache and unpack OCI / Docker images.
#[derive(Debug, Parser)]
#[command(name = "tank", version, about, propagate_version = true)]
struct Cli {
    /// Speak plain HTTP to this registry (HOST or HOST:PORT); repeatable. Loopback
    /// registries (localhost, 127.0.0.0/8, ::1) always use plain HTTP.
    #[arg(long = "insecure-registry", value_name = "HOST", global = true)]
    insecure_registries: Vec<String>,

    /// Read mirrors, location rewrites and blocked names from this registries.conf (v2)
    /// instead of $CONTAINERS_REGISTRIES_CONF, else ~/.config/containers/registries.conf,
    /// else /etc/containers/registries.conf (with the registries.conf.d drop-ins).
    #[arg(long = "registries-conf", value_name = "FILE", global = true)]
    registries_conf: Option<PathBuf>,

    /// Try this mirror first: HOST[:PORT][/NAMESPACE] for every registry, or
    /// PREFIX=HOST[:PORT][/NAMESPACE] for the names under PREFIX (docker.io=mirror.lan:5000).
    /// Repeatable, tried in order before registries.conf's mirrors; the registry itself is
    /// tried last. Pushes never go to mirrors.
    #[arg(long = "mirror", value_name = "[PREFIX=]HOST", global = true)]
    mirrors: Vec<String>,

    /// Also trust the certificate authorities in this PEM file (repeatable): for registries
    /// whose certificates an internal CA issued.
    #[arg(long = "tls-ca", value_name = "FILE", global = true)]
    tls_ca: Vec<PathBuf>,

    /// The minimum-progress rule for every request: an attempt that moves fewer than BYTES
    /// (a size: 16K, 1M…) in any SECONDS-second window fails as a stall, is retried (a blob
    /// resumes where it stopped) and is finally named in the error; `off` disables it.
    #[arg(
        long = "min-progress",
        value_name = "BYTES/SECONDS",
        default_value = "16K/30",
        global = true,
        value_parser = parse_min_progress
    )]
    min_progress: (u64, Duration),

    /// How long to wait for a response's complete headers (seconds; 0: no limit).
    #[arg(
        long = "header-timeout",
        value_name = "SECONDS",
        default_value_t = 60,
        global = true
    )]
    header_timeout: u64,

    /// How long reading one manifest, token or error body may take (seconds; 0: no limit).
    #[arg(
        long = "document-timeout",
        value_name = "SECONDS",
        default_value_t = 120,
        global = true
    )]
    document_timeout: u64,

    /// Use a cache directory owned by another user, or one group or others may write that
    /// tank cannot tighten to 0700 (refused by default: whoever controls the cache controls
    /// what tank hands to containers).
    #[arg(long = "allow-untrusted-cache", global = true)]
    allow_untrusted_cache: bool,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// Print more about what happens (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pull an image into the cache and print its root filesystem's path.
    Pull(pull::Args),
    /// Show an image's manifest, layers and config without downloading layers.
    Inspect(inspect::Args),
    /// Print how to run an image (argv, env, cwd, numeric uid/gid) as JSON; pulls it first.
    RunSpec(run_spec::Args),
    /// List, garbage-collect or verify the cache.
    Cache(cache::Args),
    /// Push an image or index from an OCI layout to a registry and print its digest.
    Push(push::Args),
    /// Copy an image, or a multi-platform index whole, between registries and OCI layouts
    /// (`oci:DIR[:TAG]`), digests unchanged; print its digest.
    Copy(copy::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            return report(&anyhow::Error::new(err).context("cannot start the async runtime"));
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Offline pulls touch no registry, and a broken registries.conf must not stop them.
    let uses_registries = match &cli.command {
        Command::Pull(args) => !args.pull.offline,
        Command::RunSpec(args) => !args.pull.offline,
        Command::Inspect(_) | Command::Copy(_) => true,
        Command::Cache(_) | Command::Push(_) => false,
    };
    let registries = if uses_registries {
        registries(cli.registries_conf.as_deref(), &cli.mirrors)?
    } else {
        Registries::none()
    };
    let mut client = ClientConfig {
        insecure_registries: cli.insecure_registries.clone(),
        registries,
        min_progress_bytes: cli.min_progress.0,
        progress_window: cli.min_progress.1,
        header_timeout: Duration::from_secs(cli.header_timeout),
        document_timeout: Duration::from_secs(cli.document_timeout),
        ..ClientConfig::default()
    };
    for file in &cli.tls_ca {
        client
            .add_root_certificates_file(file)
            .with_context(|| format!("--tls-ca {}", file.display()))?;
    }
    match cli.command {
        Command::Pull(args) => pull::run(client, args, cli.allow_untrusted_cache).await,
        Command::Inspect(args) => inspect::run(&Client::new(client)?, args).await,
        Command::RunSpec(args) => run_spec::run(client, args, cli.allow_untrusted_cache).await,
        Command::Cache(args) => cache::run(args, cli.allow_untrusted_cache),
        Command::Push(args) => push::run(client, args).await,
        Command::Copy(args) => copy::run(client, args).await,
    }
}

/// `BYTES/SECONDS` (BYTES a size as `--max-layer-size` takes it, SECONDS a whole number,
/// optionally followed by `s`), or `off`.
fn parse_min_progress(text: &str) -> Result<(u64, Duration), String> {
    if text == "off" {
        return Ok((0, Duration::ZERO));
    }
    let bad = || format!("{text:?} is not BYTES/SECONDS (e.g. 16K/30) or `off`");
    let (bytes, seconds) = text.split_once('/').ok_or_else(bad)?;
    let bytes = pull::parse_size(bytes)?.ok_or_else(bad)?;
    let seconds: u64 = seconds
        .strip_suffix('s')
        .unwrap_or(seconds)
        .parse()
        .map_err(|_| bad())?;
    if bytes == 0 || seconds == 0 {
        return Err(format!(
            "{text:?}: both numbers must be above 0 (or say `off`)"
        ));
    }
    Ok((bytes, Duration::from_secs(seconds)))
}

/// The mirror rules: `file` (or the system's registries.conf), then the `--mirror` flags.
fn registries(file: Option<&std::path::Path>, mirrors: &[String]) -> anyhow::Result<Registries> {
    let mut registries = match file {
        Some(file) => Registries::from_file(file)?,
        None => Registries::from_system()?,
    };
    for flag in mirrors {
        let (prefix, location) = match flag.split_once('=') {
            Some((prefix, location)) => (Some(prefix), location),
            None => (None, flag.as_str()),
        };
        let mirror = Mirror::new(location).with_context(|| format!("--mirror {flag}"))?;
        registries
            .add_mirror(prefix, mirror)
            .with_context(|| format!("--mirror {flag}"))?;
    }
    Ok(registries)
}

/// The progress bars on stderr: set when stderr is a terminal and `-q` was not given.
static BARS: OnceLock<Option<MultiProgress>> = OnceLock::new();

/// The shared progress-bar area, when progress bars are drawn.
pub(crate) fn progress_bars() -> Option<&'static MultiProgress> {
    BARS.get().and_then(Option::as_ref)
}

/// Log lines go to stderr, above the progress bars when they are drawn.
#[derive(Clone, Copy)]
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match progress_bars() {
            Some(bars) => bars.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Sends log lines to stderr: warnings by default, less with `-q`, more with `-v`;
/// `TANK_LOG` (a tracing filter, e.g. `tank_registry=debug`) overrides both.
fn init_logging(quiet: bool, verbose: u8) {
    let bars = (!quiet && std::io::stderr().is_terminal())
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    let _ = BARS.set(bars);
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,tank=info,tank_image=info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TANK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Log fields may hold text from outside (registry messages, URLs, entry names): each is
    // escaped for the terminal, while the level keeps its colour.
    let fields = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let value = format!("{value:?}");
        let value = tank_registry::printable::escape(&value);
        if field.name() == "message" {
            write!(writer, "{value}")
        } else {
            write!(writer, "{field}={value}")
        }
    })
    .delimited(" ");
    tracing_subscriber::fmt()
        .fmt_fields(fields)
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 0)
        .without_time()
        .init();
}

/// Prints the error and its causes on one line and picks the exit code. A closed stdout
/// (`tank inspect … | head`) is not an error worth a message.
fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    // Each error's message says only its own level (its cause is the next in the chain).
    let mut line = String::from("tank: error: ");
    for (i, cause) in err.chain().enumerate() {
        if i > 0 {
            line.push_str(": ");
        }
        line.push_str(&cause.to_string());
    }
    let _ = writeln!(
        std::io::stderr(),
        "{}",
        tank_registry::printable::escape(&line)
    );
    ExitCode::FAILURE
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_min_progress;

    #[test]
    fn min_progress_parses_bytes_per_seconds_or_off() {
        assert_eq!(
            parse_min_progress("16K/30"),
            Ok((16384, Duration::from_secs(30)))
        );
        assert_eq!(
            parse_min_progress("1M/10s"),
            Ok((1 << 20, Duration::from_secs(10)))
        );
        assert_eq!(parse_min_progress("off"), Ok((0, Duration::ZERO)));
        for bad in [
            "16K",
            "16K/",
            "/30",
            "0/30",
            "16K/0",
            "x/30",
            "unlimited/30",
        ] {
            assert!(parse_min_progress(bad).is_err(), "{bad}");
        }
    }
}
