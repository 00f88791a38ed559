//! Tests of [`RunSpec::from_config`] against temporary rootfs directories.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use oci_spec::image::ImageConfiguration;
use rustix::fs::{self as rfs, FileType, Mode};
use rustix::io::Errno;
use serde_json::json;

use super::user::{InRootOpener, open_openat2, open_walk, read_in_root};
use super::*;

const PASSWD: &str = "\
# a comment, then a blank line

root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
+nisuser::::::
broken line without fields
bad:x:notanumber:1::/:/bin/sh
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001
";

const GROUP: &str = "\
root:x:0:root
daemon:x:1:
wheel:x:10:root,app
audio:x:29:app
# app's primary group lists it too; it must not be repeated as supplementary
app:x:1000:app
video:x:44: app , other
audio-again:x:29:app
staff:x:50:
+:::
";

/// The two ways of opening a file in the root: every in-root test runs both.
#[derive(Clone, Copy, Debug)]
enum Resolver {
    Openat2,
    Walk,
}

fn read_with(rootfs: &Path, path: &str, resolver: Resolver) -> io::Result<Option<String>> {
    let open: InRootOpener = match resolver {
        Resolver::Openat2 => open_openat2,
        Resolver::Walk => open_walk,
    };
    read_in_root(rootfs, path, open)
}

fn config(value: serde_json::Value) -> ImageConfiguration {
    let mut document = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}});
    document["config"] = value;
    serde_json::from_value(document).unwrap()
}

fn rootfs_with(passwd: Option<&str>, group: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("etc")).unwrap();
    if let Some(passwd) = passwd {
        fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
    }
    if let Some(group) = group {
        fs::write(dir.path().join("etc/group"), group).unwrap();
    }
    dir
}

fn standard_rootfs() -> tempfile::TempDir {
    rootfs_with(Some(PASSWD), Some(GROUP))
}

