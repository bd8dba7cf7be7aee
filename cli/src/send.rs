//! `courier send`: sends one message, or `--count N` copies, to a queue or a topic.
//!
//! Sends are pipelined (`send_async`, a window of receipts awaited oldest first), so a million
//! messages go at the backend's pipelined rate; `--await-each` sends one at a time instead, as
//! does a backend whose sends complete inline (`max_outstanding() == 0`).
//! Every receipt is awaited before the command exits, so success means the broker has every
//! message as its delivery mode promises.

use std::collections::VecDeque;
use std::io::{Read as _, Write};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use courier::{
    ConnectionFactory, DeliveryMode, Error, Message, Producer, Result, SendOptions, SessionMode,
    Value,
};

use crate::args::{self, DestinationArg, UrlArg};
use crate::endpoint::Endpoint;

/// Receipts kept in flight before the oldest is awaited.
const WINDOW: usize = 1_000;

/// Send messages.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    courier send --url courier://127.0.0.1:7672 --queue orders --property region=eu 'hello'\n  \
    courier send --queue load --count 1000000 --size 1KiB --persistent\n  \
    echo '{\"id\":1}' | courier send --topic events --stdin")]
pub struct SendArgs {
    #[command(flatten)]
    pub url: UrlArg,
    #[command(flatten)]
    pub destination: DestinationArg,
    /// Messages to send (each a copy, with a JMSXSequence-like `courier_seq` property from 0).
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// Send a bytes body of this size (e.g. 100, 1KiB) instead of text.
    #[arg(long, value_parser = args::size, conflicts_with_all = ["text", "file", "stdin"])]
    pub size: Option<usize>,
    /// Persistent delivery (the broker keeps the message across a restart, if it can).
    #[arg(long)]
    pub persistent: bool,
    /// Priority, 0 (lowest) to 9.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub priority: Option<u8>,
    /// Time to live, e.g. 30s; expired messages are never delivered.
    #[arg(long, value_parser = args::duration)]
    pub ttl: Option<Duration>,
    /// Delivery delay, e.g. 500ms.
    #[arg(long, value_parser = args::duration)]
    pub delay: Option<Duration>,
    /// A property name=value (repeatable); name:string=value keeps the value a string.
    #[arg(long = "property", value_name = "K=V", value_parser = args::property)]
    pub properties: Vec<(String, Value)>,
    /// JMSCorrelationID.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// Await each send before the next instead of pipelining.
    #[arg(long)]
    pub await_each: bool,
    /// The text body.
    #[arg(conflicts_with_all = ["file", "stdin"])]
    pub text: Option<String>,
    /// Send this file's bytes as a bytes body.
    #[arg(long, conflicts_with = "stdin")]
    pub file: Option<PathBuf>,
    /// Send standard input as a text body (bytes if it is not UTF-8).
    #[arg(long)]
    pub stdin: bool,
}

/// Builds the message every send copies.
fn template(args: &SendArgs) -> Result<Message> {
    let mut message = if let Some(size) = args.size {
        Message::bytes(Bytes::from(vec![b'x'; size]))
    } else if let Some(path) = &args.file {
        let file = std::fs::File::open(path)
            .map_err(|e| Error::invalid_argument(format!("cannot read {}: {e}", path.display())))?;
        Message::bytes(read_body(file, &path.display().to_string())?)
    } else if args.stdin {
        let bytes = read_body(std::io::stdin().lock(), "standard input")?;
        match String::from_utf8(bytes) {
            Ok(text) => Message::text(text),
            Err(e) => Message::bytes(e.into_bytes()),
        }
    } else {
        Message::text(args.text.clone().unwrap_or_default())
    };
    for (name, value) in &args.properties {
        message.set_property(name, value.clone())?;
    }
    if let Some(id) = &args.correlation_id {
        message.set_correlation_id(id.as_str())?;
    }
    Ok(message)
}

/// Reads a body of at most [`args::MAX_SIZE`] bytes: a bigger input is refused, not loaded.
fn read_body(input: impl std::io::Read, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    input
        .take(args::MAX_SIZE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::invalid_argument(format!("cannot read {what}: {e}")))?;
    if bytes.len() > args::MAX_SIZE {
        return Err(Error::invalid_argument(format!(
            "{what} is over {} bytes, the largest body courier send takes",
            args::MAX_SIZE
        )));
    }
    Ok(bytes)
}

