//! This process's CPU time, for the benchmark binaries' CPU per event.

use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error("cannot read the process's CPU time: {0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected /proc/self/stat or getconf output: {0}")]
    Format(String),
}

/// Reads user + system CPU time of this process (every thread).
pub struct ProcessCpu {
    /// The kernel's clock ticks per second (/proc counts in them).
    tck: u64,
}

impl ProcessCpu {
    pub fn new() -> Result<ProcessCpu, CpuError> {
        let out = Command::new("getconf").arg("CLK_TCK").output()?;
        let tck = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| CpuError::Format("getconf CLK_TCK".into()))?;
        Ok(ProcessCpu { tck })
    }

    /// CPU time so far, in microseconds.
    pub fn micros(&self) -> Result<u64, CpuError> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        // Fields restart after the command name, which may hold spaces.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| CpuError::Format("no ')'".into()))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // proc(5) fields 14 and 15 (utime, stime) are the 12th and 13th after ')'.
        let ticks = |i: usize| -> Result<u64, CpuError> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| CpuError::Format(format!("field {i}")))
        };
        Ok((ticks(11)? + ticks(12)?) * 1_000_000 / self.tck.max(1))
    }
}