fn spec(config_value: serde_json::Value, overrides: &RunOverrides) -> Result<RunSpec, Error> {
    let rootfs = standard_rootfs();
    RunSpec::from_config(&config(config_value), rootfs.path(), overrides)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn user_of(rootfs: &Path, user: &str) -> Result<RunUser, Error> {
    let overrides = RunOverrides {
        user: Some(user.to_owned()),
        ..RunOverrides::default()
    };
    RunSpec::from_config(&config(json!({"Cmd": ["true"]})), rootfs, &overrides)
        .map(|spec| spec.user)
}

// ---- args ----

#[test]
fn args_are_entrypoint_then_cmd() {
    let image = json!({"Entrypoint": ["/entry", "-x"], "Cmd": ["run", "fast"]});
    let spec = spec(image, &RunOverrides::default()).unwrap();
    assert_eq!(spec.args, strings(&["/entry", "-x", "run", "fast"]));
}

#[test]
fn cmd_alone_is_the_program() {
    let spec = spec(
        json!({"Cmd": ["/bin/sh", "-c", "echo"]}),
        &RunOverrides::default(),
    )
    .unwrap();
    assert_eq!(spec.args, strings(&["/bin/sh", "-c", "echo"]));
}

#[test]
fn entrypoint_override_drops_image_cmd() {
    let overrides = RunOverrides {
        entrypoint: Some(strings(&["/other"])),
        ..RunOverrides::default()
    };
    let image = json!({"Entrypoint": ["/entry"], "Cmd": ["image-arg"]});
    assert_eq!(spec(image, &overrides).unwrap().args, strings(&["/other"]));
}

#[test]
fn entrypoint_and_cmd_overrides_combine() {
    let overrides = RunOverrides {
        entrypoint: Some(strings(&["/other"])),
        cmd: Some(strings(&["a", "b"])),
        ..RunOverrides::default()
    };
    let image = json!({"Entrypoint": ["/entry"], "Cmd": ["image-arg"]});
    assert_eq!(
        spec(image, &overrides).unwrap().args,
        strings(&["/other", "a", "b"])
    );
}

#[test]
fn cmd_override_keeps_image_entrypoint() {
    let overrides = RunOverrides {
        cmd: Some(strings(&["--help"])),
        ..RunOverrides::default()
    };
    let image = json!({"Entrypoint": ["/entry", "-x"], "Cmd": ["image-arg"]});
    assert_eq!(
        spec(image, &overrides).unwrap().args,
        strings(&["/entry", "-x", "--help"])
    );
}

#[test]
fn empty_entrypoint_override_clears_entrypoint_and_keeps_image_cmd() {
    let overrides = RunOverrides {
        entrypoint: Some(Vec::new()),
        ..RunOverrides::default()
    };
    let image = json!({"Entrypoint": ["/entry"], "Cmd": ["/bin/sh"]});
    assert_eq!(spec(image, &overrides).unwrap().args, strings(&["/bin/sh"]));
}

#[test]
fn empty_cmd_override_replaces_image_cmd() {
    let overrides = RunOverrides {
        cmd: Some(Vec::new()),
        ..RunOverrides::default()
    };
    let image = json!({"Entrypoint": ["/entry"], "Cmd": ["image-arg"]});
    assert_eq!(spec(image, &overrides).unwrap().args, strings(&["/entry"]));
}

#[test]
fn nothing_to_run_is_an_error() {
    assert!(matches!(
        spec(json!({"Env": ["A=1"]}), &RunOverrides::default()),
        Err(Error::NoCommand)
    ));
    assert!(matches!(
        spec(
            json!({"Cmd": null, "Entrypoint": []}),
            &RunOverrides::default()
        ),
        Err(Error::NoCommand)
    ));
    // A config without a `config` object at all.
    let bare: ImageConfiguration =
        serde_json::from_value(json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})).unwrap();
    let rootfs = standard_rootfs();
    let result = RunSpec::from_config(&bare, rootfs.path(), &RunOverrides::default());
    assert!(matches!(result, Err(Error::NoCommand)));
    // The same bare config runs when the caller gives a command.
    let overrides = RunOverrides {
        cmd: Some(strings(&["/bin/true"])),
        ..RunOverrides::default()
    };
    let spec = RunSpec::from_config(&bare, rootfs.path(), &overrides).unwrap();
    assert_eq!(spec.args, strings(&["/bin/true"]));
    assert_eq!(spec.cwd, "/");
    assert_eq!(spec.env, vec![format!("PATH={DEFAULT_PATH}")]);
}

// ---- env ----

#[test]
fn env_override_replaces_in_place_and_appends() {
    let image = json!({"Cmd": ["x"], "Env": ["PATH=/bin", "A=1", "B=2", "A=dup"]});
    let overrides = RunOverrides {
        env: strings(&["A=override", "C=3", "C=4", "EMPTY="]),
        ..RunOverrides::default()
    };
    let spec = spec(image, &overrides).unwrap();
    assert_eq!(
        spec.env,
        strings(&["PATH=/bin", "A=override", "B=2", "C=4", "EMPTY="])
    );
}

#[test]
fn env_values_may_contain_equals_signs() {
    let image = json!({"Cmd": ["x"], "Env": ["OPTS=a=b"]});
    let overrides = RunOverrides {
        env: strings(&["OPTS=c=d"]),
        ..RunOverrides::default()
    };
    let spec = spec(image, &overrides).unwrap();
    assert_eq!(
        spec.env,
        strings(&[&format!("PATH={DEFAULT_PATH}"), "OPTS=c=d"])
    );
}

