//! Log output: standard error, as text or one JSON object per line, written in batches.
//!
//! Every registration logs two lines (the access line and the audit event). Written one
//! `write(2)` per line, they cost about a tenth of a registration's CPU (docs/benchmarks.md).
//! Here a line is appended to a buffer in memory; audit events (target `audit`) write the buffer
//! out at once, with everything before them, before the operation is answered; a background
//! thread writes what else is waiting every [`FLUSH_EVERY`] (at once past [`FLUSH_AT_BYTES`],
//! and at a clean exit). So an operation that was answered has its audit event written, and a
//! busy server makes about one system call per operation. What it costs: a process killed with
//! SIGKILL can lose the access lines of its last [`FLUSH_EVERY`] (docs/operations.md, "Logs").

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// How long a line waits in the buffer at most.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// A buffer this large is written at once, by the thread that filled it.
pub const FLUSH_AT_BYTES: usize = 64 * 1024;

/// The buffer shared by every writer.
static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static FLUSHER: OnceLock<()> = OnceLock::new();

/// Write out what is buffered.
pub fn flush() {
    let pending = {
        let mut buffer = BUFFER.lock().unwrap_or_else(PoisonError::into_inner);
        if buffer.is_empty() {
            return;
        }
        std::mem::take(&mut *buffer)
    };
    // a log line that cannot be written has nowhere else to go
    let _ = std::io::stderr().lock().write_all(&pending);
}

/// The writers of the subscriber.
pub struct BatchedStderr;

/// One event's writer: the whole formatted line arrives in one `write`. `now`: write it out
/// with what is waiting before it (audit events), rather than leave it to the writer thread.
pub struct LineWriter {
    now: bool,
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let due = {
            let mut buffer = BUFFER.lock().unwrap_or_else(PoisonError::into_inner);
            buffer.extend_from_slice(bytes);
            self.now || buffer.len() >= FLUSH_AT_BYTES
        };
        if due {
            flush();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { now: false }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        LineWriter {
            now: meta.target() == "audit" || *meta.level() <= tracing::Level::WARN,
        }
    }
}

/// Install the subscriber (once per process; later calls change nothing): `level` unless
/// `RUST_LOG` is set, colours only at a terminal, lines batched by a background thread.
pub fn init(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    FLUSHER.get_or_init(|| {
        let started = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(|| loop {
                std::thread::sleep(FLUSH_EVERY);
                flush();
            });
        if let Err(e) = started {
            eprintln!("stateless-dcr: cannot start the log writer thread: {e}");
        }
    });
    // colours only for a person at a terminal: escape codes in a log file are noise, and
    // writing them cost a registration about 1 % (docs/benchmarks.md)
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(BatchedStderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_in_the_buffer_until_flushed() {
        let mut writer = LineWriter { now: false };
        writer.write_all(b"a line\n").unwrap();
        assert!(BUFFER.lock().unwrap().ends_with(b"a line\n"));
        flush();
        assert!(BUFFER.lock().unwrap().is_empty());
    }
}
