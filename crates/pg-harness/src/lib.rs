//! Throwaway PostgreSQL clusters (initdb + pg_ctl) for `cargo xtask` and the end-to-end tests.
//! Standard library only, so that xtask stays quick to build (a tidy rule).
//!
//! A [`Cluster`] lives in a folder of its own (data in `root/data`, the unix socket and
//! `server.log` in `root`), listens on 127.0.0.1 with trust authentication, and is reached at
//! [`Cluster::url`]. PostgreSQL refuses to run as root, so as root every server tool runs as the
//! `postgres` user (`runuser -u postgres --`, else `su postgres`), in a folder under /tmp that user
//! can reach.
//!
//! Cleanup of a cluster made by [`Cluster::create`]: dropping it (or [`Cluster::remove`]) stops the
//! server and removes the folder. For the cases where `Drop` never runs (Ctrl-C, a kill), a small
//! guardian shell holds the read end of a pipe from this process; it ignores SIGINT, SIGTERM and
//! SIGHUP, and when the pipe closes without the "done" line it stops the server and removes the
//! folder itself. `pg_ctl` starts the server in its own session, so a Ctrl-C in the terminal does
//! not reach it directly. A cluster opened with [`Cluster::existing`] (a persistent dev cluster) is
//! left alone when dropped.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Server settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tuning {
    /// Tests and dev clusters: no fsync (the data is thrown away), room for many pools.
    Test,
    /// Benchmarks: PostgreSQL's durable defaults, so numbers mean something.
    Durable,
}

/// Seconds `pg_ctl` and `pg_isready` wait for the server.
const WAIT_SECONDS: &str = "60";

/// A PostgreSQL cluster in a folder of its own; see the crate documentation.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    run_as: Option<RunAs>,
    root: PathBuf,
    port: u16,
    /// Clusters made by [`Cluster::create`] are stopped and removed on drop; others are left alone.
    guardian: Option<Guardian>,
}

#[derive(Debug, Clone, Copy)]
enum RunAs {
    Runuser,
    Su,
}

#[derive(Debug)]
struct Guardian {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Cluster {
    /// A new cluster in a fresh folder, started on a free loopback port: returns once it accepts
    /// connections. `Err` says why there is none (no server binaries, no `postgres` user to run
    /// them as root, initdb or the start failing, with the server log's last lines).
    pub fn create(tuning: Tuning) -> Result<Cluster, String> {
        let (bin, run_as) = detect()?;
        // A checkout under /root or a TMPDIR there is not traversable by `postgres`: use /tmp when root.
        let base = if run_as.is_some() { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let root = create_unique_dir(&base)?;
        let mut cluster = Cluster { bin, run_as, root, port: 0, guardian: None };
        // From here on, dropping `cluster` (an early return, a panic) removes the folder.
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
                Err(e) if e.contains("could not bind") => last_error = e,
                Err(e) => return Err(e),
            }
        }
        Err(last_error)
    }

    /// The cluster in `root` on `port`, whether it exists yet or not (see [`Cluster::init`]); left
    /// alone when dropped.
    pub fn existing(root: impl Into<PathBuf>, port: u16) -> Result<Cluster, String> {
        let (bin, run_as) = detect()?;
        Ok(Cluster { bin, run_as, root: root.into(), port, guardian: None })
    }