#[test]
fn path_default_only_when_missing() {
    let without = spec(
        json!({"Cmd": ["x"], "Env": ["A=1"]}),
        &RunOverrides::default(),
    )
    .unwrap();
    assert_eq!(
        without.env,
        strings(&[&format!("PATH={DEFAULT_PATH}"), "A=1"])
    );

    let with = spec(
        json!({"Cmd": ["x"], "Env": ["A=1", "PATH=/opt"]}),
        &RunOverrides::default(),
    )
    .unwrap();
    assert_eq!(with.env, strings(&["A=1", "PATH=/opt"]));

    let overrides = RunOverrides {
        env: strings(&["PATH=/mine"]),
        ..RunOverrides::default()
    };
    let from_override = spec(json!({"Cmd": ["x"]}), &overrides).unwrap();
    assert_eq!(from_override.env, strings(&["PATH=/mine"]));

    // A variable merely starting with PATH is not PATH.
    let lookalike = spec(
        json!({"Cmd": ["x"], "Env": ["PATHEXT=.sh"]}),
        &RunOverrides::default(),
    )
    .unwrap();
    assert_eq!(
        lookalike.env,
        strings(&[&format!("PATH={DEFAULT_PATH}"), "PATHEXT=.sh"])
    );
}

#[test]
fn env_entries_without_equals_are_errors_naming_them() {
    let overrides = RunOverrides {
        env: strings(&["JUSTKEY"]),
        ..RunOverrides::default()
    };
    match spec(json!({"Cmd": ["x"]}), &overrides) {
        Err(error @ Error::InvalidEnv { .. }) => {
            let message = error.to_string();
            assert!(message.contains("\"JUSTKEY\""), "{message}");
            assert!(message.contains("the overrides"), "{message}");
        }
        other => panic!("expected InvalidEnv, got {other:?}"),
    }
    match spec(
        json!({"Cmd": ["x"], "Env": ["=nokey"]}),
        &RunOverrides::default(),
    ) {
        Err(Error::InvalidEnv { entry, origin }) => {
            assert_eq!(entry, "=nokey");
            assert_eq!(origin, "the image config");
        }
        other => panic!("expected InvalidEnv, got {other:?}"),
    }
}

// ---- cwd ----

#[test]
fn working_dir_defaults_to_root_and_override_wins() {
    let plain = spec(json!({"Cmd": ["x"]}), &RunOverrides::default()).unwrap();
    assert_eq!(plain.cwd, "/");
    let empty = spec(
        json!({"Cmd": ["x"], "WorkingDir": ""}),
        &RunOverrides::default(),
    )
    .unwrap();
    assert_eq!(empty.cwd, "/");
    let image = spec(
        json!({"Cmd": ["x"], "WorkingDir": "/srv/app"}),
        &RunOverrides::default(),
    )
    .unwrap();
    assert_eq!(image.cwd, "/srv/app");
    let overrides = RunOverrides {
        workdir: Some("/tmp/work".to_owned()),
        ..RunOverrides::default()
    };
    let overridden = spec(json!({"Cmd": ["x"], "WorkingDir": "/srv/app"}), &overrides).unwrap();
    assert_eq!(overridden.cwd, "/tmp/work");
}

#[test]
fn relative_working_dir_is_an_error() {
    match spec(
        json!({"Cmd": ["x"], "WorkingDir": "srv"}),
        &RunOverrides::default(),
    ) {
        Err(Error::RelativeWorkdir { workdir }) => assert_eq!(workdir, "srv"),
        other => panic!("expected RelativeWorkdir, got {other:?}"),
    }
    let overrides = RunOverrides {
        workdir: Some("./here".to_owned()),
        ..RunOverrides::default()
    };
    assert!(matches!(
        spec(json!({"Cmd": ["x"]}), &overrides),
        Err(Error::RelativeWorkdir { .. })
    ));
}

// ---- user ----

#[derive(Debug)]
struct Expected {
    uid: u32,
    gid: u32,
    additional: &'static [u32],
    name: Option<&'static str>,
    home: &'static str,
}

fn check_user(rootfs: &Path, user: &str, expected: Expected) {
    let resolved = user_of(rootfs, user).unwrap_or_else(|error| panic!("{user:?}: {error}"));
    assert_eq!(
        (
            resolved.uid,
            resolved.gid,
            resolved.additional_gids.as_slice(),
            resolved.username.as_deref(),
            resolved.home.as_str(),
        ),
        (
            expected.uid,
            expected.gid,
            expected.additional,
            expected.name,
            expected.home,
        ),
        "user spec {user:?}"
    );
}

