//! `tank pull` against hostile registries and images: every pull ends (error or success) in
//! bounded time, with a peak RSS under 64 MiB, and leaves a cache the next command can use.
//! Each test prints the peak RSS and wall time it measured (`--nocapture` shows them).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tank_testkit::{Compression, ImageBuilder, Measured, Platform, Registry, TarBuilder};

use crate::{Scratch, fails, ok, push_image, tank};

/// The memory ceiling of any pull, whatever the registry and the image do.
const RSS_CEILING: u64 = 64 * 1024 * 1024;

/// Long enough for a debug build on a loaded machine; a pull that has no bound never ends.
const DEADLINE: Duration = Duration::from_secs(90);

/// Runs `tank pull --cache <cache> ARGS`, measured; asserts it ended by itself under the
/// memory ceiling and prints what it cost.
fn measured_pull(scratch: &Scratch, case: &str, args: &[&str]) -> Output {
    let mut command = tank(scratch.home());
    command
        .arg("pull")
        .arg("--cache")
        .arg(scratch.cache())
        .args(args);
    let outside = outside_the_cache(scratch);
    let measured: Measured =
        tank_testkit::output_with_usage(&mut command, DEADLINE).expect("tank runs");
    assert_eq!(
        outside_the_cache(scratch),
        outside,
        "{case}: the pull changed something outside its cache"
    );
    eprintln!(
        "{case}: peak RSS {:.1} MiB, {:.2} s wall, {:.2} s CPU",
        measured.max_rss_mib(),
        measured.wall.as_secs_f64(),
        measured.usage.cpu.as_secs_f64()
    );
    assert!(
        !measured.timed_out,
        "{case}: tank pull was still running after {} s: {}",
        DEADLINE.as_secs(),
        String::from_utf8_lossy(&measured.stderr)
    );
    assert!(
        measured.usage.max_rss < RSS_CEILING,
        "{case}: peak RSS {:.1} MiB is over the 64 MiB ceiling",
        measured.max_rss_mib()
    );
    Output {
        status: measured.status,
        stdout: measured.stdout,
        stderr: measured.stderr,
    }
}

/// Every path of the scratch home outside the cache, with its size and modification time,
/// and a sentinel file planted next to the cache.
fn outside_the_cache(scratch: &Scratch) -> Vec<(std::path::PathBuf, u64, i64)> {
    use std::os::unix::fs::MetadataExt as _;
    let sentinel = scratch.home().join("sentinel");
    if !sentinel.exists() {
        std::fs::write(&sentinel, "outside\n").expect("the sentinel is written");
    }
    let mut paths: Vec<_> = crate::pull::walk(scratch.home())
        .into_iter()
        .filter(|path| !path.starts_with(scratch.cache()))
        .map(|path| {
            let metadata = std::fs::symlink_metadata(&path).expect("a path outside the cache");
            (path, metadata.len(), metadata.mtime())
        })
        .collect();
    paths.sort();
    paths
}

/// The cache is usable by the next commands and holds no temporary left behind.
fn assert_cache_usable(scratch: &Scratch) {
    ok(scratch.tank("cache", &["ls"]));
    ok(scratch.tank("cache", &["gc"]));
    ok(scratch.tank("cache", &["verify"]));
    let leftovers: Vec<_> = crate::pull::walk(&scratch.cache())
        .into_iter()
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(".tmp-"))
        })
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
}

/// A 512-byte tar header in GNU format (`ustar  \0`), with `size` as octal or, when it does
/// not fit, base-256.
fn gnu_header(name: &[u8], size: u64, kind: u8) -> [u8; 512] {
    let mut header = [0_u8; 512];
    header[..name.len()].copy_from_slice(name);
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    put_number(&mut header[124..136], size);
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = kind;
    header[257..265].copy_from_slice(b"ustar  \0");
    header
}

/// Writes `value` into a numeric field: octal when it fits, else base-256.
fn put_number(field: &mut [u8], value: u64) {
    let octal = format!("{value:0width$o}", width = field.len() - 1);
    if octal.len() < field.len() {
        field[..octal.len()].copy_from_slice(octal.as_bytes());
        field[octal.len()] = 0;
    } else {
        field.fill(0);
        field[0] = 0x80;
        let end = field.len();
        field[end - 8..].copy_from_slice(&value.to_be_bytes());
    }
}

