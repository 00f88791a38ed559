//! A downstream runtime in miniature: pulls an image and prints how to run it, naming only
//! tank-image (and tokio) in its `Cargo.toml`. The types of the crates below tank-image come
//! through its re-exports (`tank_image::registry`, `tank_image::oci_spec`, `Digest`,
//! `Reference`).
//!
//! `cargo run -p tank-downstream-example -- REF [PLAIN_HTTP_REGISTRY...]`, e.g.
//! `cargo run -p tank-downstream-example -- registry.example:5000/app:1.0 registry.example:5000`.

use std::error::Error;
use std::process::ExitCode;

use tank_image::oci_spec::image::ImageConfiguration;
use tank_image::registry::ClientConfig;
use tank_image::{Digest, PullOptions, Reference, RunOverrides, RunSpec, pull};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(reference) = args.next() else {
        eprintln!("usage: tank-downstream-example REF [PLAIN_HTTP_REGISTRY...]");
        return ExitCode::FAILURE;
    };
    match run(&reference, args.collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut line = format!("error: {error}");
            let mut cause = error.source();
            while let Some(error) = cause {
                line.push_str(&format!(": {error}"));
                cause = error.source();
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}

/// Pulls `reference` (speaking plain HTTP to the `insecure` registries) and prints its run
/// parameters.
async fn run(reference: &str, insecure: Vec<String>) -> Result<(), Box<dyn Error>> {
    let reference: Reference = reference.parse()?;
    let options = PullOptions {
        client: ClientConfig {
            insecure_registries: insecure,
            ..ClientConfig::default()
        },
        ..PullOptions::default()
    };
    let pulled = pull(&reference, &options).await?;
    let config: ImageConfiguration = pulled.image_config()?;
    let spec = RunSpec::for_pulled(&pulled, &RunOverrides::default())?;
    describe(&pulled.manifest_digest, &config, &spec);
    println!("rootfs: {}", pulled.rootfs.display());
    Ok(())
}

/// Prints what a runtime would execute.
fn describe(manifest: &Digest, config: &ImageConfiguration, spec: &RunSpec) {
    println!("manifest: {manifest}");
    println!("platform: {}/{}", config.os(), config.architecture());
    println!("args: {:?}", spec.args);
    println!("env: {:?}", spec.env);
    println!("cwd: {}", spec.cwd);
    println!("user: {}:{}", spec.user.uid, spec.user.gid);
}
