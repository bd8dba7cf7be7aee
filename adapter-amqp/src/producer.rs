//! Producers: publishes on the session's channel.
//!
//! A queue is declared before the first send to it on a connection (sending to a queue
//! creates it, as in JMS) and published to through the default exchange, `mandatory`, so a
//! message RabbitMQ cannot route (a deleted temporary queue) comes back as an error. A topic
//! is published to through the topics exchange; a message no subscription takes is dropped,
//! as JMS wants.
//!
//! Outside transactions a send returns once RabbitMQ confirmed it. The confirm is awaited
//! bounded: when the connection is lost, the channel closes or RabbitMQ does not answer in
//! the request timeout, the send is [`Error::InDoubt`] — never hung, never silently lost.
//! `send_async` publishes at once and completes its receipt when the confirm arrives, so
//! many sends are in flight together.

use async_trait::async_trait;
use courier_api::spi::MessageIds;
use courier_api::{
    spi, Destination, DestinationKind, Error, InDoubtOperation, Message, Producer, Result,
    SendCompletion, SendOptions, SendReceipt, SessionMode,
};
use lapin::options::BasicPublishOptions;
use lapin::{Confirmation, PublisherConfirm};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{self, short};
use crate::link::Link;
use crate::session::SessionCore;
use crate::topology::TOPICS;

/// The largest body RabbitMQ accepts by default (`max_message_size`, 128 MiB).
pub const MAX_BODY: usize = 128 * 1024 * 1024;

/// How many pipelined sends a producer keeps unconfirmed before `send_async` waits.
pub const MAX_OUTSTANDING: usize = 4096;

/// A pipelined send waiting for its confirm, or a flush waiting for all before it.
enum Waiting {
    /// A send: its confirm, the connection's epoch it was published in, the message sent
    /// and the receipt to complete.
    Send(Box<(PublisherConfirm, u64, Message, SendCompletion)>),
    /// A flush: answered once every send before it completed.
    Flush(oneshot::Sender<()>),
}

/// A producer's message ids: `ID:`, a uuid made once per producer (unique across producers
/// and processes), `-` and a counter of the producer's sends. At most 3 + 32 + 1 + 20 bytes,
/// so an id always fits the AMQP message id property (a short string; see `codec`).
fn message_ids() -> MessageIds {
    MessageIds::new(format!("ID:{}-", uuid::Uuid::new_v4().simple()))
}

/// A producer.
pub(crate) struct AmqpProducer {
    session: Arc<SessionCore>,
    destination: Option<Destination>,
    options: Mutex<SendOptions>,
    closed: AtomicBool,
    /// The ids of its messages.
    ids: MessageIds,
    /// The confirms of pipelined sends, awaited in send order by one task, so receipts
    /// resolve in send order.
    pipeline: Mutex<Option<mpsc::Sender<Waiting>>>,
}

impl AmqpProducer {
    /// A producer of `session`, with a default destination or none.
    pub fn new(session: Arc<SessionCore>, destination: Option<Destination>) -> Self {
        AmqpProducer {
            session,
            destination,
            options: Mutex::new(SendOptions::default()),
            closed: AtomicBool::new(false),
            ids: message_ids(),
            pipeline: Mutex::new(None),
        }
    }

