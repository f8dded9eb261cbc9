//! Output files written all or nothing: a temporary file beside the target, renamed over it only
//! when everything was written (and synced). Dropping an [`Output`] without committing removes
//! the temporary file and leaves the target as it was.
//!
//! Targets that are not regular files are never replaced: a character device (`/dev/null`) or a
//! FIFO is written through, and a symbolic link is followed, so the temporary file goes beside the
//! file it points to and the rename replaces that file, not the link. A folder, or a target that
//! cannot be written, is refused when the output is created, before any request is sent. `-` is
//! standard output ([`Destination::parse`]).
//!
//! A new file is created with mode `0644` less the process's umask (so `umask 077` gives `0600`);
//! a replaced file keeps no more permission than it had. A FIFO is opened only once a reader has
//! it open: [`Output::wait_until_writable`] waits for one without blocking the runtime, so the
//! wait can be interrupted.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Where a file output writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A file, replaced atomically.
    File(PathBuf),
    /// Standard output, streamed.
    Stdout,
}

impl Destination {
    /// `-` is standard output; anything else a path.
    pub fn parse(path: &Path) -> Destination {
        if path.as_os_str() == "-" {
            Destination::Stdout
        } else {
            Destination::File(path.to_path_buf())
        }
    }
}

/// An output being prepared.
#[derive(Debug)]
pub struct Output {
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    /// A temporary file renamed over `target` (the destination, or the file its link points to);
    /// `keep` is the mode of the file it replaces, if any.
    Replace { target: PathBuf, temp: tempfile::NamedTempFile, keep: Option<std::fs::Permissions> },
    /// A device or FIFO, opened and written in place at commit. `held`: the FIFO opened by
    /// [`Output::wait_until_writable`], kept open until the commit has its own descriptor, so that
    /// the reader never sees an end of file in between.
    WriteThrough { path: PathBuf, fifo: bool, held: Option<File> },
    /// Standard output.
    Stdout,
}

impl Output {
    /// Prepares `dest`: for a file, creates the temporary file beside it now, so an unwritable
    /// folder is reported before any work is done.
    pub fn create(dest: Destination) -> io::Result<Output> {
        let mode = match &dest {
            Destination::File(path) => match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is a folder, not a file", path.display()),
                    ));
                }
                Ok(meta) if is_special(&meta) => {
                    Mode::WriteThrough { path: path.clone(), fifo: is_fifo(&meta), held: None }
                }
                Ok(meta) => {
                    // An existing file (or the file a link points to): it must be writable.
                    if meta.permissions().readonly() {
                        return Err(io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            format!("{} is read-only", path.display()),
                        ));
                    }
                    let target = std::fs::canonicalize(path)?;
                    Mode::Replace { temp: temp_beside(&target)?, target, keep: Some(meta.permissions()) }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // A new file, or a dangling link: create it where the link points.
                    let target = match std::fs::read_link(path) {
                        Ok(link) => parent_of(path).join(link),
                        Err(_) => path.clone(),
                    };
                    Mode::Replace { temp: temp_beside(&target)?, target, keep: None }
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
            Mode::WriteThrough { .. } | Mode::Stdout => std::env::temp_dir(),
        }
    }

    /// Returns once [`Output::commit`] can open the target without blocking: at once, except for a
    /// FIFO that no reader has open yet, which is polled (logging once that it waits) until one has.
    /// Cancel-safe: dropping the future ends the wait.
    pub async fn wait_until_writable(&mut self) -> io::Result<()> {
        let Mode::WriteThrough { path, fifo: true, held } = &mut self.mode else { return Ok(()) };
        let mut logged = false;
        loop {
            match open_fifo_nonblocking(path) {
                Ok(file) => {
                    *held = Some(file);
                    return Ok(());
                }
                // ENXIO: no process has the FIFO open for reading.
                Err(e) if e.raw_os_error() == Some(ENXIO) => {
                    if !logged {
                        tracing::warn!(fifo = %path.display(), "waiting for a reader to open the FIFO (Ctrl-C stops)");
                        logged = true;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the content with `write`, then moves it into place. On any error the target is
    /// untouched and the temporary file is removed. Blocking.
    pub fn commit(self, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        match self.mode {
            Mode::Replace { target, mut temp, keep } => {
                {
                    let mut out = BufWriter::with_capacity(1 << 20, temp.as_file_mut());
                    write(&mut out)?;
                    out.flush()?;
                }
                temp.as_file().sync_all()?;
                if let Some(keep) = keep {
                    narrow_to(temp.as_file(), &keep)?;
                }
                temp.persist(&target).map_err(|e| e.error)?;
                // Make the rename durable; not every platform can sync a folder.
                if let Ok(dir) = File::open(parent_of(&target)) {
                    let _ = dir.sync_all();
                }
                Ok(())
            }
            Mode::WriteThrough { path, held, .. } => {
                let file = std::fs::OpenOptions::new().write(true).open(&path)?;
                drop(held);
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

/// A FIFO: opened only once a reader has it open ([`Output::wait_until_writable`]).
fn is_fifo(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        meta.file_type().is_fifo()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// `ENXIO`: opening a FIFO for writing, without blocking, when no process reads it.
const ENXIO: i32 = 6;

/// Opens a FIFO for writing without blocking: `ENXIO` when it has no reader.
fn open_fifo_nonblocking(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// The mode of a new output file: `0644`, less the process's umask (applied by the kernel when
/// the file is created).
pub(crate) fn new_file_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o644)
}

/// Takes from `file`'s mode what `keep` (the mode of the file it replaces) does not grant: a
/// replaced file never becomes readable by more people than before.
fn narrow_to(file: &File, keep: &std::fs::Permissions) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode() & 0o7777;
        let narrowed = mode & keep.mode();
        if narrowed != mode {
            file.set_permissions(std::fs::Permissions::from_mode(narrowed))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (file, keep);
    Ok(())
}

/// A hidden temporary file in the folder of `target`, created with [`new_file_permissions`].
pub(crate) fn temp_beside(target: &Path) -> io::Result<tempfile::NamedTempFile> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(new_file_permissions())
        .tempfile_in(parent_of(target))
}

/// The folder holding `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
