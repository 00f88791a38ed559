//! Rootfs: one builder per digest, complete or absent, temporaries removed.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use tank_cache::RootfsGuard;

use crate::{new_cache, sha256, temporaries};

#[test]
fn a_committed_rootfs_is_found_and_not_rebuilt() {
    let (_dir, cache) = new_cache();
    let manifest = sha256(b"manifest one");
    assert_eq!(cache.rootfs_path(&manifest), None);
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    assert!(
        builder
            .path()
            .starts_with(cache.root().join("rootfs/sha256"))
    );
    std::fs::create_dir(builder.path().join("etc")).expect("mkdir");
    std::fs::write(builder.path().join("etc/hostname"), "tank").expect("write");
    let path = builder.commit().expect("commit");
    assert_eq!(
        path,
        cache.root().join("rootfs/sha256").join(manifest.hex())
    );
    assert_eq!(cache.rootfs_path(&manifest), Some(path.clone()));
    assert_eq!(
        std::fs::read_to_string(path.join("etc/hostname")).expect("read"),
        "tank"
    );
    match cache.build_rootfs(&manifest).expect("build again") {
        RootfsGuard::Ready(ready) => assert_eq!(ready, path),
        RootfsGuard::Build(_) => panic!("a built rootfs must be reused"),
    }
}

#[test]
fn dropping_a_builder_removes_even_read_only_trees() {
    let (_dir, cache) = new_cache();
    let manifest = sha256(b"abandoned");
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    let locked = builder.path().join("usr");
    std::fs::create_dir(&locked).expect("mkdir");
    std::fs::write(locked.join("file"), "x").expect("write");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    drop(builder);
    assert!(temporaries(&cache.root().join("rootfs/sha256")).is_empty());
    assert_eq!(cache.rootfs_path(&manifest), None);
    assert!(matches!(
        cache.build_rootfs(&manifest).expect("build"),
        RootfsGuard::Build(_)
    ));
}

#[test]
fn threads_building_one_rootfs_build_it_once() {
    let (_dir, cache) = new_cache();
    let manifest = sha256(b"shared manifest");
    let builds = AtomicUsize::new(0);
    let paths: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|index| {
                let (cache, manifest, builds) = (&cache, &manifest, &builds);
                scope.spawn(move || match cache.build_rootfs(manifest).expect("build") {
                    RootfsGuard::Ready(path) => path,
                    RootfsGuard::Build(builder) => {
                        builds.fetch_add(1, Ordering::SeqCst);
                        std::fs::write(builder.path().join(format!("built-by-{index}")), "")
                            .expect("write");
                        builder.commit().expect("commit")
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("thread"))
            .collect()
    });
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert!(paths.iter().all(|path| *path == paths[0]));
    assert_eq!(std::fs::read_dir(&paths[0]).expect("list").count(), 1);
}

#[test]
fn a_waiting_builder_gets_ready_when_the_first_commits() {
    let (_dir, cache) = new_cache();
    let manifest = sha256(b"waited for");
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| cache.build_rootfs(&manifest).expect("second build"));
        std::fs::write(builder.path().join("file"), "first").expect("write");
        let path = builder.commit().expect("commit");
        match waiter.join().expect("thread") {
            RootfsGuard::Ready(ready) => assert_eq!(ready, path),
            RootfsGuard::Build(_) => panic!("the second builder must reuse the first's rootfs"),
        }
    });
}

#[test]
fn different_digests_build_in_parallel() {
    let (_dir, cache) = new_cache();
    let first = sha256(b"first image");
    let second = sha256(b"second image");
    let RootfsGuard::Build(first_builder) = cache.build_rootfs(&first).expect("build") else {
        panic!("nothing was built yet");
    };
    // Holding the first digest's lock must not block the second digest.
    let RootfsGuard::Build(second_builder) = cache.build_rootfs(&second).expect("build") else {
        panic!("nothing was built yet");
    };
    second_builder.commit().expect("commit second");
    first_builder.commit().expect("commit first");
    assert!(cache.rootfs_path(&first).is_some());
    assert!(cache.rootfs_path(&second).is_some());
}

#[test]
fn a_rebuild_replaces_the_cached_tree_only_at_commit() {
    let (_dir, cache) = new_cache();
    let manifest = sha256(b"refreshed");
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    std::fs::write(builder.path().join("old"), "old tree").expect("write");
    // A read-only directory in the old tree must not stop its removal.
    std::fs::create_dir(builder.path().join("ro")).expect("mkdir");
    std::fs::write(builder.path().join("ro/file"), "x").expect("write");
    std::fs::set_permissions(
        builder.path().join("ro"),
        std::fs::Permissions::from_mode(0o555),
    )
    .expect("chmod");
    let path = builder.commit().expect("commit");

    let rebuild = cache.rebuild_rootfs(&manifest).expect("rebuild");
    assert_ne!(rebuild.path(), path.as_path());
    std::fs::write(rebuild.path().join("new"), "new tree").expect("write");
    // Until the commit, the old tree stays complete under the final name.
    assert!(path.join("old").is_file());
    assert_eq!(rebuild.commit().expect("commit rebuild"), path);
    assert!(path.join("new").is_file());
    assert!(!path.join("old").exists());
    assert_eq!(
        temporaries(&cache.root().join("rootfs/sha256")),
        Vec::<String>::new()
    );
}
