//! Running one scenario: N pulls at once (each waited for with wait4 on its own thread,
//! killed at the deadline), their exit statuses, trees and digests checked, and the
//! registries' traffic counted.

use super::*;

/// Runs N pulls at once for `scenario`, checks them and counts the registries' requests.
pub(super) fn run_scenario(
    context: &Context<'_>,
    scenario: Scenario,
    round: usize,
    work: &Path,
    upstream: &Registry,
    mirror: Option<&Registry>,
    reference_tree: &mut Option<Tree>,
) -> anyhow::Result<Measured> {
    let dir = work.join(format!("round-{round}-{}", scenario.name()));
    let mut commands = Vec::new();
    let mut outputs = Vec::new();
    for index in 0..context.pulls {
        let pull_dir = dir.join(format!("pull-{index:02}"));
        fs::create_dir_all(&pull_dir)
            .with_context(|| format!("creating {}", pull_dir.display()))?;
        let out_path = pull_dir.join("stdout.json");
        let err_path = pull_dir.join("stderr.log");
        let out = fs::File::create(&out_path)
            .with_context(|| format!("creating {}", out_path.display()))?;
        let err = fs::File::create(&err_path)
            .with_context(|| format!("creating {}", err_path.display()))?;
        let mut command = Command::new(context.tank);
        // No credentials or registries.conf of this machine.
        command
            .env("HOME", context.home)
            .env("DOCKER_CONFIG", context.home.join(".docker"))
            .env("XDG_RUNTIME_DIR", context.home)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("CONTAINERS_REGISTRIES_CONF")
            .env_remove("RUST_LOG")
            .arg("--registries-conf")
            .arg(context.registries_conf);
        if let Some(mirror) = mirror {
            command.arg("--mirror").arg(mirror.host());
        }
        command
            .arg("pull")
            .arg("--json")
            .arg("--cache")
            .arg(pull_dir.join("cache"))
            .arg(context.reference)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        commands.push(command);
        outputs.push((out_path, err_path));
    }
    let counts = |(lines, errors): (Vec<LogLine>, Vec<String>)| (lines.len(), errors.len());
    let upstream_before = counts(logged(upstream)?);
    let mirror_before = match mirror {
        Some(mirror) => counts(logged(mirror)?),
        None => (0, 0),
    };
    // Earlier writes flushed, so their writeback does not land in this scenario's time.
    let _ = Command::new("sync").status();
    let finished = run_all(commands, SCENARIO_TIMEOUT)
        .with_context(|| format!("round {round}, {}", scenario.name()))?;
    let sizes = &context.image.sizes;
    let upstream_traffic = traffic_since(&logged(upstream)?, upstream_before, sizes);
    let mut mirror_errors = Vec::new();
    let mirror_traffic = match mirror {
        Some(mirror) => {
            let now = logged(mirror)?;
            mirror_errors = now.1.get(mirror_before.1..).unwrap_or(&[]).to_vec();
            Some(traffic_since(&now, mirror_before, sizes))
        }
        None => None,
    };

    let mut failures = Vec::new();
    for run in &finished {
        if run.status != Some(0) {
            let (_, err_path) = &outputs[run.index];
            let stderr = fs::read_to_string(err_path).unwrap_or_default();
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            failures.push(format!(
                "pull {} exited with {}:\n{}",
                run.index,
                run.status
                    .map_or_else(|| "a signal".to_owned(), |code| format!("code {code}")),
                tail.join("\n")
            ));
        }
    }
    if !failures.is_empty() {
        bail!(
            "round {round}, {}: {} of {} pulls failed\n{}",
            scenario.name(),
            failures.len(),
            finished.len(),
            failures.join("\n")
        );
    }
    let mut rootfs = Vec::new();
    for (out_path, _) in &outputs {
        let text = fs::read_to_string(out_path)
            .with_context(|| format!("reading {}", out_path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not tank pull's JSON", out_path.display()))?;
        let digest = value["manifest_digest"].as_str().unwrap_or_default();
        if digest != context.image.manifest_digest {
            bail!(
                "{}: pulled manifest {digest:?}, pushed {}",
                out_path.display(),
                context.image.manifest_digest
            );
        }
        rootfs.push(PathBuf::from(value["rootfs"].as_str().with_context(
            || format!("{} names no rootfs", out_path.display()),
        )?));
    }
    let mut checked = vec![0];
    if rootfs.len() > 1 {
        checked.push(rootfs.len() - 1);
    }
    for index in checked {
        let tree = snapshot(&rootfs[index])?;
        match reference_tree {
            None => {
                if tree.entries.len() < context.image.files {
                    bail!(
                        "{} holds {} paths, the image {} files",
                        rootfs[index].display(),
                        tree.entries.len(),
                        context.image.files
                    );
                }
                *reference_tree = Some(tree);
            }
            Some(expected) => {
                let differences = tree.differences(expected, "this pull", "the first pull");
                if !differences.is_empty() {
                    bail!(
                        "round {round}, {}: the rootfs {} differs from the first pull's:\n{}",
                        scenario.name(),
                        rootfs[index].display(),
                        differences
                            .iter()
                            .take(10)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
            }
        }
    }

    let total = finished
        .iter()
        .map(|run| run.exited)
        .max()
        .context("no pull ran")?;
    let measured = Measured {
        total,
        each: finished.iter().map(|run| run.wall).collect(),
        cpu: finished.iter().map(|run| run.cpu).sum(),
        upstream: upstream_traffic,
        mirror: mirror_traffic,
        mirror_errors,
    };
    eprintln!(
        "xtask bench-fleet: round {round} {:<11} {} pulls in {:.2} s; upstream: {} blob GETs \
         ({}), {} manifest GETs{}",
        scenario.name(),
        context.pulls,
        total.as_secs_f64(),
        upstream_traffic.blob_gets,
        format_bytes(upstream_traffic.blob_bytes),
        upstream_traffic.manifest_gets,
        mirror_traffic.map_or_else(String::new, |traffic| format!(
            "; mirror: {} requests",
            traffic.requests
        ))
    );
    crate::tools::make_tree_writable(&dir);
    fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(measured)
}

/// The rootfs tree with directory mtimes left out (tank sets only those a layer lists).
pub(super) fn snapshot(root: &Path) -> anyhow::Result<Tree> {
    let mut tree =
        Tree::snapshot(root).with_context(|| format!("reading the tree {}", root.display()))?;
    for entry in tree.entries.values_mut() {
        if entry.kind == Kind::Dir {
            entry.mtime = 0;
        }
    }
    Ok(tree)
}

/// How one process of a fleet ended.
#[derive(Debug)]
pub(super) struct Finished {
    pub(super) index: usize,
    /// Spawn to exit.
    pub(super) wall: Duration,
    /// From the fleet's start to this exit.
    pub(super) exited: Duration,
    pub(super) cpu: Duration,
    /// The exit code, `None` when a signal ended it.
    pub(super) status: Option<i32>,
}

/// Kills, by pid, the processes of a fleet that have not been reaped when it is dropped.
pub(super) struct Reaper {
    pub(super) children: Vec<(u32, Arc<AtomicBool>)>,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for (pid, done) in &self.children {
            if !done.load(Ordering::SeqCst) {
                crate::sys::kill(*pid);
            }
        }
    }
}

/// Starts every command at once and waits (wait4, one thread each) until all have exited
/// or `timeout` has passed; on timeout or error the ones still running are killed.
pub(super) fn run_all(commands: Vec<Command>, timeout: Duration) -> anyhow::Result<Vec<Finished>> {
    let count = commands.len();
    let (sender, receiver) = mpsc::channel();
    let mut reaper = Reaper {
        children: Vec::new(),
    };
    let start = Instant::now();
    for (index, mut command) in commands.into_iter().enumerate() {
        let spawned = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let pid = child.id();
        let done = Arc::new(AtomicBool::new(false));
        reaper.children.push((pid, Arc::clone(&done)));
        let sender = sender.clone();
        thread::spawn(move || {
            // The handle is kept but never waited on: wait4 below reaps the process.
            let _child = child;
            let result = wait_for(pid);
            done.store(true, Ordering::SeqCst);
            let now = Instant::now();
            let _ = sender.send(result.map(|(status, cpu)| Finished {
                index,
                wall: now - spawned,
                exited: now - start,
                cpu,
                status,
            }));
        });
    }
    drop(sender);
    let deadline = start + timeout;
    let mut finished = Vec::with_capacity(count);
    while finished.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(result) => finished.push(result?),
            Err(_) => bail!(
                "{} of {count} pulls still running after {} s: killed",
                count - finished.len(),
                timeout.as_secs()
            ),
        }
    }
    finished.sort_by_key(|run| run.index);
    Ok(finished)
}

/// Waits for the child `pid` with wait4: its exit code (`None` for a signal) and CPU time.
pub(super) fn wait_for(pid: u32) -> anyhow::Result<(Option<i32>, Duration)> {
    let (status, usage) =
        tank_testkit::wait_with_usage(pid).with_context(|| format!("wait4 on pid {pid}"))?;
    Ok((status.code(), usage.cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_reports_each_exit_status() {
        let mut commands = Vec::new();
        for code in [0, 3] {
            let mut command = Command::new("sh");
            command.args(["-c", &format!("exit {code}")]);
            commands.push(command);
        }
        let finished = run_all(commands, Duration::from_secs(30)).unwrap();
        assert_eq!(finished.len(), 2);
        assert_eq!(finished[0].status, Some(0));
        assert_eq!(finished[1].status, Some(3));
        assert!(finished.iter().all(|run| run.exited >= run.wall));
    }

    #[test]
    fn a_fleet_past_its_deadline_is_killed() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let error = run_all(vec![command], Duration::from_millis(200)).unwrap_err();
        assert!(error.to_string().contains("still running"), "{error:#}");
    }
}