    /// Creates the cluster of [`Cluster::existing`] (its folder, initdb, the settings), unless it
    /// is there already.
    pub fn init(&self, tuning: Tuning) -> Result<(), String> {
        if self.is_initialised() {
            return Ok(());
        }
        match fs::DirBuilder::new().mode(0o700).create(&self.root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", self.root.display())),
        }
        self.chown_root()?;
        self.initdb()?;
        self.write_config(tuning)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The folder the cluster lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server's version (`16.4`), or `(unknown version)`.
    pub fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().trim_start_matches("postgres (PostgreSQL) ").to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "(unknown version)".to_owned())
    }

    /// Whether the folder holds a cluster (initdb ran).
    pub fn is_initialised(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
    }

    /// Whether its server is running (`pg_ctl status`).
    pub fn running(&self) -> bool {
        self.is_initialised()
            && self
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

    /// `pg_ctl start -w` on the same folder and port, then a TCP check with `pg_isready`: returns
    /// once the server accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let mut start = self.tool("pg_ctl");
        start
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", WAIT_SECONDS, "start"])
            .current_dir(&self.root);
        run_quiet("pg_ctl start", &mut start).map_err(|e| format!("{e}{}", self.log_tail(30)))?;
        let mut ready = Command::new(self.bin.join("pg_isready"));
        ready
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-t", WAIT_SECONDS, "-p"])
            .arg(self.port.to_string());
        run_quiet("pg_isready", &mut ready).map(drop).map_err(|e| format!("{e}{}", self.log_tail(30)))
    }

    /// Fast shutdown (`pg_ctl stop -m fast -w`): every session is terminated ("terminating
    /// connection due to administrator command"), and until [`Cluster::start`] connections are
    /// refused. Returns once the server is down.
    pub fn stop(&self) -> Result<(), String> {
        run_quiet("pg_ctl stop", &mut self.stop_command("fast"))
            .map(drop)
            .map_err(|e| format!("{e}{}", self.log_tail(20)))
    }

    /// The server log's last `lines` lines, headed by its path, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let path = self.log_path();
        let tail = match fs::read_to_string(&path) {
            Ok(text) => {
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(lines)..].join("\n")
            }
            Err(e) => format!("(no server log: {e})"),
        };
        format!("\n--- server log ({}), last lines ---\n{tail}", path.display())
    }

    /// Stops the server (immediate shutdown: the data is thrown away) and removes the folder, as
    /// dropping does, but saying what went wrong. Returns the folder removed.
    pub fn remove(mut self) -> Result<PathBuf, String> {
        self.cleanup()
    }

    fn cleanup(&mut self) -> Result<PathBuf, String> {
        let Some(mut guardian) = self.guardian.take() else { return Ok(self.root.clone()) };
        let mut problems = Vec::new();
        if self.data_dir().join("postmaster.pid").is_file() {
            if let Err(e) = run_quiet("pg_ctl stop", &mut self.stop_command("immediate")) {
                problems.push(e);
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.root) {
            problems.push(format!("cannot remove {}: {e}", self.root.display()));
        }
        if let Some(mut stdin) = guardian.stdin.take() {
            // If this fails the guardian sees EOF and cleans up again, which is harmless.
            let _ = stdin.write_all(b"done\n");
        }
        let _ = guardian.child.wait();
        if problems.is_empty() {
            Ok(self.root.clone())
        } else {
            Err(problems.join("; "))
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    fn chown_root(&self) -> Result<(), String> {
        if self.run_as.is_some() {
            run_quiet("chown", Command::new("chown").arg("postgres:").arg(&self.root))?;
        }
        Ok(())
    }

    fn initdb(&self) -> Result<(), String> {
        let mut cmd = self.tool("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .current_dir(&self.root);
        run_quiet("initdb", &mut cmd).map(drop)
    }

    /// Appends the settings to postgresql.conf (later lines win, so a retry on another port just
    /// appends again).
    fn write_config(&self, tuning: Tuning) -> Result<(), String> {
        let mut conf = format!(
            "\n# written by pg-harness\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 200\n",
            self.port,
            self.root.to_string_lossy().replace('\'', "''")
        );
        if tuning == Tuning::Test {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let path = self.data_dir().join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    fn stop_command(&self, mode: &str) -> Command {
        let mut cmd = self.tool("pg_ctl");
        cmd.arg("-D").arg(self.data_dir()).args(["-m", mode, "-w", "-t", WAIT_SECONDS, "stop"]).current_dir("/");
        cmd
    }

    /// A command running server tool `name` (`initdb`, `pg_ctl`, ...) as the right user.
    fn tool(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        match self.run_as {
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

    /// `sh` that stops the server and removes the folder if this process dies without saying "done"
    /// (see the crate documentation).
    fn spawn_guardian(&self) -> Result<Guardian, String> {
        const SCRIPT: &str = r#"trap '' INT TERM HUP QUIT
if IFS= read -r line && [ "$line" = done ]; then exit 0; fi
root=$1; shift
if [ -f "$root/data/postmaster.pid" ]; then "$@" >/dev/null 2>&1 || true; fi
rm -rf -- "$root"
echo "pg-harness: interrupted; stopped the throwaway PostgreSQL and removed $root" >&2
"#;
        let stop = self.stop_command("immediate");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("pg-harness-guardian")
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
        let _ = self.cleanup();
    }
}

/// The server binaries, and how to run them (as `postgres` when root).
fn detect() -> Result<(PathBuf, Option<RunAs>), String> {
    let bin = find_bindir()?;
    let run_as = if is_root()? { Some(run_as_postgres()?) } else { None };
    Ok((bin, run_as))
}

fn is_root() -> Result<bool, String> {
    let out = Command::new("id").arg("-u").output().map_err(|e| format!("cannot run `id -u`: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run_as_postgres() -> Result<RunAs, String> {
    if !Command::new("id").args(["-u", "postgres"]).output().is_ok_and(|o| o.status.success()) {
        return Err("running as root and there is no `postgres` user to run the server as (create it: \
                    `useradd --system --home-dir /var/lib/postgresql postgres`)"
            .to_owned());
    }
    if which("runuser") {
        Ok(RunAs::Runuser)
    } else if which("su") {
        Ok(RunAs::Su)
    } else {
        Err("running as root, but neither `runuser` nor `su` is there to run PostgreSQL as `postgres`".to_owned())
    }
}

fn which(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .any(|dir| dir.join(name).is_file())
}

/// `"15"` -> `[15]`, `"9.6"` -> `[9, 6]`; anything else is not a version folder.
fn parse_version(name: &str) -> Option<Vec<u64>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// The newest `/usr/lib/postgresql/<version>/bin`, else `pg_config --bindir`.
fn find_bindir() -> Result<PathBuf, String> {
    let has_tools = |bin: &Path| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file();
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    for entry in fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten() {
        let Some(version) = parse_version(&entry.file_name().to_string_lossy()) else { continue };
        let bin = entry.path().join("bin");
        if has_tools(&bin) && best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
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

/// Runs `cmd` with no input; its output on success, else an error quoting it.
fn run_quiet(what: &str, cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {what}: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{what} failed ({}):\n{}", out.status, text.trim_end()))
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

    fn accepts_connections(cluster: &Cluster) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", cluster.port)).is_ok()
    }

    /// A whole life: created and listening, stopped (refused), started again on the same port, and
    /// removed with its folder. Needs the server binaries, like the tests that use the harness.
    #[test]
    fn a_cluster_starts_stops_starts_again_and_leaves_nothing() {
        let cluster = Cluster::create(Tuning::Test).unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
        let root = cluster.root().to_owned();
        assert!(cluster.url().ends_with(&format!(":{}/postgres", cluster.port)));
        assert!(cluster.running() && accepts_connections(&cluster));
        cluster.stop().unwrap();
        assert!(!cluster.running() && !accepts_connections(&cluster), "stopped means refused");
        cluster.start().unwrap();
        assert!(accepts_connections(&cluster), "started again on the same port");
        assert_eq!(cluster.remove().unwrap(), root);
        assert!(!root.exists(), "the folder is removed");
    }
}