#[test]
fn user_forms_resolve_through_passwd_and_group() {
    let rootfs = standard_rootfs();
    let root = rootfs.path();
    let app = |gid, additional| Expected {
        uid: 1000,
        gid,
        additional,
        name: Some("app"),
        home: "/home/app",
    };
    // Implicit group: primary gid from passwd, supplementary from group in file order,
    // without the primary (app:x:1000) and without the duplicate gid 29.
    check_user(root, "app", app(1000, &[10, 29, 44]));
    check_user(root, "1000", app(1000, &[10, 29, 44]));
    check_user(root, "app:", app(1000, &[10, 29, 44]));
    // Explicit group: that gid, no supplementary groups.
    check_user(root, "app:wheel", app(10, &[]));
    check_user(root, "app:50", app(50, &[]));
    check_user(root, "1000:audio", app(29, &[]));
    check_user(root, "1000:4242", app(4242, &[]));
    // A numeric uid without a passwd entry: gid 0, no name, home "/".
    let stranger = |gid| Expected {
        uid: 4242,
        gid,
        additional: &[],
        name: None,
        home: "/",
    };
    check_user(root, "4242", stranger(0));
    check_user(root, "4242:4343", stranger(4343));
    check_user(root, "4242:staff", stranger(50));
    // Empty and absent: uid 0, looked up, so root gets its groups (as under Docker).
    let root_user = |gid, additional| Expected {
        uid: 0,
        gid,
        additional,
        name: Some("root"),
        home: "/root",
    };
    check_user(root, "", root_user(0, &[10]));
    check_user(root, "root", root_user(0, &[10]));
    check_user(root, "0", root_user(0, &[10]));
    check_user(root, ":daemon", root_user(1, &[]));
    // A passwd entry with no home field.
    check_user(
        root,
        "nohome",
        Expected {
            uid: 1001,
            gid: 1001,
            additional: &[],
            name: Some("nohome"),
            home: "/",
        },
    );
}

#[test]
fn config_user_is_used_unless_overridden() {
    let rootfs = standard_rootfs();
    let image = config(json!({"Cmd": ["x"], "User": "app"}));
    let from_image = RunSpec::from_config(&image, rootfs.path(), &RunOverrides::default()).unwrap();
    assert_eq!((from_image.user.uid, from_image.user.gid), (1000, 1000));
    let overrides = RunOverrides {
        user: Some("daemon".to_owned()),
        ..RunOverrides::default()
    };
    let overridden = RunSpec::from_config(&image, rootfs.path(), &overrides).unwrap();
    assert_eq!((overridden.user.uid, overridden.user.gid), (1, 1));
    // An empty override means root, not "keep the image's user".
    let overrides = RunOverrides {
        user: Some(String::new()),
        ..RunOverrides::default()
    };
    assert_eq!(
        RunSpec::from_config(&image, rootfs.path(), &overrides)
            .unwrap()
            .user
            .uid,
        0
    );
}

#[test]
fn unknown_user_and_group_are_errors() {
    let rootfs = standard_rootfs();
    match user_of(rootfs.path(), "nobody-here") {
        Err(error @ Error::UnknownUser { .. }) => {
            let message = error.to_string();
            assert!(message.contains("\"nobody-here\""), "{message}");
            assert!(message.contains("/etc/passwd"), "{message}");
            assert!(!message.contains("no such file"), "{message}");
        }
        other => panic!("expected UnknownUser, got {other:?}"),
    }
    match user_of(rootfs.path(), "app:nogroup") {
        Err(Error::UnknownGroup {
            group, group_found, ..
        }) => {
            assert_eq!(group, "nogroup");
            assert!(group_found);
        }
        other => panic!("expected UnknownGroup, got {other:?}"),
    }
    // The malformed and NIS lines define nobody.
    assert!(matches!(
        user_of(rootfs.path(), "bad"),
        Err(Error::UnknownUser { .. })
    ));
    assert!(matches!(
        user_of(rootfs.path(), "+nisuser"),
        Err(Error::UnknownUser { .. })
    ));
}

