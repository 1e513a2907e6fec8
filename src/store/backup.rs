//! `durin backup`: a consistent copy of a running server's data directory, as a tar archive
//! (restore with `tar -xf backup.tar -C <empty data dir>`).
//!
//! The log is copied first, then the archive segments. That order is what makes the copy
//! consistent: a run leaves the log (at a compaction) only after it is durable in a segment,
//! and segments only grow, so every run the copied log no longer holds is in a segment copied
//! after it. A run in both is fine: the archived copy wins, as at any start-up.

use std::io::Write;
use std::path::Path;

use super::StoreError;
use super::archive::{ARCHIVE_DIR, for_each_segment};
use super::wal::{LOG_FILE, TOKEN_SECRET_FILE, intact_log};

#[derive(Debug, Default)]
pub struct BackupStats {
    pub log_records: usize,
    pub segments: usize,
    pub bytes: u64,
}

/// Writes the backup of `data_dir` to `out` (a file path, or `-` for standard output).
pub fn backup(data_dir: &Path, out: &Path) -> Result<BackupStats, StoreError> {
    if out.as_os_str() == "-" {
        let stdout = std::io::stdout().lock();
        let stats = write_backup(data_dir, stdout)?;
        return Ok(stats);
    }
    let file = std::fs::File::create(out)?;
    let mut writer = std::io::BufWriter::new(file);
    let stats = write_backup(data_dir, &mut writer)?;
    writer
        .into_inner()
        .map_err(|e| StoreError::Io(e.into_error()))?
        .sync_all()?;
    Ok(stats)
}

fn write_backup(data_dir: &Path, mut out: impl Write) -> Result<BackupStats, StoreError> {
    let mut stats = BackupStats::default();
    let (log, records) = intact_log(data_dir)?;
    stats.log_records = records;
    stats.bytes += log.len() as u64;
    tar_entry(&mut out, LOG_FILE, Some(&log))?;
    // The task-token secret, so tokens of tasks in progress stay valid after a restore.
    match std::fs::read(data_dir.join(TOKEN_SECRET_FILE)) {
        Ok(secret) => tar_entry(&mut out, TOKEN_SECRET_FILE, Some(&secret))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    tar_entry(&mut out, &format!("{ARCHIVE_DIR}/"), None)?;
    for_each_segment(data_dir, |name, bytes| {
        stats.segments += 1;
        stats.bytes += bytes.len() as u64;
        tar_entry(&mut out, name, Some(bytes))
    })?;
    // Two empty blocks end a tar archive.
    out.write_all(&[0u8; 1024])?;
    out.flush()?;
    Ok(stats)
}

/// Writes one ustar entry: a regular file with `data`, or a directory when `data` is None.
fn tar_entry(out: &mut impl Write, name: &str, data: Option<&[u8]>) -> std::io::Result<()> {
    let mut header = [0u8; 512];
    let name_bytes = name.as_bytes();
    if name_bytes.len() > 100 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "backup entry name too long",
        ));
    }
    header[..name_bytes.len()].copy_from_slice(name_bytes);
    let (mode, kind, size) = match data {
        // The token secret stays readable by its owner only.
        Some(d) if name == TOKEN_SECRET_FILE => ("0000600", b'0', d.len() as u64),
        Some(d) => ("0000644", b'0', d.len() as u64),
        None => ("0000755", b'5', 0),
    };
    octal(&mut header[100..108], mode);
    octal(&mut header[108..116], "0000000");
    octal(&mut header[116..124], "0000000");
    octal(&mut header[124..136], &format!("{size:011o}"));
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    octal(&mut header[136..148], &format!("{mtime:011o}"));
    header[156] = kind;
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field read as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    octal(&mut header[148..156], &format!("{sum:06o}"));
    header[155] = b' ';
    out.write_all(&header)?;
    if let Some(d) = data {
        out.write_all(d)?;
        let pad = (512 - d.len() % 512) % 512;
        out.write_all(&vec![0u8; pad])?;
    }
    Ok(())
}

/// Writes an octal number field: the digits, then NUL.
fn octal(field: &mut [u8], digits: &str) {
    let d = digits.as_bytes();
    field[..d.len()].copy_from_slice(d);
    field[d.len()] = 0;
}
