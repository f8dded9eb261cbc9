//! The PostgreSQL clusters of the test and bench steps: throwaway ones ([`Ephemeral`]) and the
//! persistent dev cluster (`cargo xtask db up|down|url`), both through the `pg-harness` crate
//! (initdb + pg_ctl, run as `postgres` when root, a guardian that cleans up if xtask is killed).

use std::path::PathBuf;

use pg_harness::Cluster;
pub(crate) use pg_harness::Tuning;

/// Folder of the persistent dev cluster (`cargo xtask db up`).
pub(crate) const DEV_DIR: &str = "/tmp/genesys-intervals-dev-pg";
/// Port of the persistent dev cluster.
pub(crate) const DEV_PORT: u16 = 55433;

/// A throwaway cluster: stopped and removed when dropped, saying so.
#[derive(Debug)]
pub(crate) struct Ephemeral(Option<Cluster>);

impl Ephemeral {
    /// initdb into a fresh folder, start on a free loopback port, wait until it accepts connections.
    pub(crate) fn start(tuning: Tuning) -> Result<Ephemeral, String> {
        Cluster::create(tuning).map(|cluster| Ephemeral(Some(cluster)))
    }

    pub(crate) fn url(&self) -> String {
        self.0.as_ref().map(Cluster::url).unwrap_or_default()
    }

    pub(crate) fn version(&self) -> String {
        self.0.as_ref().map(Cluster::version).unwrap_or_default()
    }
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        match self.0.take().map(Cluster::remove) {
            Some(Ok(root)) => println!("==> stopped the ephemeral PostgreSQL and removed {}", root.display()),
            Some(Err(e)) => eprintln!("xtask: warning: {e}"),
            None => {}
        }
    }
}

fn dev_cluster() -> Result<Cluster, String> {
    Cluster::existing(PathBuf::from(DEV_DIR), DEV_PORT)
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
    if !cluster.is_initialised() {
        eprintln!("xtask: creating the dev cluster in {DEV_DIR} (PostgreSQL {})", cluster.version());
        cluster.init(Tuning::Test)?;
    }
    cluster.start()?;
    eprintln!("xtask: dev cluster running; stop and remove it with `cargo xtask db down`");
    Ok(cluster.url())
}

/// Stops and removes the dev cluster.
pub(crate) fn dev_down() -> Result<(), String> {
    let cluster = dev_cluster()?;
    if !cluster.root().exists() {
        println!("no dev cluster in {DEV_DIR}");
        return Ok(());
    }
    if cluster.running() {
        cluster.stop()?;
    }
    std::fs::remove_dir_all(cluster.root()).map_err(|e| format!("cannot remove {DEV_DIR}: {e}"))?;
    println!("stopped and removed the dev cluster in {DEV_DIR}");
    Ok(())
}