    /// The queue of the confirm task, started on first use.
    fn pipeline(&self) -> mpsc::Sender<Waiting> {
        let mut pipeline = self.pipeline.lock();
        if let Some(sender) = pipeline.as_ref() {
            return sender.clone();
        }
        let (sender, mut waiting) = mpsc::channel::<Waiting>(MAX_OUTSTANDING);
        let link = self.session.link.clone();
        tokio::spawn(async move {
            while let Some(next) = waiting.recv().await {
                match next {
                    Waiting::Send(send) => {
                        let (confirm, epoch, message, completion) = *send;
                        let outcome = confirmed(&link, &message, confirm, epoch)
                            .await
                            .map(|()| message);
                        completion.complete(outcome);
                    }
                    Waiting::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        *pipeline = Some(sender.clone());
        sender
    }

    /// Waits until every pipelined send before it has its outcome.
    async fn wait_pipeline(&self) {
        let sender = self.pipeline.lock().clone();
        let Some(sender) = sender else { return };
        let (done, flushed) = oneshot::channel();
        if sender.send(Waiting::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    fn check(&self) -> Result<()> {
        self.session.check()?;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::illegal_state("the producer is closed"));
        }
        Ok(())
    }

    /// Stamps and publishes `message`; the confirm to wait for, if the channel confirms.
    async fn publish(
        &self,
        destination: Option<&Destination>,
        message: &mut Message,
        options: &SendOptions,
    ) -> Result<Option<(PublisherConfirm, u64)>> {
        self.check()?;
        let destination = spi::resolve_destination(self.destination.as_ref(), destination)?;
        options.validate()?;
        let caps = &self.session.capabilities;
        if options.priority != courier_api::message::DEFAULT_PRIORITY && !caps.priority {
            return Err(Link::unsupported(
                "message priority (quorum queues, or classic queues with priority=false)",
            ));
        }
        if options.delivery_delay > crate::delay::MAX_DELAY {
            return Err(Error::invalid_argument(format!(
                "delivery delay {:?} is longer than RabbitMQ's longest ({:?})",
                options.delivery_delay,
                crate::delay::MAX_DELAY
            )));
        }
        let id = (!options.disable_message_id).then(|| self.ids.next());
        let now = spi::stamp(message, destination, options, id)?;
        let link = &self.session.link;
        let (properties, body) = codec::encode(message, &link.tag, now)?;
        if body.len() > MAX_BODY {
            return Err(Error::ResourceLimit(format!(
                "the body is {} bytes; RabbitMQ accepts at most {MAX_BODY}",
                body.len()
            )));
        }
        let epoch = link.epoch();
        let channel = &self.session.channel();
        let routing_key = short("a destination name", destination.name())?;
        let (mut exchange, mandatory) = match destination.kind() {
            DestinationKind::Queue => {
                link.declare_queue(channel, destination.name()).await?;
                ("", true)
            }
            DestinationKind::TemporaryQueue => ("", true),
            DestinationKind::Topic => {
                link.declare_topics(channel).await?;
                (TOPICS, false)
            }
            DestinationKind::TemporaryTopic => {
                let ours = link.temporaries.lock().contains_key(destination.name());
                if !ours && !link.queue_exists(destination.name()).await? {
                    return Err(Error::invalid_destination(
                        destination.to_string(),
                        "the temporary topic was deleted (its connection closed)",
                    ));
                }
                link.declare_topics(channel).await?;
                (TOPICS, false)
            }
        };
        // A delayed message goes through its delay queue (see `delay`), which always takes
        // it: mandatory finds nothing to return.
        let delay_exchange;
        if !options.delivery_delay.is_zero() {
            delay_exchange = link
                .delays
                .exchange(link, destination.kind(), options.delivery_delay)
                .await?;
            exchange = &delay_exchange;
        }
        let publish = BasicPublishOptions {
            mandatory,
            immediate: false,
        };
        let confirm = link
            .call(
                "basic.publish",
                channel.basic_publish(
                    short("an exchange name", exchange)?,
                    routing_key,
                    publish,
                    &body,
                    properties,
                ),
            )
            .await?;
        if self.session.mode == SessionMode::Transacted {
            return Ok(None);
        }
        Ok(Some((confirm, epoch)))
    }
}

/// Waits for `confirm` of `message`, bounded by the connection's end and the request timeout.
async fn confirmed(
    link: &Link,
    message: &Message,
    confirm: PublisherConfirm,
    epoch: u64,
) -> Result<()> {
    let in_doubt = |reason: String| Error::in_doubt(InDoubtOperation::Send, reason);
    let mut confirm = std::pin::pin!(confirm);
    // Pipelined sends mostly find their confirm arrived already (RabbitMQ confirms many at
    // once): taken without setting up the wait and its timer.
    let outcome = match futures::poll!(confirm.as_mut()) {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => tokio::select! {
            outcome = confirm => outcome,
            error = link.epoch_ended(epoch) => {
                return Err(in_doubt(format!("the connection ended before RabbitMQ confirmed the send: {error}")))
            }
            () = tokio::time::sleep(link.request_timeout) => {
                return Err(in_doubt("RabbitMQ did not confirm the send in time".into()))
            }
        },
    };
    match outcome {
        Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => Ok(()),
        Ok(Confirmation::Ack(Some(_returned))) => {
            // The queue was deleted since this connection declared it: the next send
            // declares it again (a send makes its queue, as in JMS).
            if let Some(queue) = message
                .destination()
                .filter(|d| d.kind() == DestinationKind::Queue)
            {
                link.forget_queue(queue.name());
            }
            Err(Error::invalid_destination(
                message
                    .destination()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                "RabbitMQ could not route the message (the queue does not exist; \
                 it was deleted, and the next send makes it again)",
            ))
        }
        Ok(Confirmation::Nack(_)) => Err(Error::ResourceLimit(
            "RabbitMQ refused the message (nack)".into(),
        )),
        Err(e) => Err(in_doubt(format!(
            "the channel failed before the confirm: {e}"
        ))),
    }
}

#[async_trait]
impl Producer for AmqpProducer {
    fn destination(&self) -> Option<&Destination> {
        self.destination.as_ref()
    }

    fn options(&self) -> SendOptions {
        *self.options.lock()
    }

    fn set_options(&self, options: SendOptions) -> Result<()> {
        self.check()?;
        options.validate()?;
        *self.options.lock() = options;
        Ok(())
    }

    async fn send_with(
        &self,
        destination: Option<&Destination>,
        message: &mut Message,
        options: &SendOptions,
    ) -> Result<()> {
        let confirm = self.publish(destination, message, options).await?;
        match confirm {
            None => Ok(()),
            Some((confirm, epoch)) => confirmed(&self.session.link, message, confirm, epoch).await,
        }
    }

    async fn send_async_with(
        &self,
        destination: Option<&Destination>,
        message: Message,
        options: &SendOptions,
    ) -> Result<SendReceipt> {
        let mut message = message;
        let Some((confirm, epoch)) = self.publish(destination, &mut message, options).await? else {
            return Ok(SendReceipt::ready(Ok(message)));
        };
        let (completion, receipt) = SendReceipt::pending();
        let waiting = Waiting::Send(Box::new((confirm, epoch, message, completion)));
        // A full pipeline waits here: backpressure at MAX_OUTSTANDING unconfirmed sends.
        if self.pipeline().send(waiting).await.is_err() {
            return Err(Error::illegal_state("the producer's confirm task ended"));
        }
        Ok(receipt)
    }

    async fn flush(&self) -> Result<()> {
        self.wait_pipeline().await;
        Ok(())
    }

    fn max_outstanding(&self) -> usize {
        MAX_OUTSTANDING
    }

    /// Closes the producer once every pipelined send has its outcome.
    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.wait_pipeline().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counter part of `id` (after the prefix's `-`).
    fn counter(id: &str) -> u64 {
        id.rsplit_once('-').unwrap().1.parse().unwrap()
    }

    #[test]
    fn message_ids_are_unique_per_producer_and_across_producers() {
        let (a, b) = (message_ids(), message_ids());
        let first: Vec<Arc<str>> = (0..1_000).map(|_| a.next()).collect();
        for id in &first {
            assert!(id.starts_with(a.prefix()), "{id}");
            assert!(id.starts_with("ID:"), "{id}");
            // `ID:`, 32 hex digits of the uuid, `-`, the counter.
            let uuid = &id[3..35];
            assert!(uuid.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
            assert_eq!(&id[35..36], "-");
        }
        let counters: Vec<u64> = first.iter().map(|id| counter(id)).collect();
        assert_eq!(counters, (0..1_000).collect::<Vec<u64>>());
        assert_ne!(a.prefix(), b.prefix());
        let second: Vec<Arc<str>> = (0..1_000).map(|_| b.next()).collect();
        let mut all: Vec<&str> = first.iter().chain(&second).map(|id| &**id).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 2_000);
    }

    /// The longest message id: `ID:`, the uuid's 32 hex digits, `-` and `u64::MAX`.
    const MAX_ID_LEN: usize = 3 + 32 + 1 + 20;

    #[test]
    fn the_longest_message_id_fits_the_amqp_property() {
        let ids = message_ids();
        let last = format!("{}{}", ids.prefix(), u64::MAX);
        assert_eq!(last.len(), MAX_ID_LEN);
        assert_eq!(counter(&last), u64::MAX);
        assert_eq!(codec::short("a message id", &last).unwrap().as_str(), last);
    }
}
