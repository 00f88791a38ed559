//! The system calls xtask makes that neither std nor testkit wrap: kill(2) by pid and
//! statvfs(3). All of xtask's `unsafe` is here. (wait4(2) with rusage is testkit's
//! `wait_with_usage`, which the bench and bench-fleet both use.)

use std::path::Path;

use anyhow::Context as _;

/// Sends SIGKILL to `pid`, a child this process spawned and has not reaped. A pid that does
/// not fit `pid_t`, or a process already gone, is left alone.
#[allow(
    unsafe_code,
    reason = "kill(2) by pid: std can only kill through a Child handle"
)]
pub(crate) fn kill(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes plain integers and touches no memory of this process.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// statvfs(3) of the filesystem holding `path`: the bytes and inodes free for an
/// unprivileged user.
#[allow(unsafe_code, reason = "statvfs(3): std has no wrapper")]
pub(crate) fn statvfs(path: &Path) -> anyhow::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt as _;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{} holds a NUL byte", path.display()))?;
    // SAFETY: `statvfs` is a plain C struct of integers, for which all-zero bytes are valid.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a NUL-terminated string and `stat` a live, writable statvfs.
    if unsafe { libc::statvfs(name.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("statvfs of {}", path.display()));
    }
    // fsblkcnt_t, fsfilcnt_t and c_ulong are u64 on the 64-bit Linux the bench runs on.
    Ok((stat.f_bavail.saturating_mul(stat.f_frsize), stat.f_favail))
}