/// The send settings the flags ask for.
fn options(args: &SendArgs) -> SendOptions {
    let defaults = SendOptions::default();
    SendOptions {
        delivery_mode: if args.persistent {
            DeliveryMode::Persistent
        } else {
            DeliveryMode::NonPersistent
        },
        priority: args.priority.unwrap_or(defaults.priority),
        time_to_live: args.ttl.unwrap_or_default(),
        delivery_delay: args.delay.unwrap_or_default(),
        ..defaults
    }
}

/// Sends `count` copies of `template` (numbered by `courier_seq` when more than one), and
/// returns once the broker has every one: pipelined through a window of receipts, or each
/// awaited.
async fn send_all(
    producer: &dyn Producer,
    template: &Message,
    count: u64,
    pipelined: bool,
) -> Result<()> {
    let mut receipts = VecDeque::with_capacity(WINDOW.min(count as usize));
    for sequence in 0..count {
        let mut message = template.clone();
        if count > 1 {
            message.set_property("courier_seq", sequence as i64)?;
        }
        if !pipelined {
            producer.send(&mut message).await?;
            continue;
        }
        if receipts.len() == WINDOW {
            if let Some(oldest) = receipts.pop_front() {
                let _: Message = oldest.await?;
            }
        }
        receipts.push_back(producer.send_async(message).await?);
    }
    producer.flush().await?;
    for receipt in receipts {
        let _: Message = receipt.await?;
    }
    Ok(())
}

/// Sends as the arguments say and reports the count on `out`.
pub async fn run(
    factory: &dyn ConnectionFactory,
    args: &SendArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let template = template(args)?;
    let options = options(args);
    let destination = args.destination.destination();
    let endpoint = Endpoint::open(factory, SessionMode::AutoAcknowledge, None).await?;
    let producer = endpoint.session.create_producer(Some(&destination)).await?;
    producer.set_options(options)?;
    // A producer whose sends complete inline (window 0, like the embedded broker's) gains
    // nothing from receipts: plain sends are the same work without the bookkeeping.
    let pipelined = !args.await_each && producer.max_outstanding() > 0;
    let started = std::time::Instant::now();
    send_all(producer.as_ref(), &template, args.count, pipelined).await?;
    let elapsed = started.elapsed();
    endpoint.close().await?;
    if args.count > 1 {
        let rate = args.count as f64 / elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            out,
            "sent {} messages to {destination} in {:.2} s ({rate:.0} msgs/s)",
            args.count,
            elapsed.as_secs_f64()
        );
    } else {
        let noun = if args.count == 1 {
            "message"
        } else {
            "messages"
        };
        let _ = writeln!(out, "sent {} {noun} to {destination}", args.count);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier::{ConsumerOptions, Destination};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pipelined_and_awaited_sends_deliver_every_copy_in_order() {
        let factory = courier::connect("embedded:").await.unwrap();
        let endpoint = Endpoint::open(factory.as_ref(), SessionMode::AutoAcknowledge, None)
            .await
            .unwrap();
        let queue = Destination::queue("q");
        let consumer = endpoint
            .session
            .create_consumer(&queue, ConsumerOptions::default())
            .await
            .unwrap();
        let producer = endpoint
            .session
            .create_producer(Some(&queue))
            .await
            .unwrap();
        let count = WINDOW as u64 * 2 + 7;
        for pipelined in [true, false] {
            send_all(producer.as_ref(), &Message::text("m"), count, pipelined)
                .await
                .unwrap();
            for expected in 0..count as i64 {
                let wait = std::time::Duration::from_secs(5);
                let m = consumer.receive_timeout(wait).await.unwrap().unwrap();
                assert_eq!(m.property::<i64>("courier_seq").unwrap(), Some(expected));
            }
            assert!(consumer.receive_no_wait().await.unwrap().is_none());
        }
        endpoint.close().await.unwrap();
    }
}