#[test]
fn numeric_ids_out_of_range_are_errors() {
    let rootfs = standard_rootfs();
    for user in [
        "4294967296",
        "99999999999999999999",
        "4294967295",
        "1000:4294967296",
    ] {
        match user_of(rootfs.path(), user) {
            Err(Error::InvalidUser { user: given, .. }) => assert_eq!(given, user),
            other => panic!("{user:?}: expected InvalidUser, got {other:?}"),
        }
    }
    check_user(
        rootfs.path(),
        "4294967294",
        Expected {
            uid: 4_294_967_294,
            gid: 0,
            additional: &[],
            name: None,
            home: "/",
        },
    );
}

#[test]
fn missing_user_files_are_fine_for_numbers_and_errors_for_names() {
    let rootfs = rootfs_with(None, None);
    check_user(
        rootfs.path(),
        "",
        Expected {
            uid: 0,
            gid: 0,
            additional: &[],
            name: None,
            home: "/",
        },
    );
    check_user(
        rootfs.path(),
        "1000:1000",
        Expected {
            uid: 1000,
            gid: 1000,
            additional: &[],
            name: None,
            home: "/",
        },
    );
    match user_of(rootfs.path(), "app") {
        Err(error @ Error::UnknownUser { .. }) => {
            assert!(error.to_string().contains("no such file"), "{error}");
        }
        other => panic!("expected UnknownUser, got {other:?}"),
    }
    match user_of(rootfs.path(), "1000:wheel") {
        Err(error @ Error::UnknownGroup { .. }) => {
            assert!(error.to_string().contains("no such file"), "{error}");
        }
        other => panic!("expected UnknownGroup, got {other:?}"),
    }
    // Passwd present, group missing: the user resolves without supplementary groups.
    let rootfs = rootfs_with(Some(PASSWD), None);
    check_user(
        rootfs.path(),
        "app",
        Expected {
            uid: 1000,
            gid: 1000,
            additional: &[],
            name: Some("app"),
            home: "/home/app",
        },
    );
}

// ---- in-root reading ----

/// A passwd only the rootfs has: `tankonly` exists nowhere on the host, and root's gid 777
/// differs from every host's 0.
const ROOTFS_ONLY_PASSWD: &str =
    "root:x:0:777:root:/root:/bin/sh\ntankonly:x:4242:4343::/t:/bin/sh\n";

fn assert_reads_rootfs_file(rootfs: &Path) {
    for resolver in [Resolver::Openat2, Resolver::Walk] {
        let text = read_with(rootfs, "etc/passwd", resolver)
            .unwrap_or_else(|error| panic!("{resolver:?}: {error}"));
        assert_eq!(text.as_deref(), Some(ROOTFS_ONLY_PASSWD), "{resolver:?}");
    }
    check_user(
        rootfs,
        "tankonly",
        Expected {
            uid: 4242,
            gid: 4343,
            additional: &[],
            name: Some("tankonly"),
            home: "/t",
        },
    );
    let root_user = user_of(rootfs, "root").unwrap();
    assert_eq!(root_user.gid, 777, "root must come from the rootfs's file");
}

fn plant(rootfs: &Path, path: &str, contents: &str) {
    let full = rootfs.join(path);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, contents).unwrap();
}

#[test]
fn absolute_passwd_symlink_resolves_inside_rootfs() {
    let rootfs = rootfs_with(None, None);
    plant(rootfs.path(), "srv/users/passwd", ROOTFS_ONLY_PASSWD);
    symlink("/srv/users/passwd", rootfs.path().join("etc/passwd")).unwrap();
    assert_reads_rootfs_file(rootfs.path());
}

