//! Helpers the benchmark examples share.

/// A memory figure of this process from `/proc/self/status`, in MB: `"VmHWM:"` (peak
/// resident) or `"VmRSS:"` (resident now); 0 where the file is not there.
pub fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}
