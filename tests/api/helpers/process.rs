//! The server binary as a real process, and raw access to a server: what signals, restarts,
//! `kill -9` and malformed bytes on the wire need.

use super::{Api, Authority};
use std::net::TcpListener;

/// A free port on loopback (bound and released: a tiny race, acceptable in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server binary running as a real process.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub address: String,
}

impl ServerProcess {
    pub async fn start(config: &std::path::Path, port: u16) -> Self {
        Self::start_logging(config, port, None).await
    }

    /// Start with standard error written to `log` (when given).
    pub async fn start_logging(
        config: &std::path::Path,
        port: u16,
        log: Option<&std::path::Path>,
    ) -> Self {
        let stderr = match log {
            Some(path) => std::process::Stdio::from(std::fs::File::create(path).unwrap()),
            None => std::process::Stdio::null(),
        };
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stateless-dcr"));
        command
            .args(["serve", "--config"])
            .arg(config)
            .stderr(stderr);
        Self::spawn(command, port).await
    }

    /// Start the server with a command of the caller's (a shell that changes limits first,
    /// say); it must serve on `port`.
    pub async fn spawn(mut command: std::process::Command, port: u16) -> Self {
        let child = command
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // from here on, Drop kills and reaps the child whatever happens
        let server = ServerProcess {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let url = format!("{}/.well-known/openid-configuration", server.address);
        for _ in 0..200 {
            if client.get(&url).send().await.is_ok() {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the server process did not start");
    }

    /// Requests to this process, as a client of `authority`'s federation.
    pub fn api(&self, authority: &Authority) -> Api {
        Api::new(&self.address, authority)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal by name (`TERM`, `HUP`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for the process to exit by itself; its exit status.
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send raw bytes to the server and read the status code of its answer: for requests an HTTP
/// client library refuses to send (bytes not allowed in a header value).
pub async fn raw_status(address: &str, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed the connection without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&answer);
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Run the binary with `args`; it must succeed. Its standard output, trimmed.
pub fn run_cli<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stateless-dcr"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
