//! `courier delete`: deletes a queue or topic with every message it stores
//! (`Session::delete_destination`, an administrative operation: the user needs the admin
//! permission on it). A topic's durable subscriptions go with it. A destination with open
//! consumers is refused; a backend that cannot delete destinations answers `Unsupported`.

use std::io::Write;

use clap::Args;
use courier::{ConnectionFactory, Result, SessionMode};

use crate::args::{DestinationArg, UrlArg};
use crate::endpoint::Endpoint;

/// Delete a queue or topic and everything it stores.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Example:\n  courier delete --url courier://127.0.0.1:7672 --queue orders")]
pub struct DeleteArgs {
    #[command(flatten)]
    pub url: UrlArg,
    #[command(flatten)]
    pub destination: DestinationArg,
}

/// Deletes the destination and says so on `out`.
pub async fn run(
    factory: &dyn ConnectionFactory,
    args: &DeleteArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let endpoint = Endpoint::open(factory, SessionMode::AutoAcknowledge, None).await?;
    let destination = args.destination.destination();
    let deleted = endpoint.session.delete_destination(&destination).await;
    let closed = endpoint.close().await;
    deleted?;
    closed?;
    let _ = writeln!(out, "deleted {destination}");
    Ok(())
}
