//! `cargo xtask demo`: a local registry, tank push and copy of demo images, pulls (cold and
//! cached), run-spec with and without overrides, `tank cache ls` and the rootfs trees.

use std::process::Command;

use anyhow::Context as _;
use tank_testkit::{Registry, fixtures_dir};

use crate::tools::{cargo, ensure_tools, make_tree_writable, run_command};
use crate::workspace_root;

pub(crate) fn demo() -> anyhow::Result<()> {
    ensure_tools()?;
    // Build first, so the demo's output is tank's, not cargo's.
    let mut build = cargo();
    build.args(["build", "--quiet", "--bin", "tank"]);
    run_command(build)?;
    let tank = workspace_root().join("target/debug/tank");

    let registry = Registry::start()?;
    println!(
        "registry: {} (docker-registry on loopback, storage in a temporary folder)",
        registry.url()
    );
    let host = registry.host();
    let demo = format!("{host}/demo/hello:1.0");
    let layers = format!("{host}/demo/layers:1.0");
    let pushes = [
        vec![
            "push".to_owned(),
            format!("{}:latest", fixtures_dir().join("single").display()),
            demo.clone(),
        ],
        vec![
            "push".to_owned(),
            format!("{}:latest", fixtures_dir().join("multi-platform").display()),
            format!("{host}/demo/multi:1.0"),
        ],
        // Within one registry, copying mounts the blobs: nothing is uploaded again.
        vec![
            "copy".to_owned(),
            format!("{host}/demo/multi:1.0"),
            format!("{host}/demo/multi-copy:1.0"),
        ],
        vec![
            "push".to_owned(),
            format!("{}:latest", fixtures_dir().join("multi-layer").display()),
            layers.clone(),
        ],
    ];
    for arguments in pushes {
        println!("\n$ tank {}", arguments.join(" "));
        let mut command = Command::new(&tank);
        command.args(&arguments);
        run_command(command)?;
    }

    let cache = workspace_root().join("target/xtask-demo/cache");
    if cache.exists() {
        make_tree_writable(&cache);
        std::fs::remove_dir_all(&cache)
            .with_context(|| format!("removing the old demo cache {}", cache.display()))?;
    }
    let cache_flag = ["--cache".to_owned(), cache.display().to_string()];
    let steps: Vec<Vec<String>> = vec![
        vec!["pull".into(), demo.clone()],
        vec!["pull".into(), demo.clone()],
        vec!["pull".into(), layers.clone()],
        vec!["run-spec".into(), "--offline".into(), demo.clone()],
        vec![
            "run-spec".into(),
            "--offline".into(),
            "--user".into(),
            "root".into(),
            "--env".into(),
            "GREETING=bonjour".into(),
            demo.clone(),
            "--".into(),
            "--quiet".into(),
        ],
        vec!["cache".into(), "ls".into()],
    ];
    for step in steps {
        let mut arguments = step.clone();
        let at = if arguments[0] == "cache" { 2 } else { 1 };
        for (offset, flag) in cache_flag.iter().enumerate() {
            arguments.insert(at + offset, flag.clone());
        }
        println!("\n$ tank {}", arguments.join(" "));
        let mut command = Command::new(&tank);
        command.args(&arguments);
        run_command(command)?;
    }
    let rootfs = cache.join("rootfs");
    println!("\nthe assembled root filesystems:");
    let mut listing = Command::new("find");
    listing
        .arg(&rootfs)
        .args(["-mindepth", "3", "-maxdepth", "5"]);
    run_command(listing)?;

    drop(registry);
    println!(
        "\nregistry stopped; try `tank pull --offline --cache {} {host}/demo/hello:1.0` again",
        cache.display()
    );
    Ok(())
}
