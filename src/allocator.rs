//! Tuning of the C allocator (glibc's malloc). Durin's own allocations go to mimalloc (the
//! global allocator, `main.rs`), which keeps each size class on its own pages and hands pages
//! that empty back to the system. glibc's malloc still serves the C libraries (zstd's
//! contexts), and everything in the library's own unit tests, so it is tuned as before:
//!
//! glibc gives each thread that allocates under contention its own arena, up to eight per
//! core, and memory freed in one arena is never reused by another; freed pages inside a heap
//! go back to the system only when asked. A server whose runs are created on one tokio
//! thread and dropped on another (a closed run leaving memory for the archive) then keeps
//! about 1.2 KiB of resident size per run long gone (measured: 80,000 runs started and
//! terminated, all archived). With two arenas and a trim every 10 s the resident size
//! follows the live data: 49–81 MiB through 200,000 archived runs, 24 MiB after a restart
//! with 80,000.

/// Limits malloc to two arenas. Call first thing in `main`, before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands memory freed after a burst (loading the log at start-up) back to the system.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
