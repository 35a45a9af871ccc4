//! Harness of the end-to-end tests: start the real `megalis` binary on free ports, against a
//! database of the test's own, and talk to it over HTTPS with a real client (reqwest + rustls)
//! that trusts exactly the certificate the server generated.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub use megalis_testkit::{PrivateCluster, free_port, fresh_postgres_url};

/// The `megalis` binary built by cargo next to this test executable (`scripts/test.sh` builds
/// it first; `MEGALIS_BIN` overrides).
pub fn megalis_bin() -> PathBuf {
    if let Ok(path) = std::env::var("MEGALIS_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/e2e-xxxx → target/<profile>/megalis
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("megalis");
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build -p megalis-server` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Runs a `megalis` CLI command to completion.
pub fn megalis(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(megalis_bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run megalis")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// How to start a server.
pub struct ServerBuilder {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    plain_http: bool,
    wait_ready: bool,
}

pub fn server() -> ServerBuilder {
    ServerBuilder {
        data_dir: None,
        database_url: None,
        args: Vec::new(),
        env: Vec::new(),
        plain_http: false,
        wait_ready: true,
    }
}

impl ServerBuilder {
    /// Shares a data directory (e.g. a second replica with the same keys).
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }
    pub fn database(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_string());
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn plain_http(mut self) -> Self {
        self.plain_http = true;
        self
    }
    /// Do not wait for /readyz (e.g. the database is down on purpose); /healthz is still awaited.
    pub fn no_wait_ready(mut self) -> Self {
        self.wait_ready = false;
        self
    }

    pub async fn start(self) -> Server {
        let (mut tmp, data_dir) = match self.data_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("megalis-e2e-")
                    .tempdir()
                    .expect("temporary data directory");
                let d = t.path().join("data");
                (Some(t), d)
            }
        };
        // A free port is free when asked, not necessarily when the server binds it: another
        // test process may take it in between. A start that fails on a taken port is retried
        // with new ports; any other early exit is the test's failure.
        let mut attempt = 0;
        let mut server = loop {
            attempt += 1;
            let https: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let plain: Option<SocketAddr> = self
                .plain_http
                .then(|| format!("127.0.0.1:{}", free_port()).parse().unwrap());
            let mut cmd = Command::new(megalis_bin());
            cmd.arg("--data-dir").arg(&data_dir).args([
                "--mode",
                "test",
                "--log-level",
                "info,megalis=debug",
            ]);
            if let Some(url) = &self.database_url {
                cmd.args(["--database-url", url]);
            }
            // Every server gets its own MLLP port too, so that servers can run side by side.
            let mllp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            cmd.arg("serve")
                .args(["--listen", &https.to_string()])
                .args(["--mllp-listen", &mllp.to_string()]);
            if let Some(p) = plain {
                cmd.args(["--plain-http-listen", &p.to_string()]);
            }
            cmd.args(&self.args);
            for (k, v) in &self.env {
                cmd.env(k, v);
            }
            let log_path = data_dir.with_extension("log");
            std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
            let log = std::fs::File::create(&log_path).expect("server log file");
            cmd.stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log));
            let child = cmd.spawn().expect("start megalis serve");
            let mut server = Server {
                child: Some(child),
                https,
                plain,
                mllp,
                data_dir: data_dir.clone(),
                log_path,
                _tmp: tmp.take(),
                client: None,
            };
            match server.healthy_within(Duration::from_secs(30)).await {
                Ok(()) => break server,
                Err(log) if attempt < 4 && log.contains("in use") => {
                    // The failed process has exited; the data directory is kept for the retry.
                    server.child = None;
                    tmp = server._tmp.take();
                    continue;
                }
                Err(log) => panic!("megalis did not start:\n{log}"),
            }
        };
        if self.wait_ready {
            server
                .wait_for("/readyz", 200, Duration::from_secs(60))
                .await;
        }
        server
    }
}

/// A running `megalis serve`; killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub https: SocketAddr,
    pub plain: Option<SocketAddr>,
    /// The HL7 MLLP listener of the identity feed.
    pub mllp: SocketAddr,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    client: Option<reqwest::Client>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.https.port(), path)
    }

    pub fn plain_url(&self, path: &str) -> String {
        format!(
            "http://{}{}",
            self.plain.expect("plain HTTP listener"),
            path
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    pub fn cert_path(&self) -> PathBuf {
        self.data_dir.join("tls/self-signed-cert.pem")
    }

    /// A client trusting only the server's self-signed certificate.
    /// A client trusting the server's certificate that does not follow redirects (to read the
    /// `Location` and cookies of login and OAuth answers).
    pub fn no_redirect_client(&self) -> reqwest::Client {
        let pem = std::fs::read(self.cert_path()).expect("server certificate");
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM certificate"))
            .tls_built_in_root_certs(false)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client")
    }

    pub fn client(&mut self) -> reqwest::Client {
        if let Some(c) = &self.client {
            return c.clone();
        }
        let pem = std::fs::read(self.cert_path()).expect("server certificate");
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM certificate"))
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        self.client = Some(client.clone());
        client
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits for `/healthz`; the server's log if it exited or did not answer in time.
    async fn healthy_within(&mut self, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(exit)) = child.try_wait()
            {
                return Err(format!("exited early ({exit}):\n{}", self.log()));
            }
            if self.cert_path().exists() {
                let client = self.client();
                if let Ok(r) = client.get(self.url("/healthz")).send().await
                    && r.status().as_u16() == 200
                {
                    return Ok(());
                }
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "/healthz did not answer within {timeout:?}:\n{}",
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `path` until it answers `status`, panicking with the server log after `timeout`.
    pub async fn wait_for(&mut self, path: &str, status: u16, timeout: Duration) {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(exit)) = child.try_wait()
            {
                panic!("megalis exited early ({exit}):\n{}", self.log());
            }
            if self.cert_path().exists() {
                let client = self.client();
                if let Ok(r) = client.get(self.url(path)).send().await
                    && r.status().as_u16() == status
                {
                    return;
                }
            }
            if started.elapsed() > timeout {
                panic!(
                    "{path} did not answer {status} within {timeout:?}:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    pub fn sigkill(&self) {
        self.signal("KILL");
    }

    /// Waits for the process to exit (after a signal) and returns its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        let child = self.child.as_mut().expect("server running");
        loop {
            if let Some(status) = child.try_wait().expect("wait for megalis") {
                self.child = None;
                return status;
            }
            if started.elapsed() > timeout {
                panic!("megalis did not exit within {timeout:?}:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
