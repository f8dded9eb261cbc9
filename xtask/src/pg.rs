//! Throwaway and dev PostgreSQL clusters (initdb + pg_ctl), for the test and bench steps.
//!
//! Postgres refuses to run as root, so as root every server binary runs as the `postgres` user
//! (`runuser -u postgres --`, else `su postgres`), in a folder under /tmp that user can reach.
//!
//! Cleanup of an ephemeral cluster: [`Cluster`]'s `Drop` stops the server and removes the folder. For the cases
//! where `Drop` never runs (Ctrl-C, a kill), a small guardian shell holds the read end of a pipe from this
//! process; it ignores SIGINT/SIGTERM/SIGHUP, and when the pipe closes without the "done" line it stops the
//! server and removes the folder itself. `pg_ctl` starts the server in its own session, so a Ctrl-C in the
//! terminal does not reach it directly.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Folder of the persistent dev cluster (`cargo xtask db up`).
pub(crate) const DEV_DIR: &str = "/tmp/genesys-intervals-dev-pg";
/// Port of the persistent dev cluster.
pub(crate) const DEV_PORT: u16 = 55433;

/// Server settings.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Tuning {
    /// Tests and the dev cluster: no fsync (the data is thrown away), room for many pools.
    Test,
    /// Benchmarks: PostgreSQL's durable defaults, so numbers mean something.
    Durable,
}

/// Where the server binaries are and whether they must run as `postgres`.
#[derive(Debug)]
struct Env {
    bin: PathBuf,
    as_postgres: Option<RunAs>,
}

#[derive(Debug, Clone, Copy)]
enum RunAs {
    Runuser,
    Su,
}

impl Env {
    fn detect() -> Result<Env, String> {
        let bin = find_bindir()?;
        let as_postgres = if is_root()? {
            let how = if which("runuser").is_some() {
                RunAs::Runuser
            } else if which("su").is_some() {
                RunAs::Su
            } else {
                return Err("running as root, but neither `runuser` nor `su` is available to run PostgreSQL \
                            as the `postgres` user"
                    .to_owned());
            };
            let user = Command::new("id").arg("-u").arg("postgres").output();
            if !user.is_ok_and(|o| o.status.success()) {
                return Err("running as root and there is no `postgres` user to run the server as \
                            (create it: `useradd --system --home-dir /var/lib/postgresql postgres`)"
                    .to_owned());
            }
            Some(how)
        } else {
            None
        };
        Ok(Env { bin, as_postgres })
    }

    /// A command running server tool `tool` (`initdb`, `pg_ctl`, ...) as the right user.
    fn tool(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.as_postgres {
            None => Command::new(exe),
            Some(RunAs::Runuser) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(exe);
                c
            }
            Some(RunAs::Su) => {
                // util-linux su hands the words after the command to the shell: $0 = sh, "$@" = exe args.
                let mut c = Command::new("su");
                c.args(["-s", "/bin/sh", "postgres", "-c", "exec \"$@\"", "sh"]).arg(exe);
                c
            }
        }
    }

    fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().trim_start_matches("postgres (PostgreSQL) ").to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "(unknown version)".to_owned())
    }
}

fn is_root() -> Result<bool, String> {
    let out = Command::new("id").arg("-u").output().map_err(|e| format!("cannot run `id -u`: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `"15"` -> `[15]`, `"9.6"` -> `[9, 6]`; anything else is not a version folder.
fn parse_version(name: &str) -> Option<Vec<u64>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// The newest `/usr/lib/postgresql/<version>/bin`, else `pg_config --bindir`.
fn find_bindir() -> Result<PathBuf, String> {
    let has_tools = |bin: &Path| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file();
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let Some(version) = parse_version(&entry.file_name().to_string_lossy()) else { continue };
            let bin = entry.path().join("bin");
            if has_tools(&bin) && best.as_ref().is_none_or(|(v, _)| version > *v) {
                best = Some((version, bin));
            }
        }
    }
    if let Some((_, bin)) = best {
        return Ok(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&bin) {
            return Ok(bin);
        }
    }
    Err("no PostgreSQL server binaries: looked for /usr/lib/postgresql/<version>/bin/initdb and \
         `pg_config --bindir`; install the server (`apt-get install postgresql`) or set DATABASE_URL"
        .to_owned())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("cannot read the bound port: {e}"))
}

