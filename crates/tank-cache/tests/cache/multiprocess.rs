//! Several processes on one cache: this test binary re-executes itself with
//! `TANK_CACHE_TEST_ROLE` set, running only [`child_process_entry`], which plays the role.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use tank_cache::{Cache, RootfsGuard};

use crate::{pattern, sha256, temporaries};

const ROLE: &str = "TANK_CACHE_TEST_ROLE";
const DIR: &str = "TANK_CACHE_TEST_DIR";
const BLOB_LEN: usize = 400_000;

fn child(role: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "multiprocess::child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start child")
}

/// The `RESULT` lines of children run to completion; each must succeed.
fn results(children: Vec<Child>) -> Vec<String> {
    children
        .into_iter()
        .flat_map(|child| {
            let output = child.wait_with_output().expect("wait for child");
            assert!(output.status.success(), "child failed: {:?}", output.status);
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| {
                    // libtest prints `test … ... ` before the child's output, on the same line.
                    line.split_once("RESULT ")
                        .map(|(_, result)| result.to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The child side. Without `TANK_CACHE_TEST_ROLE` (a normal test run) it does nothing.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = std::env::var_os(DIR).expect("cache directory");
    let cache = Cache::open(&dir).expect("open cache");
    let bytes = pattern(BLOB_LEN);
    let digest = sha256(&bytes);
    let mut stdout = std::io::stdout();
    match role.as_str() {
        "write-blob" => {
            let _pull = cache.lock_shared().expect("shared lock");
            let mut writer = cache
                .blob_writer(&digest, Some(BLOB_LEN as u64))
                .expect("writer");
            for chunk in bytes.chunks(4096) {
                writer.write_all(chunk).expect("write");
            }
            let path = writer.commit().expect("commit");
            writeln!(stdout, "RESULT {}", path.display()).expect("stdout");
        }
        "build-rootfs" => match cache.build_rootfs(&digest).expect("build") {
            RootfsGuard::Ready(_) => writeln!(stdout, "RESULT ready").expect("stdout"),
            RootfsGuard::Build(builder) => {
                let marker = format!("built-by-{}", std::process::id());
                std::fs::write(builder.path().join(marker), &bytes).expect("write");
                builder.commit().expect("commit");
                writeln!(stdout, "RESULT built").expect("stdout");
            }
        },
        "slow-blob" | "slow-rootfs" => {
            // Hold a half-written blob or rootfs, say so, and wait to be killed.
            let _writer = if role == "slow-blob" {
                let mut writer = cache
                    .blob_writer(&digest, Some(BLOB_LEN as u64))
                    .expect("writer");
                writer.write_all(&bytes[..BLOB_LEN / 2]).expect("write");
                writer.flush().expect("flush");
                (Some(writer), None)
            } else {
                let RootfsGuard::Build(builder) = cache.build_rootfs(&digest).expect("build")
                else {
                    panic!("nothing was built yet");
                };
                std::fs::write(builder.path().join("half"), &bytes).expect("write");
                (None, Some(builder))
            };
            writeln!(stdout, "READY").expect("stdout");
            stdout.flush().expect("flush");
            // Bounded, so an orphaned child cannot live forever.
            for _ in 0..600 {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn processes_writing_one_blob_leave_one_correct_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    Cache::open(dir.path()).expect("create cache");
    let children: Vec<_> = (0..6).map(|_| child("write-blob", dir.path())).collect();
    let paths = results(children);
    assert_eq!(paths.len(), 6);
    let cache = Cache::open(dir.path()).expect("reopen");
    let bytes = pattern(BLOB_LEN);
    let expected = cache.blob_path(&sha256(&bytes)).expect("cached");
    assert!(paths.iter().all(|path| Path::new(path) == expected));
    assert_eq!(std::fs::read(&expected).expect("read"), bytes);
    let blobs = dir.path().join("blobs/sha256");
    assert_eq!(std::fs::read_dir(&blobs).expect("list").count(), 1);
}

#[test]
fn processes_building_one_rootfs_build_it_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    Cache::open(dir.path()).expect("create cache");
    let children: Vec<_> = (0..5).map(|_| child("build-rootfs", dir.path())).collect();
    let mut outcomes = results(children);
    outcomes.sort();
    assert_eq!(outcomes, ["built", "ready", "ready", "ready", "ready"]);
    let cache = Cache::open(dir.path()).expect("reopen");
    let rootfs = cache
        .rootfs_path(&sha256(&pattern(BLOB_LEN)))
        .expect("built");
    assert_eq!(std::fs::read_dir(&rootfs).expect("list").count(), 1);
    assert!(temporaries(&dir.path().join("rootfs/sha256")).is_empty());
}

/// Starts a slow child, waits until it holds a half-written temporary, SIGKILLs it.
fn kill_mid_write(role: &str, dir: &Path, temporaries_in: &Path) {
    let mut child = child(role, dir);
    let stdout = child.stdout.take().expect("piped stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .map(|line| line.expect("child output"))
        .any(|line| line.ends_with("READY"));
    assert!(ready, "the child never got ready");
    assert_eq!(
        temporaries(temporaries_in).len(),
        1,
        "a temporary while writing"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(
        temporaries(temporaries_in).len(),
        1,
        "the crash leaves it behind"
    );
}

#[test]
fn a_writer_killed_mid_blob_leaves_nothing_after_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    Cache::open(dir.path()).expect("create cache");
    let blobs = dir.path().join("blobs/sha256");
    kill_mid_write("slow-blob", dir.path(), &blobs);
    let cache = Cache::open(dir.path()).expect("reopen");
    assert!(temporaries(&blobs).is_empty());
    assert_eq!(cache.blob_path(&sha256(&pattern(BLOB_LEN))), None);
    assert_eq!(std::fs::read_dir(&blobs).expect("list").count(), 0);
}

#[test]
fn a_builder_killed_mid_rootfs_leaves_nothing_after_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    Cache::open(dir.path()).expect("create cache");
    let rootfs = dir.path().join("rootfs/sha256");
    kill_mid_write("slow-rootfs", dir.path(), &rootfs);
    let cache = Cache::open(dir.path()).expect("reopen");
    assert!(temporaries(&rootfs).is_empty());
    let manifest = sha256(&pattern(BLOB_LEN));
    assert_eq!(cache.rootfs_path(&manifest), None);
    // The dead builder's lock is gone with it: building again starts afresh.
    assert!(matches!(
        cache.build_rootfs(&manifest).expect("build"),
        RootfsGuard::Build(_)
    ));
}
