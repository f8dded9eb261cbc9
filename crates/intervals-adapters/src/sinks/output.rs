//! Output files written all or nothing: a temporary file beside the target, renamed over it only
//! when everything was written (and synced). Dropping an [`Output`] without committing removes
//! the temporary file and leaves the target as it was.
//!
//! Targets that are not regular files are never replaced: a character device (`/dev/null`) or a
//! FIFO is written through, and a symbolic link is followed, so the temporary file goes beside the
//! file it points to and the rename replaces that file, not the link. A folder, or a target that
//! cannot be written, is refused when the output is created, before any request is sent.

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
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    /// A temporary file renamed over `target` (the destination, or the file its link points to).
    Replace { target: PathBuf, temp: tempfile::NamedTempFile },
    /// A device or FIFO, opened and written in place at commit.
    WriteThrough(PathBuf),
    /// Standard output.
    Stdout,
}

impl Output {
    /// Prepares `dest`: for a file, creates the temporary file beside it now, so an unwritable
    /// folder is reported before any work is done.
    pub(crate) fn create(dest: Destination) -> io::Result<Output> {
        let mode = match &dest {
            Destination::File(path) => match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is a folder, not a file", path.display()),
                    ));
                }
                Ok(meta) if is_special(&meta) => Mode::WriteThrough(path.clone()),
                Ok(meta) => {
                    // An existing file (or the file a link points to): it must be writable.
                    if meta.permissions().readonly() {
                        return Err(io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            format!("{} is read-only", path.display()),
                        ));
                    }
                    let target = std::fs::canonicalize(path)?;
                    Mode::Replace { temp: temp_beside(&target)?, target }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // A new file, or a dangling link: create it where the link points.
                    let target = match std::fs::read_link(path) {
                        Ok(link) => parent_of(path).join(link),
                        Err(_) => path.clone(),
                    };
                    Mode::Replace { temp: temp_beside(&target)?, target }
                }
                Err(e) => return Err(e),
            },
            Destination::Stdout => Mode::Stdout,
        };
        Ok(Output { mode })
    }

    /// The folder for scratch files belonging to this output: the target's folder (same file
    /// system, same cleanup story), or the system's temporary folder for stdout and devices.
    pub(crate) fn scratch_folder(&self) -> PathBuf {
        match &self.mode {
            Mode::Replace { target, .. } => parent_of(target).to_path_buf(),
            Mode::WriteThrough(_) | Mode::Stdout => std::env::temp_dir(),
        }
    }

    /// Writes the content with `write`, then moves it into place. On any error the target is
    /// untouched and the temporary file is removed. Blocking.
    pub(crate) fn commit(self, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        match self.mode {
            Mode::Replace { target, mut temp } => {
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
                temp.persist(&target).map_err(|e| e.error)?;
                // Make the rename durable; not every platform can sync a folder.
                if let Ok(dir) = File::open(parent_of(&target)) {
                    let _ = dir.sync_all();
                }
                Ok(())
            }
            Mode::WriteThrough(path) => {
                let file = std::fs::OpenOptions::new().write(true).open(&path)?;
                let mut out = BufWriter::with_capacity(1 << 16, file);
                write(&mut out)?;
                out.flush()
            }
            Mode::Stdout => {
                let stdout = io::stdout();
                let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
                write(&mut out)?;
                out.flush()
            }
        }
    }
}

/// A character device or a FIFO: written in place, never replaced.
fn is_special(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        kind.is_char_device() || kind.is_fifo() || kind.is_block_device() || kind.is_socket()
    }
    #[cfg(not(unix))]
    {
        !meta.is_file()
    }
}

/// A hidden temporary file in the folder of `target`.
fn temp_beside(target: &Path) -> io::Result<tempfile::NamedTempFile> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(parent_of(target))
}

/// The folder holding `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