fn run_quiet(what: &str, cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {what}: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{what} failed ({}):\n{}", out.status, text.trim_end()))
    }
}

fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(no server log at {}: {e})", path.display()),
    }
}

/// A PostgreSQL cluster in `root` (data in `root/data`, the unix socket and `server.log` in `root`).
#[derive(Debug)]
pub(crate) struct Cluster {
    env: Env,
    root: PathBuf,
    port: u16,
    /// Ephemeral clusters are stopped and removed on drop; the dev cluster is left alone.
    guardian: Option<Guardian>,
}

#[derive(Debug)]
struct Guardian {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Cluster {
    /// initdb into a fresh folder, start on a free loopback port, wait until it accepts connections.
    pub(crate) fn start_ephemeral(tuning: Tuning) -> Result<Cluster, String> {
        let env = Env::detect()?;
        // A checkout under /root or a TMPDIR there is not traversable by `postgres`: use /tmp when root.
        let base = if env.as_postgres.is_some() { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let root = create_unique_dir(&base)?;
        let mut cluster = Cluster { env, root, port: 0, guardian: None };
        // From here on, dropping `cluster` (early return, panic) removes the folder.
        cluster.guardian = Some(cluster.spawn_guardian()?);
        cluster.chown_root()?;
        cluster.initdb()?;
        let mut last_error = String::new();
        // The port is free when we look; another process may take it before the server binds. Retry then.
        for _ in 0..3 {
            cluster.port = free_port()?;
            cluster.write_config(tuning)?;
            match cluster.start() {
                Ok(()) => return Ok(cluster),
                Err(e) if tail(&cluster.log_path(), 20).contains("could not bind") => last_error = e,
                Err(e) => return Err(e),
            }
        }
        Err(last_error)
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub(crate) fn version(&self) -> String {
        self.env.version()
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    fn chown_root(&self) -> Result<(), String> {
        if self.env.as_postgres.is_some() {
            run_quiet("chown", Command::new("chown").arg("postgres:").arg(&self.root))?;
        }
        Ok(())
    }

    fn initdb(&self) -> Result<(), String> {
        let mut cmd = self.env.tool("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .current_dir(&self.root);
        run_quiet("initdb", &mut cmd).map(drop)
    }

    /// Appends our settings to postgresql.conf (later lines win, so a retry with a new port just appends again).
    fn write_config(&self, tuning: Tuning) -> Result<(), String> {
        let socket_dir = self.root.to_string_lossy().replace('\'', "''");
        let mut conf = format!(
            "\n# written by cargo xtask\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 200\n",
            self.port, socket_dir
        );
        if let Tuning::Test = tuning {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let path = self.data_dir().join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// `pg_ctl start -w` (returns once the server accepts connections), then a TCP check with pg_isready.
    fn start(&self) -> Result<(), String> {
        let mut cmd = self.env.tool("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", "60", "start"])
            .current_dir(&self.root);
        let log_tail = || {
            format!("\n--- server log ({}), last lines ---\n{}", self.log_path().display(), tail(&self.log_path(), 30))
        };
        run_quiet("pg_ctl start", &mut cmd).map_err(|e| format!("{e}{}", log_tail()))?;
        let mut ready = Command::new(self.env.bin.join("pg_isready"));
        ready
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-t", "30", "-p"])
            .arg(self.port.to_string());
        run_quiet("pg_isready", &mut ready).map_err(|e| format!("{e}{}", log_tail()))?;
        Ok(())
    }

    fn running(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
            && self
                .env
                .tool("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("status")
                .current_dir("/")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    }

    fn stop_command(&self) -> Command {
        let mut cmd = self.env.tool("pg_ctl");
        cmd.arg("-D").arg(self.data_dir()).args(["-m", "fast", "-w", "-t", "60", "stop"]).current_dir("/");
        cmd
    }

    fn stop(&self) -> Result<(), String> {
        if self.running() {
            run_quiet("pg_ctl stop", &mut self.stop_command())?;
        }
        Ok(())
    }

    /// `sh` that cleans up if this process dies without saying "done" (see the module docs).
    fn spawn_guardian(&self) -> Result<Guardian, String> {
        const SCRIPT: &str = r#"trap '' INT TERM HUP QUIT
if IFS= read -r line && [ "$line" = done ]; then exit 0; fi
root=$1; shift
if [ -f "$root/data/postmaster.pid" ]; then "$@" >/dev/null 2>&1 || true; fi
rm -rf -- "$root"
echo "xtask: interrupted; stopped the ephemeral PostgreSQL and removed $root" >&2
"#;
        let stop = self.stop_command();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("xtask-pg-guardian")
            .arg(&self.root)
            .arg(stop.get_program())
            .args(stop.get_args())
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the cleanup guardian (sh): {e}"))?;
        let stdin = child.stdin.take();
        Ok(Guardian { child, stdin })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let Some(mut guardian) = self.guardian.take() else { return };
        if let Err(e) = self.stop() {
            eprintln!("xtask: warning: {e}");
        }
        match fs::remove_dir_all(&self.root) {
            Ok(()) => println!("==> stopped the ephemeral PostgreSQL and removed {}", self.root.display()),
            Err(e) => eprintln!("xtask: warning: cannot remove {}: {e}", self.root.display()),
        }
        if let Some(mut stdin) = guardian.stdin.take() {
            // If this fails the guardian sees EOF and cleans up again, which is harmless.
            let _ = stdin.write_all(b"done\n");
        }
        let _ = guardian.child.wait();
    }
}

fn create_unique_dir(base: &Path) -> Result<PathBuf, String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("genesys-intervals-pg-{}-{nanos:08x}-{n}", std::process::id()));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err(format!("cannot create a fresh folder under {}", base.display()))
}

fn dev_cluster() -> Result<Cluster, String> {
    Ok(Cluster { env: Env::detect()?, root: PathBuf::from(DEV_DIR), port: DEV_PORT, guardian: None })
}

pub(crate) fn dev_url() -> String {
    format!("postgres://postgres@127.0.0.1:{DEV_PORT}/postgres")
}

pub(crate) fn dev_running() -> bool {
    dev_cluster().is_ok_and(|c| c.running())
}

/// Starts (creating it on first use) the persistent dev cluster; returns its URL.
pub(crate) fn dev_up() -> Result<String, String> {
    let cluster = dev_cluster()?;
    if cluster.running() {
        eprintln!("xtask: the dev cluster in {DEV_DIR} is already running");
        return Ok(cluster.url());
    }
    if !cluster.data_dir().join("PG_VERSION").is_file() {
        eprintln!("xtask: creating the dev cluster in {DEV_DIR} (PostgreSQL {})", cluster.version());
        match fs::DirBuilder::new().mode(0o700).create(&cluster.root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {DEV_DIR}: {e}")),
        }
        cluster.chown_root()?;
        cluster.initdb()?;
        cluster.write_config(Tuning::Test)?;
    }
    cluster.start()?;
    eprintln!("xtask: dev cluster running; stop and remove it with `cargo xtask db down`");
    Ok(cluster.url())
}

/// Stops and removes the dev cluster.
pub(crate) fn dev_down() -> Result<(), String> {
    let cluster = dev_cluster()?;
    if !cluster.root.exists() {
        println!("no dev cluster in {DEV_DIR}");
        return Ok(());
    }
    cluster.stop()?;
    fs::remove_dir_all(&cluster.root).map_err(|e| format!("cannot remove {DEV_DIR}: {e}"))?;
    println!("stopped and removed the dev cluster in {DEV_DIR}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_folders_parse_and_order_numerically() {
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("common"), None);
        assert!(parse_version("16").unwrap() > parse_version("9.6").unwrap());
    }
}
