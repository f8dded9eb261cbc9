//! Output files written all or nothing: a temporary file beside the target, renamed over it only
//! when everything was written (and synced). Dropping an [`Output`] without committing removes
//! the temporary file and leaves the target as it was.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Where a file sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// A file, replaced atomically.
    File(PathBuf),
    /// Standard output, streamed.
    Stdout,
}

/// An output being prepared.
#[derive(Debug)]
pub(crate) struct Output {
    dest: Destination,
    temp: Option<tempfile::NamedTempFile>,
}

impl Output {
    /// Prepares `dest`: for a file, creates the temporary file beside it now, so an unwritable
    /// folder is reported before any work is done.
    pub(crate) fn create(dest: Destination) -> io::Result<Output> {
        let temp = match &dest {
            Destination::File(path) => {
                if path.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is a folder, not a file", path.display()),
                    ));
                }
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                Some(
                    tempfile::Builder::new()
                        .prefix(&format!(".{name}."))
                        .suffix(".tmp")
                        .tempfile_in(parent_of(path))?,
                )
            }
            Destination::Stdout => None,
        };
        Ok(Output { dest, temp })
    }

    /// The folder for scratch files belonging to this output: the target's folder (same file
    /// system, same cleanup story), or the system's temporary folder for stdout.
    pub(crate) fn scratch_folder(&self) -> PathBuf {
        match &self.dest {
            Destination::File(path) => parent_of(path).to_path_buf(),
            Destination::Stdout => std::env::temp_dir(),
        }
    }

    /// Writes the content with `write`, then moves it into place. On any error the target is
    /// untouched and the temporary file is removed. Blocking.
    pub(crate) fn commit(self, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        match (self.dest, self.temp) {
            (Destination::File(path), Some(mut temp)) => {
                {
                    let mut out = BufWriter::with_capacity(1 << 20, temp.as_file_mut());
                    write(&mut out)?;
                    out.flush()?;
                }
                temp.as_file().sync_all()?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    temp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
                }
                temp.persist(&path).map_err(|e| e.error)?;
                // Make the rename durable; not every platform can sync a folder.
                if let Ok(dir) = File::open(parent_of(&path)) {
                    let _ = dir.sync_all();
                }
                Ok(())
            }
            (_, _) => {
                let stdout = io::stdout();
                let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
                write(&mut out)?;
                out.flush()
            }
        }
    }
}

/// The folder holding `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
