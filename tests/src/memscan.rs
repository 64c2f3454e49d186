//! Reads a live process's whole address space through `/proc/PID/mem`
//! (root only, as in CI) and counts where given byte strings occur.

use std::io::{Read, Seek, SeekFrom};

/// Why a scan could not run at all (a region that cannot be read, such as
/// `[vvar]`, is skipped, not an error).
#[derive(Debug)]
pub struct ScanError(pub String);

/// Occurrences of each needle, plus how many bytes were read.
#[derive(Debug, Clone)]
pub struct Scan {
    pub hits: Vec<usize>,
    pub bytes: u64,
}

/// Scans every readable mapping of `pid` for every needle.
pub fn scan(pid: u32, needles: &[&[u8]]) -> Result<Scan, ScanError> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| ScanError(format!("read maps: {e}")))?;
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem"))
        .map_err(|e| ScanError(format!("open mem: {e}")))?;
    let finders: Vec<_> = needles.iter().map(memchr::memmem::Finder::new).collect();
    let longest = needles.iter().map(|n| n.len()).max().unwrap_or(1);
    let mut hits = vec![0usize; needles.len()];
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        let name = parts.nth(3).unwrap_or("");
        if !perms.starts_with('r') || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        // Carry the last bytes of each read into the next one, so a needle
        // that straddles two reads is still found exactly once.
        let mut carry: Vec<u8> = Vec::new();
        let mut at = start;
        while at < end {
            let want = ((end - at) as usize).min(buf.len());
            if mem.seek(SeekFrom::Start(at)).is_err() {
                break;
            }
            let n = match mem.read(&mut buf[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            bytes += n as u64;
            let mut window = std::mem::take(&mut carry);
            let carried = window.len();
            window.extend_from_slice(&buf[..n]);
            for (i, f) in finders.iter().enumerate() {
                // Only matches that end in the new bytes: the rest were
                // counted with the previous read.
                hits[i] += f
                    .find_iter(&window)
                    .filter(|&p| p + needles[i].len() > carried)
                    .count();
            }
            let keep = window.len().min(longest.saturating_sub(1));
            carry = window[window.len() - keep..].to_vec();
            at += n as u64;
        }
    }
    Ok(Scan { hits, bytes })
}

/// Scans until no `secrets` needle is found or `limit` passes, and returns
/// the last scan: `hits` holds the secrets' counts, then the control's.
/// `lock` drops pooled connections at once, but their tasks wind down on
/// the runtime's threads a moment later; nothing else is waited for.
pub fn scan_until_clean(
    pid: u32,
    secrets: &[&[u8]],
    control: &[u8],
    limit: std::time::Duration,
) -> Scan {
    let start = std::time::Instant::now();
    loop {
        let mut needles = secrets.to_vec();
        needles.push(control);
        let s = scan(pid, &needles).expect("scan vaultd memory");
        let clean = s.hits[..secrets.len()].iter().all(|&h| h == 0);
        if clean || start.elapsed() > limit {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
