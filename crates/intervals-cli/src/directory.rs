//! `genesys-intervals users` and `queues`: dimension sync.

use crate::args::DirectoryArgs;
use crate::exit::CliError;
use crate::settings::{io_settings, ConfigFile};
use crate::wiring;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Which {
    Users,
    Queues,
}

pub(crate) async fn run(args: &DirectoryArgs, which: Which) -> Result<(), CliError> {
    let mut config = ConfigFile::load(args.output.config.as_deref())?;
    let io = io_settings(&args.source, &args.output, &mut config, true)?;
    // The source's configuration is checked first (nothing is sent), so a usage error creates no output.
    let source = wiring::open_source(&io, false).await?;
    // What the output can hold is known without opening it; the login comes before the output
    // is opened, so a refused or unresolvable login creates nothing.
    wiring::check_directory(&io.out)?;
    source.login().await?;
    let directory = wiring::open_directory(&io.out).await?;
    let written = match which {
        Which::Users => {
            let users = source.directory.users().await?;
            directory.write_users(io.org.as_str(), &users).await?
        }
        Which::Queues => {
            let queues = source.directory.queues().await?;
            directory.write_queues(io.org.as_str(), &queues).await?
        }
    };
    directory.finish().await?;
    source.shutdown().await;
    let what = match which {
        Which::Users => "users",
        Which::Queues => "queues",
    };
    eprintln!("Done: {written} {what} written to {} (org {:?})", io.out, io.org.as_str());
    Ok(())
}