#[test]
fn dotdot_passwd_symlink_is_clamped_at_rootfs() {
    let rootfs = rootfs_with(None, None);
    plant(rootfs.path(), "srv/users/passwd", ROOTFS_ONLY_PASSWD);
    let up = "../".repeat(40);
    symlink(
        format!("{up}srv/users/passwd"),
        rootfs.path().join("etc/passwd"),
    )
    .unwrap();
    assert_reads_rootfs_file(rootfs.path());
}

#[test]
fn proc_self_root_symlink_does_not_reach_host() {
    // On the host this path is the host's own /etc/passwd, through a magic link.
    assert!(Path::new("/proc/self/root/etc/passwd").exists());
    let rootfs = rootfs_with(None, None);
    plant(
        rootfs.path(),
        "proc/self/root/etc/passwd",
        ROOTFS_ONLY_PASSWD,
    );
    symlink(
        "/proc/self/root/etc/passwd",
        rootfs.path().join("etc/passwd"),
    )
    .unwrap();
    assert_reads_rootfs_file(rootfs.path());
}

#[test]
fn symlinked_etc_directory_resolves_inside_rootfs() {
    let rootfs = tempfile::tempdir().unwrap();
    plant(rootfs.path(), "usr/etc/passwd", ROOTFS_ONLY_PASSWD);
    // `/etc` -> `../../../usr/etc`: relative, climbing past the root first.
    symlink("../../../usr/etc", rootfs.path().join("etc")).unwrap();
    assert_reads_rootfs_file(rootfs.path());
}

#[test]
fn passwd_symlink_to_host_etc_passwd_is_a_loop_not_the_host_file() {
    assert!(Path::new("/etc/passwd").exists());
    for target in ["/etc/passwd", "../../../../../../../../../etc/passwd"] {
        let rootfs = rootfs_with(None, Some(GROUP));
        symlink(target, rootfs.path().join("etc/passwd")).unwrap();
        for resolver in [Resolver::Openat2, Resolver::Walk] {
            let error = read_with(rootfs.path(), "etc/passwd", resolver).unwrap_err();
            assert_eq!(
                error.raw_os_error(),
                Some(Errno::LOOP.raw_os_error()),
                "{target} {resolver:?}: {error}"
            );
        }
        match user_of(rootfs.path(), "root") {
            Err(error @ Error::ReadUserDatabase { .. }) => {
                assert!(error.to_string().contains("/etc/passwd"), "{error}");
            }
            other => panic!("{target}: expected ReadUserDatabase, got {other:?}"),
        }
    }
}

#[test]
fn dangling_passwd_symlink_gives_clear_error_for_names() {
    let rootfs = rootfs_with(None, Some(GROUP));
    symlink("/nonexistent/passwd", rootfs.path().join("etc/passwd")).unwrap();
    for resolver in [Resolver::Openat2, Resolver::Walk] {
        assert_eq!(
            read_with(rootfs.path(), "etc/passwd", resolver).unwrap(),
            None,
            "{resolver:?}"
        );
    }
    match user_of(rootfs.path(), "app") {
        Err(error @ Error::UnknownUser { .. }) => {
            let message = error.to_string();
            assert!(message.contains("\"app\""), "{message}");
            assert!(message.contains("no such file in the rootfs"), "{message}");
        }
        other => panic!("expected UnknownUser, got {other:?}"),
    }
    // Numbers still work, with groups named in /etc/group.
    let user = user_of(rootfs.path(), "1000:wheel").unwrap();
    assert_eq!((user.uid, user.gid), (1000, 10));
}

