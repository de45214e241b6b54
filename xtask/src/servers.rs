//! Real storage servers for the tests, on 127.0.0.1 only.
//!
//! - S3: `moto_server` from PyPI, in a virtualenv under `.ci-storage/venv`.
//! - Azure: Azurite from npm, under `.ci-storage/node_modules`.
//!
//! Both are installed on first use (a fresh machine has Python with pip and
//! Node with npm) and stopped when [`Servers`] is dropped. Tests find them
//! through the environment variables listed in [`Servers::env`]; with
//! `BACKUP_TEST_REQUIRE_SERVERS=1` a test that cannot reach them fails instead
//! of skipping. Set `BACKUP_TEST_NO_SERVERS=1` to run without them.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Pinned versions, so a fresh machine tests against what we tested.
const MOTO: &str = "moto[s3]==5.2.5";
const AZURITE: &str = "azurite@3.37.0";

/// Running test servers; stopped on drop.
pub struct Servers {
    children: Vec<Child>,
    env: Vec<(String, String)>,
}

impl Servers {
    /// Installs (if needed) and starts moto_server and Azurite.
    pub fn start() -> Result<Servers> {
        if std::env::var_os("BACKUP_TEST_NO_SERVERS").is_some() {
            println!("xtask: BACKUP_TEST_NO_SERVERS is set; storage server tests will skip");
            return Ok(Servers {
                children: Vec::new(),
                env: Vec::new(),
            });
        }
        let dir = root().join(".ci-storage");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let moto = install_moto(&dir)?;
        let azurite = install_azurite(&dir)?;

        let mut servers = Servers {
            children: Vec::new(),
            env: Vec::new(),
        };
        let s3_port = free_port()?;
        let moto_log = dir.join("moto_server.log");
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &s3_port.to_string()])
            .stdout(Stdio::null())
            .stderr(log_file(&moto_log)?)
            .spawn()
            .with_context(|| format!("starting {}", moto.display()))?;
        servers.children.push(child);

        // In-memory persistence: nothing to clean up, and Azurite refuses
        // `--location` together with `--inMemoryPersistence`.
        let az_port = free_port()?;
        let azurite_log = dir.join("azurite.log");
        let child = Command::new(&azurite)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &az_port.to_string(),
                "--inMemoryPersistence",
                "--silent",
                "--disableTelemetry",
                "--skipApiVersionCheck",
            ])
            .stdout(Stdio::null())
            .stderr(log_file(&azurite_log)?)
            .spawn()
            .with_context(|| format!("starting {}", azurite.display()))?;
        servers.children.push(child);

        wait_for_port(&mut servers.children[0], s3_port, "moto_server", &moto_log)?;
        wait_for_port(
            &mut servers.children[1],
            az_port,
            "azurite-blob",
            &azurite_log,
        )?;
        servers.env = vec![
            (
                "BACKUP_TEST_S3_ENDPOINT".into(),
                format!("http://127.0.0.1:{s3_port}"),
            ),
            (
                "BACKUP_TEST_AZURE_ENDPOINT".into(),
                format!("http://127.0.0.1:{az_port}"),
            ),
            ("BACKUP_TEST_REQUIRE_SERVERS".into(), "1".into()),
        ];
        println!("xtask: moto_server on 127.0.0.1:{s3_port}, azurite-blob on 127.0.0.1:{az_port}");
        Ok(servers)
    }

    /// The environment tests read to find the servers.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Adds the servers' environment to a command.
    pub fn apply_env(&self, cmd: &mut Command) {
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn install_moto(dir: &Path) -> Result<PathBuf> {
    let venv = dir.join("venv");
    let bin = venv.join("bin").join("moto_server");
    let marker = venv.join(".installed");
    if bin.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(MOTO) {
        return Ok(bin);
    }
    println!("xtask: installing {MOTO} into {}", venv.display());
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            MOTO,
            "flask",
            "flask-cors",
        ]),
        "pip install moto",
    )?;
    std::fs::write(&marker, MOTO)?;
    Ok(bin)
}

fn install_azurite(dir: &Path) -> Result<PathBuf> {
    let bin = dir.join("node_modules").join(".bin").join("azurite-blob");
    let marker = dir.join(".azurite-installed");
    if bin.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(AZURITE) {
        return Ok(bin);
    }
    println!("xtask: installing {AZURITE} into {}", dir.display());
    run(
        Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(dir)
            .arg(AZURITE),
        "npm install azurite",
    )?;
    std::fs::write(&marker, AZURITE)?;
    Ok(bin)
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn log_file(path: &Path) -> Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))
}

/// Waits until `port` accepts connections; fails at once if the server exits.
fn wait_for_port(child: &mut Child, port: u16, name: &str, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            bail!(
                "{name} exited ({status}) before listening on 127.0.0.1:{port}; see {}: {}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            );
        }
        if TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{name} did not start listening on 127.0.0.1:{port} within 60s")
}
