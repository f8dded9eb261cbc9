//! End-to-end tests live in tests/it. This library holds what they need beside the simulator and the
//! binaries: [`PgServer`], a PostgreSQL server of one test's own, which the test really stops and
//! starts again (the server that `cargo xtask test` shares between all tests must never be
//! restarted). Std only.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A throwaway PostgreSQL server (initdb, then `pg_ctl`, as in `xtask/src/pg.rs`): trust
/// authentication on 127.0.0.1, no fsync. As root every server tool runs as the `postgres` user
/// (`runuser`, else `su`), in a folder under /tmp that user can reach.
///
/// [`PgServer::stop`] is a fast shutdown: every session is terminated ("terminating connection due
/// to administrator command"), and until [`PgServer::start_again`] connections are refused. `Drop`
/// stops the server and removes its folder; a guardian shell does the same if this process dies
/// without dropping it (a kill, Ctrl-C).
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    run_as: Option<RunAs>,
    root: PathBuf,
    port: u16,
    guardian: Option<(Child, Option<ChildStdin>)>,
}

#[derive(Debug, Clone, Copy)]
enum RunAs {
    Runuser,
    Su,
}

impl PgServer {
    /// A new cluster, started. `Err` says why there is none (no server binaries, no `postgres`
    /// user to run them as root, initdb or start failing, with the server log's last lines).
    pub fn start() -> Result<PgServer, String> {
        let bin = find_bindir()?;
        let run_as = if is_root() { Some(run_as_postgres()?) } else { None };
        let base = if run_as.is_some() { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let root = create_unique_dir(&base)?;
        let mut server = PgServer { bin, run_as, root, port: 0, guardian: None };
        // From here on, dropping `server` (an early return, a panic) removes the folder.
        server.guardian = Some(server.spawn_guardian()?);
        if server.run_as.is_some() {
            run_quiet("chown", Command::new("chown").arg("postgres:").arg(&server.root))?;
        }
        let mut initdb = server.tool("initdb");
        initdb
            .arg("-D")
            .arg(server.data_dir())
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .current_dir(&server.root);
        run_quiet("initdb", &mut initdb)?;
        let mut last_error = String::new();
        // The port is free when we look; another process may take it before the server binds.
        for _ in 0..3 {
            server.port = free_port()?;
            server.write_config()?;
            match server.start_again() {
                Ok(()) => return Ok(server),
                Err(e) if e.contains("could not bind") => last_error = e,
                Err(e) => return Err(e),
            }
        }
        Err(last_error)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Fast shutdown (`pg_ctl stop -m fast -w`): returns once the server is down.
    pub fn stop(&self) -> Result<(), String> {
        let mut stop = self.stop_command("fast");
        run_quiet("pg_ctl stop", &mut stop).map(drop).map_err(|e| format!("{e}{}", self.log_tail()))
    }

    /// `pg_ctl start -w` on the same folder and port: returns once it accepts connections.
    pub fn start_again(&self) -> Result<(), String> {
        let mut start = self.tool("pg_ctl");
        start
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", "30", "start"])
            .current_dir(&self.root);
        run_quiet("pg_ctl start", &mut start).map(drop).map_err(|e| format!("{e}{}", self.log_tail()))
    }

    /// The server log's last lines, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("\n--- {} ---\n{}", self.log_path().display(), lines[lines.len().saturating_sub(20)..].join("\n"))
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// Later lines win, so a retry on another port just appends again.
    fn write_config(&self) -> Result<(), String> {
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nmax_connections = 50\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            self.port,
            self.root.to_string_lossy().replace('\'', "''")
        );
        let path = self.data_dir().join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    fn stop_command(&self, mode: &str) -> Command {
        let mut cmd = self.tool("pg_ctl");
        cmd.arg("-D").arg(self.data_dir()).args(["-m", mode, "-w", "-t", "30", "stop"]).current_dir("/");
        cmd
    }

    /// Server tool `name` run as the right user.
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
                let mut c = Command::new("su");
                c.args(["-s", "/bin/sh", "postgres", "-c", "exec \"$@\"", "sh"]).arg(exe);
                c
            }
        }
    }

    /// `sh` that stops the server and removes the folder if this process dies without saying "done".
    fn spawn_guardian(&self) -> Result<(Child, Option<ChildStdin>), String> {
        const SCRIPT: &str = r#"trap '' INT TERM HUP QUIT
if IFS= read -r line && [ "$line" = done ]; then exit 0; fi
root=$1; shift
if [ -f "$root/data/postmaster.pid" ]; then "$@" >/dev/null 2>&1 || true; fi
rm -rf -- "$root"
"#;
        let stop = self.stop_command("immediate");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("e2e-pg-guardian")
            .arg(&self.root)
            .arg(stop.get_program())
            .args(stop.get_args())
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the cleanup guardian (sh): {e}"))?;
        let stdin = child.stdin.take();
        Ok((child, stdin))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let Some((mut guardian, stdin)) = self.guardian.take() else { return };
        if self.data_dir().join("postmaster.pid").is_file() {
            let _ = self.stop_command("immediate").stdin(Stdio::null()).output();
        }
        let _ = fs::remove_dir_all(&self.root);
        if let Some(mut stdin) = stdin {
            // If this fails the guardian sees EOF and cleans up again, which is harmless.
            let _ = stdin.write_all(b"done\n");
        }
        let _ = guardian.wait();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run_as_postgres() -> Result<RunAs, String> {
    if !Command::new("id").args(["-u", "postgres"]).output().is_ok_and(|o| o.status.success()) {
        return Err("running as root and there is no `postgres` user to run the server as".to_owned());
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

/// The newest `/usr/lib/postgresql/<version>/bin`, else `pg_config --bindir`.
fn find_bindir() -> Result<PathBuf, String> {
    let has_tools = |bin: &Path| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file();
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    for entry in fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten() {
        let version: Option<Vec<u64>> =
            entry.file_name().to_string_lossy().split('.').map(|part| part.parse().ok()).collect();
        let bin = entry.path().join("bin");
        if let Some(version) = version.filter(|_| has_tools(&bin)) {
            if best.as_ref().is_none_or(|(v, _)| version > *v) {
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
    Err("no PostgreSQL server binaries (/usr/lib/postgresql/<version>/bin/initdb, `pg_config --bindir`)".to_owned())
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

fn create_unique_dir(base: &Path) -> Result<PathBuf, String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("genesys-intervals-e2e-pg-{}-{nanos:08x}-{n}", std::process::id()));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err(format!("cannot create a fresh folder under {}", base.display()))
}