#[test]
fn user_files_must_be_small_regular_files() {
    let rootfs = rootfs_with(None, None);
    fs::create_dir(rootfs.path().join("etc/passwd")).unwrap();
    assert!(matches!(
        user_of(rootfs.path(), "app"),
        Err(Error::ReadUserDatabase { .. })
    ));

    let rootfs = rootfs_with(None, None);
    rfs::mknodat(
        rfs::CWD,
        rootfs.path().join("etc/passwd"),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    // A FIFO must neither block the read nor be taken for a file.
    for resolver in [Resolver::Openat2, Resolver::Walk] {
        let error = read_with(rootfs.path(), "etc/passwd", resolver).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }

    let rootfs = rootfs_with(None, None);
    let mut huge = ROOTFS_ONLY_PASSWD.to_owned();
    huge.push_str(&"#".repeat(usize::try_from(USER_DB_SIZE_LIMIT).unwrap()));
    fs::write(rootfs.path().join("etc/passwd"), huge).unwrap();
    match user_of(rootfs.path(), "tankonly") {
        Err(Error::ReadUserDatabase { source, .. }) => {
            assert!(source.to_string().contains("limit"), "{source}");
        }
        other => panic!("expected ReadUserDatabase, got {other:?}"),
    }
    // Exactly at the limit is still read.
    let rootfs = rootfs_with(None, None);
    let mut at_limit = ROOTFS_ONLY_PASSWD.to_owned();
    let padding = usize::try_from(USER_DB_SIZE_LIMIT).unwrap() - at_limit.len();
    at_limit.push_str(&"#".repeat(padding));
    fs::write(rootfs.path().join("etc/passwd"), at_limit).unwrap();
    assert_eq!(user_of(rootfs.path(), "tankonly").unwrap().uid, 4242);
}

#[test]
fn walk_resolves_like_openat2() {
    let rootfs = standard_rootfs();
    plant(rootfs.path(), "a/b/file", "content\n");
    symlink("b/../b/./file", rootfs.path().join("a/rel")).unwrap();
    symlink("/a/b", rootfs.path().join("a/abs-dir")).unwrap();
    symlink("loop2", rootfs.path().join("loop1")).unwrap();
    symlink("loop1", rootfs.path().join("loop2")).unwrap();
    let cases: &[(&str, Result<Option<&str>, Errno>)] = &[
        ("a/b/file", Ok(Some("content\n"))),
        ("a/rel", Ok(Some("content\n"))),
        ("a/abs-dir/file", Ok(Some("content\n"))),
        ("a/abs-dir/../b/file", Ok(Some("content\n"))),
        ("../../a/b/file", Ok(Some("content\n"))),
        ("a/missing", Ok(None)),
        ("etc/passwd/below-a-file", Ok(None)),
        ("loop1", Err(Errno::LOOP)),
    ];
    for (path, expected) in cases {
        for resolver in [Resolver::Openat2, Resolver::Walk] {
            let got = read_with(rootfs.path(), path, resolver);
            match (expected, got) {
                (Ok(want), Ok(text)) => assert_eq!(text.as_deref(), *want, "{path} {resolver:?}"),
                (Err(errno), Err(error)) => {
                    assert_eq!(error.raw_os_error(), Some(errno.raw_os_error()), "{path}");
                }
                (want, got) => panic!("{path} {resolver:?}: expected {want:?}, got {got:?}"),
            }
        }
    }
}

// ---- JSON ----

#[test]
fn json_has_stable_field_names() {
    let image = json!({
        "Entrypoint": ["/entry"],
        "Cmd": ["arg"],
        "Env": ["A=1"],
        "WorkingDir": "/w",
        "User": "app",
        "StopSignal": "SIGRTMIN+3"
    });
    let run_spec = spec(image, &RunOverrides::default()).unwrap();
    let value = serde_json::to_value(&run_spec).unwrap();
    assert_eq!(
        value,
        json!({
            "args": ["/entry", "arg"],
            "env": [format!("PATH={DEFAULT_PATH}"), "A=1"],
            "cwd": "/w",
            "user": {
                "uid": 1000,
                "gid": 1000,
                "additional_gids": [10, 29, 44],
                "username": "app",
                "home": "/home/app"
            },
            "stop_signal": "SIGRTMIN+3"
        })
    );
    let back: RunSpec = serde_json::from_value(value).unwrap();
    assert_eq!(back, run_spec);
    let no_signal = spec(json!({"Cmd": ["x"]}), &RunOverrides::default()).unwrap();
    assert_eq!(
        serde_json::to_value(&no_signal).unwrap()["stop_signal"],
        json!(null)
    );
}