fn with_checksum(mut header: [u8; 512]) -> [u8; 512] {
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|byte| u32::from(*byte)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    header
}

fn padded(bytes: &mut Vec<u8>) {
    let rest = bytes.len() % 512;
    if rest != 0 {
        bytes.resize(bytes.len() + 512 - rest, 0);
    }
}

/// A tar whose first record is a metadata record of `kind` (`L` or `x`) holding `size`
/// bytes, followed by a regular file `after` and the end-of-archive blocks.
fn metadata_record_tar(kind: u8, size: usize) -> Vec<u8> {
    let mut tar = Vec::with_capacity(size + 4096);
    tar.extend_from_slice(&with_checksum(gnu_header(
        b"././@LongLink",
        size as u64,
        kind,
    )));
    if kind == b'x' {
        // One PAX record "N comment=aaaa…\n" of exactly `size` bytes.
        let digits = size.to_string().len();
        let value_length = size - digits - " comment=\n".len();
        tar.extend_from_slice(format!("{size} comment=").as_bytes());
        tar.resize(tar.len() + value_length, b'a');
        tar.push(b'\n');
    } else {
        tar.resize(tar.len() + size - 1, b'a');
        tar.push(0);
    }
    padded(&mut tar);
    tar.extend_from_slice(&with_checksum(gnu_header(b"after", 3, b'0')));
    tar.extend_from_slice(b"hi\n");
    padded(&mut tar);
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// A tar holding one old-GNU sparse file `sparse` of `real_size` bytes whose only data is
/// the byte `!` at its last offset, then the end-of-archive blocks.
fn sparse_bomb_tar(real_size: u64) -> Vec<u8> {
    let mut header = gnu_header(b"sparse", 1, b'S');
    // The first sparse map entry (offset, numbytes) at 386, isextended at 482, the real size
    // at 483.
    put_number(&mut header[386..398], real_size - 1);
    put_number(&mut header[398..410], 1);
    put_number(&mut header[483..495], real_size);
    let mut tar = with_checksum(header).to_vec();
    tar.push(b'!');
    padded(&mut tar);
    tar.resize(tar.len() + 1024, 0);
    tar
}

/// Pushes a one-layer image whose layer is the raw `tar`, zstd-compressed.
fn push_raw_layer(registry: &Registry, tar: Vec<u8>, destination: &str) -> String {
    let work = tempfile::tempdir().expect("a temporary directory");
    let image = ImageBuilder::new(Platform::new("linux", crate::host_arch()))
        .layer_tar(tar, Compression::Zstd)
        .cmd(&["/after"]);
    push_image(registry, work.path(), image, destination)
}

#[test]
fn huge_metadata_records_are_refused_in_bounded_memory() {
    let registry = Registry::start().expect("docker-registry starts");
    // 128 MiB: a reader that buffers the record needs at least that much memory.
    let size = 128 << 20;
    for (kind, what) in [(b'L', "GNU long name"), (b'x', "PAX header")] {
        let reference = push_raw_layer(
            &registry,
            metadata_record_tar(kind, size),
            &format!("hostile/record-{}:1", (kind as char).to_ascii_lowercase()),
        );
        let scratch = Scratch::new();
        let output = measured_pull(&scratch, what, &[&reference]);
        let line = fails(output, &["layer 0", "offset 0", "1 MiB limit"]);
        eprintln!("{what}: {line}");
        assert_cache_usable(&scratch);
    }
}

#[test]
fn sparse_bombs_cost_no_time_and_are_bounded_by_max_layer_size() {
    let registry = Registry::start().expect("docker-registry starts");
    // 8 TiB of holes and one byte (ext4 allows files up to 16 TiB).
    let real_size: u64 = 8 << 40;
    let reference = push_raw_layer(&registry, sparse_bomb_tar(real_size), "hostile/sparse:1");

    // The default --max-layer-size (64G) refuses it before writing anything.
    let scratch = Scratch::new();
    let output = measured_pull(&scratch, "sparse bomb, default limits", &[&reference]);
    fails(output, &["--max-layer-size", "max_bytes"]);
    assert_cache_usable(&scratch);

    // Without the limit it is extracted by seeking: no zeros are read or written.
    let scratch = Scratch::new();
    let output = measured_pull(
        &scratch,
        "sparse bomb, --max-layer-size unlimited",
        &["--max-layer-size", "unlimited", &reference],
    );
    let rootfs = ok(output);
    let rootfs = Path::new(rootfs.lines().last().expect("the rootfs path"));
    let metadata = std::fs::metadata(rootfs.join("sparse")).expect("the sparse file");
    assert_eq!(metadata.len(), real_size);
    use std::os::unix::fs::MetadataExt as _;
    assert!(metadata.blocks() < 1024, "{} blocks", metadata.blocks());
    let mut file = std::fs::File::open(rootfs.join("sparse")).unwrap();
    use std::io::Seek as _;
    file.seek(std::io::SeekFrom::Start(real_size - 1)).unwrap();
    let mut last = [0_u8; 1];
    file.read_exact(&mut last).unwrap();
    assert_eq!(&last, b"!");
    assert_cache_usable(&scratch);
}

#[test]
fn entry_and_layer_limits_name_their_flags() {
    let registry = Registry::start().expect("docker-registry starts");
    let work = tempfile::tempdir().expect("a temporary directory");
    let mut many = TarBuilder::new();
    for n in 0..150 {
        many = many.file(format!("f{n}"), "x", 0o644);
    }
    let small = TarBuilder::new().file("small", "x", 0o644);
    let image = ImageBuilder::new(Platform::new("linux", crate::host_arch()))
        .layer(&many)
        .layer(&small)
        .layer(&TarBuilder::new().file("other", "y", 0o644));
    let reference = push_image(&registry, work.path(), image, "hostile/limits:1");

    let scratch = Scratch::new();
    let output = measured_pull(
        &scratch,
        "150 entries, --max-layer-entries 100",
        &["--max-layer-entries", "100", &reference],
    );
    fails(output, &["--max-layer-entries", "max_entries", "100"]);
    assert_cache_usable(&scratch);

    let output = measured_pull(
        &scratch,
        "3 layers, --max-layers 2",
        &["--max-layers", "2", &reference],
    );
    fails(output, &["--max-layers", "3 layers", "limit of 2"]);
    assert_cache_usable(&scratch);

    // The defaults let this ordinary image through.
    ok(scratch.tank("pull", &[&reference]));
}

/// A registry on loopback that answers every request with `respond`, for at most `budget`
/// bytes and `lifetime` per connection; stopped (and its threads ended) when dropped.
struct RawRegistry {
    port: u16,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    acceptor: Option<thread::JoinHandle<()>>,
}

/// What a [`RawRegistry`] sends after reading a request's head.
type Respond = fn(&str, &mut TcpStream, &dyn Fn(usize) -> bool) -> std::io::Result<()>;

impl RawRegistry {
    fn start(respond: Respond, lifetime: Duration) -> RawRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stop_flag, sent_count) = (Arc::clone(&stop), Arc::clone(&sent));
        let acceptor = thread::spawn(move || {
            let mut workers = Vec::new();
            while !stop_flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let (stop_flag, sent_count) =
                            (Arc::clone(&stop_flag), Arc::clone(&sent_count));
                        workers.push(thread::spawn(move || {
                            let started = Instant::now();
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                            let Some(head) = read_head(&mut stream) else {
                                return;
                            };
                            let go_on = |bytes: usize| {
                                sent_count.fetch_add(bytes as u64, Ordering::SeqCst);
                                !stop_flag.load(Ordering::SeqCst) && started.elapsed() < lifetime
                            };
                            let _ = respond(&head, &mut stream, &go_on);
                        }));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
            for worker in workers {
                let _ = worker.join();
            }
        });
        RawRegistry {
            port,
            stop,
            sent,
            acceptor: Some(acceptor),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RawRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// The request line and headers, up to the blank line.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A manifest answer with no Content-Length whose chunked body never ends.
fn endless_manifest(
    _head: &str,
    stream: &mut TcpStream,
    go_on: &dyn Fn(usize) -> bool,
) -> std::io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\n\
          Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    )?;
    let chunk = vec![b' '; 64 * 1024];
    let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
    while go_on(framed.len()) {
        stream.write_all(&framed)?;
    }
    Ok(())
}

