//! What the `manifest` fuzz target asserts about the body of any input read as an image
//! config, shared with the corpus replay test (tests/image/fuzz_config.rs, a `mod`) and the fuzz
//! target (through `#[path]`).
//!
//! A body that parses as an `ImageConfiguration` must survive the JSON round trip the refs
//! sidecar puts it through, and `RunSpec::from_config` on it (no overrides, over the rootfs
//! [`make_rootfs`] writes) must not panic and, when it succeeds, follow the conversion rules:
//! args are the entrypoint then the command, the env is the config's with `PATH` first when
//! it has none, the working directory is absolute, a numeric user is that uid, and the
//! result survives its own JSON round trip.

use std::path::Path;

use oci_spec::image::ImageConfiguration;
use tank_image::{DEFAULT_PATH, RunOverrides, RunSpec};

/// `/etc/passwd` of the rootfs the user is resolved in.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
/// `/etc/group` of the rootfs: `root` and `app` are in `wheel`.
const GROUP: &str = "root:x:0:\nwheel:x:10:root,app\napp:x:1000:\n";

/// Writes the small user database the configs' users are resolved against into `rootfs`.
pub(crate) fn make_rootfs(rootfs: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(rootfs.join("etc"))?;
    std::fs::write(rootfs.join("etc/passwd"), PASSWD)?;
    std::fs::write(rootfs.join("etc/group"), GROUP)
}

/// Checks the invariants on `body` with the user database in `rootfs` (see [`make_rootfs`]),
/// panicking with the broken one. Returns whether the body is a config that gave a
/// [`RunSpec`].
pub(crate) fn check(body: &[u8], rootfs: &Path) -> bool {
    let Ok(config) = serde_json::from_slice::<ImageConfiguration>(body) else {
        return false;
    };
    let json = serde_json::to_vec(&config)
        .unwrap_or_else(|error| panic!("a parsed config does not serialize: {error}"));
    let again: ImageConfiguration = serde_json::from_slice(&json).unwrap_or_else(|error| {
        panic!(
            "a config does not parse back from its own JSON {}: {error}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(
        again, config,
        "a config changes through its JSON round trip"
    );

    let Ok(spec) = RunSpec::from_config(&config, rootfs, &RunOverrides::default()) else {
        return false;
    };
    let image = config.config().clone().unwrap_or_default();
    let expected_args: Vec<String> = image
        .entrypoint()
        .iter()
        .flatten()
        .chain(image.cmd().iter().flatten())
        .cloned()
        .collect();
    assert!(!spec.args.is_empty(), "a RunSpec with nothing to run");
    assert_eq!(spec.args, expected_args, "args are not entrypoint + cmd");

    let image_env = image.env().clone().unwrap_or_default();
    assert!(
        spec.env.iter().all(|entry| entry
            .split_once('=')
            .is_some_and(|(key, _)| !key.is_empty())),
        "env entry without a key: {:?}",
        spec.env
    );
    if image_env.iter().any(|entry| entry.starts_with("PATH=")) {
        assert_eq!(spec.env, image_env, "the env is not the config's");
    } else {
        assert_eq!(spec.env[0], format!("PATH={DEFAULT_PATH}"));
        assert_eq!(spec.env[1..], image_env[..], "the env is not the config's");
    }

    assert!(spec.cwd.starts_with('/'), "relative cwd {:?}", spec.cwd);
    match image.working_dir().as_deref() {
        Some(dir) if !dir.is_empty() => assert_eq!(spec.cwd, dir),
        _ => assert_eq!(spec.cwd, "/"),
    }

    let user = image.user().clone().unwrap_or_default();
    match user.as_str() {
        "" | "root" | "0" => {
            assert_eq!((spec.user.uid, spec.user.gid), (0, 0), "user {user:?}");
            assert_eq!(spec.user.additional_gids, [10], "user {user:?}");
        }
        "app" | "1000" => {
            assert_eq!(
                (spec.user.uid, spec.user.gid),
                (1000, 1000),
                "user {user:?}"
            );
            assert_eq!(spec.user.additional_gids, [10], "user {user:?}");
        }
        numeric if !numeric.contains(':') => {
            if let Ok(uid) = numeric.parse::<u32>() {
                assert_eq!(spec.user.uid, uid, "user {user:?}");
            }
        }
        _ => {}
    }
    assert_eq!(spec.stop_signal, *image.stop_signal(), "stop signal");

    let json = serde_json::to_string(&spec)
        .unwrap_or_else(|error| panic!("a RunSpec does not serialize: {error}"));
    let again: RunSpec = serde_json::from_str(&json)
        .unwrap_or_else(|error| panic!("a RunSpec does not parse back from {json}: {error}"));
    assert_eq!(again, spec, "a RunSpec changes through its JSON round trip");
    true
}
