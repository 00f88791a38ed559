//! `tank run-spec` against images whose configs cover each conversion rule: entrypoint and
//! command with overrides, environment, working directory and users resolved from the
//! image's own `/etc/passwd` and `/etc/group`.

use serde_json::{Value, json};
use tank_testkit::{ImageBuilder, Platform, Registry, TarBuilder};

use crate::{Scratch, fails, ok, push_image};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A root filesystem with users and groups: `app` (1000) is in `wheel` and `docker` besides
/// its primary group; `root` is in `wheel`.
fn users_layer() -> TarBuilder {
    TarBuilder::new()
        .dir("etc", 0o755)
        .file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n\
             app:x:1000:1000:App:/home/app:/bin/sh\n\
             other:x:1001:1001::/home/other:/bin/sh\n",
            0o644,
        )
        .file(
            "etc/group",
            "root:x:0:\n\
             wheel:x:10:root,app\n\
             staff:x:50:\n\
             docker:x:999:other,app\n\
             app:x:1000:\n\
             other:x:1001:\n",
            0o644,
        )
        .dir("srv", 0o755)
        .dir("home", 0o755)
        .dir("home/app", 0o755)
}

/// Two images: `full` sets Entrypoint, Cmd, Env (with PATH), WorkingDir and User; `bare`
/// sets only Cmd.
struct Images {
    _registry: Registry,
    _layouts: tempfile::TempDir,
    full: String,
    bare: String,
}

fn images() -> Images {
    let registry = Registry::start().expect("docker-registry starts");
    let layouts = tempfile::tempdir().unwrap();
    let platform = || Platform::new("linux", crate::host_arch());
    let full = ImageBuilder::new(platform())
        .layer(&users_layer())
        .entrypoint(&["/bin/app", "--flag"])
        .cmd(&["serve"])
        .env("PATH=/custom/bin")
        .env("A=1")
        .env("B=2")
        .working_dir("/srv")
        .user("app");
    let bare = ImageBuilder::new(platform())
        .layer(&users_layer())
        .cmd(&["/bin/sh"]);
    Images {
        full: push_image(
            &registry,
            &layouts.path().join("full"),
            full,
            "run/spec:full",
        ),
        bare: push_image(
            &registry,
            &layouts.path().join("bare"),
            bare,
            "run/spec:bare",
        ),
        _registry: registry,
        _layouts: layouts,
    }
}

/// `tank run-spec` (offline after the first pull) with `args`; returns `process`.
fn spec(scratch: &Scratch, reference: &str, args: &[&str]) -> Value {
    let mut all = vec![reference];
    all.extend_from_slice(args);
    let value = crate::json(&ok(scratch.tank("run-spec", &all)));
    assert!(
        value["rootfs"]
            .as_str()
            .unwrap()
            .starts_with(scratch.cache().to_str().expect("the scratch path is UTF-8")),
        "{value}"
    );
    assert!(
        value["manifest_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    value["process"].clone()
}

#[test]
fn entrypoint_cmd_env_and_workdir_rules() {
    let scratch = Scratch::new();
    let images = images();
    let full = &images.full;

    let process = spec(&scratch, full, &[]);
    assert_eq!(process["args"], json!(["/bin/app", "--flag", "serve"]));
    assert_eq!(process["env"], json!(["PATH=/custom/bin", "A=1", "B=2"]));
    assert_eq!(process["cwd"], "/srv");

    // A new entrypoint drops the image's Cmd.
    let process = spec(&scratch, full, &["--offline", "--entrypoint", "/bin/other"]);
    assert_eq!(process["args"], json!(["/bin/other"]));
    // ...unless a command is given too.
    let process = spec(
        &scratch,
        full,
        &["--offline", "--entrypoint", "/bin/other", "--", "x", "-y"],
    );
    assert_eq!(process["args"], json!(["/bin/other", "x", "-y"]));
    // A command after `--` replaces Cmd and keeps the entrypoint.
    let process = spec(&scratch, full, &["--offline", "--", "run", "--fast"]);
    assert_eq!(
        process["args"],
        json!(["/bin/app", "--flag", "run", "--fast"])
    );

    // Overrides win in place; new variables are appended.
    let process = spec(
        &scratch,
        full,
        &["--offline", "-e", "A=override", "-e", "NEW=yes"],
    );
    assert_eq!(
        process["env"],
        json!(["PATH=/custom/bin", "A=override", "B=2", "NEW=yes"])
    );
    let process = spec(&scratch, full, &["--offline", "-w", "/elsewhere"]);
    assert_eq!(process["cwd"], "/elsewhere");

    // No Env PATH, no WorkingDir: Docker's PATH first, and `/`.
    let bare = &images.bare;
    let process = spec(&scratch, bare, &[]);
    assert_eq!(process["args"], json!(["/bin/sh"]));
    assert_eq!(process["env"], json!([DEFAULT_PATH]));
    assert_eq!(process["cwd"], "/");
    let process = spec(&scratch, bare, &["--offline", "-e", "X=1", "-w", "/tmp/w"]);
    assert_eq!(process["env"], json!([DEFAULT_PATH, "X=1"]));
    assert_eq!(process["cwd"], "/tmp/w");
    // The empty user is root, with root's supplementary groups.
    assert_eq!(
        process["user"],
        json!({"uid": 0, "gid": 0, "additional_gids": [10], "username": "root", "home": "/root"})
    );

    fails(
        scratch.tank("run-spec", &["--offline", "-w", "relative", bare]),
        &["relative"],
    );
}

#[test]
fn users_resolve_from_the_images_passwd_and_group() {
    let scratch = Scratch::new();
    let images = images();
    let full = &images.full;
    let user = |args: &[&str]| spec(&scratch, full, args)["user"].clone();

    let app = json!({
        "uid": 1000, "gid": 1000, "additional_gids": [10, 999],
        "username": "app", "home": "/home/app"
    });
    // The image's `User: app`, and the same user given by name or uid.
    assert_eq!(user(&[]), app);
    assert_eq!(user(&["--offline", "-u", "app"]), app);
    assert_eq!(user(&["--offline", "-u", "1000"]), app);
    // An explicit group: that gid and no supplementary groups.
    let with_group = |gid: u32| {
        json!({"uid": 1000, "gid": gid, "additional_gids": [],
               "username": "app", "home": "/home/app"})
    };
    assert_eq!(user(&["--offline", "-u", "app:staff"]), with_group(50));
    assert_eq!(user(&["--offline", "-u", "1000:2000"]), with_group(2000));
    assert_eq!(user(&["--offline", "-u", "1000:docker"]), with_group(999));
    let other = user(&["--offline", "-u", "other"]);
    assert_eq!(other["uid"], 1001);
    assert_eq!(other["gid"], 1001);
    assert_eq!(other["additional_gids"], json!([999]));

    fails(
        scratch.tank("run-spec", &["--offline", "-u", "nobody-here", full]),
        &["nobody-here", "/etc/passwd"],
    );
    fails(
        scratch.tank("run-spec", &["--offline", "-u", "app:no-group", full]),
        &["no-group", "/etc/group"],
    );
}