#[test]
fn an_endless_manifest_is_refused_at_its_cap_in_bounded_memory() {
    let registry = RawRegistry::start(endless_manifest, Duration::from_secs(60));
    let scratch = Scratch::new();
    let reference = format!("{}/endless/manifest:1", registry.host());
    let output = measured_pull(&scratch, "endless manifest", &[&reference]);
    fails(output, &["manifest", "4194304"]);
    // The client stopped reading soon after the cap: the server could not push much more
    // than the cap into the socket buffers.
    let sent = registry.sent.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "the server sent {sent} bytes");
    assert_cache_usable(&scratch);
}

/// A manifest answer that announces 4000 bytes and sends one every 100 ms.
fn dripping_manifest(
    _head: &str,
    stream: &mut TcpStream,
    go_on: &dyn Fn(usize) -> bool,
) -> std::io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\n\
          Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\
          Content-Length: 4000\r\n\r\n",
    )?;
    for _ in 0..4000 {
        if !go_on(1) {
            break;
        }
        stream.write_all(b" ")?;
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[test]
fn a_dripping_registry_fails_by_the_minimum_progress_rule() {
    // Each connection drips for at most 20 s: a client without the rule would hang until
    // then on every attempt.
    let registry = RawRegistry::start(dripping_manifest, Duration::from_secs(20));
    let scratch = Scratch::new();
    let reference = format!("{}/drip/manifest:1", registry.host());
    let started = Instant::now();
    let output = measured_pull(
        &scratch,
        "dripping manifest, --min-progress 64/1",
        &["--min-progress", "64/1", &reference],
    );
    fails(
        output,
        &["stalled", "less than 64 bytes in 1 s", "--min-progress"],
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_cache_usable(&scratch);
}

#[test]
fn the_cache_is_private_and_a_foreign_one_is_refused_unless_allowed() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let scratch = Scratch::new();
    ok(scratch.tank("cache", &["ls"]));
    for dir in ["", "blobs", "rootfs", "refs"] {
        let mode = std::fs::metadata(scratch.cache().join(dir))
            .expect("the cache directory exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{dir:?} is {mode:o}");
    }
    // Owned by the test's own user: only root can hand the cache to another user.
    if std::fs::metadata(scratch.home()).unwrap().uid() != 0 {
        return;
    }
    // Owned by someone else (nobody): refused, naming the override; accepted with it.
    std::os::unix::fs::chown(scratch.cache(), Some(65534), Some(65534)).expect("chown");
    fails(
        scratch.tank("cache", &["ls"]),
        &["65534", "--allow-untrusted-cache"],
    );
    ok(run_with_flag(
        &scratch,
        &["--allow-untrusted-cache", "cache", "ls"],
    ));
    assert_eq!(std::fs::metadata(scratch.cache()).unwrap().uid(), 65534);
}

fn run_with_flag(scratch: &Scratch, args: &[&str]) -> Output {
    let mut command = tank(scratch.home());
    command.args(args).arg("--cache").arg(scratch.cache());
    command.output().expect("tank runs")
}

#[test]
fn a_failed_pull_that_built_a_tree_deeper_than_path_max_leaves_a_usable_cache() {
    let registry = Registry::start().expect("docker-registry starts");
    let work = tempfile::tempdir().expect("a temporary directory");
    // 16 directories of 250 bytes: 4015 bytes below the rootfs, so the tree's absolute
    // paths in the cache are longer than PATH_MAX (4096).
    let mut deep = TarBuilder::new();
    let mut path = String::new();
    for level in 0..16 {
        if level > 0 {
            path.push('/');
        }
        path.push_str(&format!("{level:02}").repeat(125));
        deep = deep.dir(path.clone(), 0o755);
        if level == 14 {
            deep = deep.file(format!("{path}/file"), "deep\n", 0o644);
        }
    }
    // The config lies about the layer's diff_id: the pull extracts it, then fails, and the
    // temporary rootfs holding the deep tree must go.
    let config = serde_json::json!({
        "architecture": crate::host_arch(),
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "ab".repeat(32))]},
    });
    let image = ImageBuilder::new(Platform::new("linux", crate::host_arch()))
        .layer(&deep)
        .raw_config(config);
    let reference = push_image(&registry, work.path(), image, "hostile/deep:1");

    let scratch = Scratch::new();
    let output = measured_pull(&scratch, "deep tree, lying diff_id", &[&reference]);
    fails(output, &["diff_id"]);
    assert_cache_usable(&scratch);
    // And the next pull of it fails the same way, not at the cache.
    fails(scratch.tank("pull", &[&reference]), &["diff_id"]);
    assert_cache_usable(&scratch);
}
