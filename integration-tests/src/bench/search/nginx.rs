//! nginx serving the gateway's own answers from files: what answering
//! HTTP on this machine costs when nothing is computed, the physical rate
//! the gateway's figures are divided by. It runs as configured for
//! production (a master, a worker per core, keep-alive), from a
//! configuration of its own, so it needs no root and touches nothing of
//! the machine's nginx.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running nginx; dropping it stops it, on error paths too.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub base: String,
}

/// nginx on PATH, else where Debian installs it (sbin is often not on a
/// user's PATH).
pub fn binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .context("the baseline needs nginx, not found on PATH nor in /usr/sbin: apt-get install nginx-light")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn config(dir: &Path, www: &Path, port: u16) -> String {
    let (dir, www) = (dir.display(), www.display());
    // keepalive_requests: nginx closes a connection after 1000 requests by
    // default, where the gateway never does; the runs would otherwise time
    // reconnections on one side only.
    format!(
        r#"daemon off;
master_process on;
worker_processes auto;
pid "{dir}/nginx.pid";
error_log "{dir}/error.log" warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_body_temp_path "{dir}/client_body";
    proxy_temp_path "{dir}/proxy";
    fastcgi_temp_path "{dir}/fastcgi";
    uwsgi_temp_path "{dir}/uwsgi";
    scgi_temp_path "{dir}/scgi";
    default_type application/json;
    sendfile on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;

    server {{
        listen 127.0.0.1:{port};
        root "{www}";
    }}
}}
"#
    )
}

impl Nginx {
    /// Serves each `(name, bytes)` at `/name`, once nginx answers.
    pub async fn start(files: &[(&str, &[u8])]) -> anyhow::Result<Self> {
        let binary = binary()?;
        let first = files.first().context("nginx needs a file to serve")?.0;
        let dir = tempfile::tempdir()?;
        let www = dir.path().join("www");
        std::fs::create_dir(&www)?;
        for &(name, bytes) in files {
            std::fs::write(www.join(name), bytes)?;
            std::fs::set_permissions(www.join(name), std::fs::Permissions::from_mode(0o644))?;
        }
        // Started as root, nginx runs its workers as an unprivileged user,
        // who must still reach the files.
        for path in [dir.path(), www.as_path()] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
        }
        let port = free_port()?;
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), &www, port))?;
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut nginx = Self { child, dir, base: format!("http://127.0.0.1:{port}") };
        nginx.wait_ready(first).await?;
        Ok(nginx)
    }

    async fn wait_ready(&mut self, file: &str) -> anyhow::Result<()> {
        let url = format!("{}/{file}", self.base);
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("nginx exited with {status}: {}", self.logs());
            }
            match reqwest::get(&url).await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => bail!("nginx answered {url} with {}: {}", response.status(), self.logs()),
                Err(_) => {}
            }
            if began.elapsed() > Duration::from_secs(10) {
                bail!("nginx did not answer within 10 s: {}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log")).trim().to_owned()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM, not SIGKILL: the master then stops its workers, which a
        // killed master would leave serving.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
