//! [`RedisProducer`]: stamps a message and sends it with one script call (or buffers it in a
//! transaction).
//!
//! Pipelined sends (`send_async`) go to one writer task per producer, started on first use.
//! It takes whatever sends are queued (at most [`MAX_BATCH`], or [`MAX_BATCH_BYTES`] of
//! encoded messages, all to one destination) and runs them as one `commit` script call, all
//! or none, then completes their receipts in send order; the next batch goes once that reply
//! is in. So a producer pipelining many sends pays one round trip and one script run per
//! batch, not per message, and its messages reach Redis in send order. At most
//! [`MAX_OUTSTANDING`] sends wait; a full window makes `send_async` wait for room. A batch
//! whose connection fails mid-call is in doubt, receipt by receipt.

use std::sync::Arc;

use async_trait::async_trait;
use courier_api::spi::{resolve_destination, stamp_client, stamp_times};
use courier_api::{
    Destination, Error, InDoubtOperation, Message, Producer, Result, SendCompletion, SendOptions,
    SendReceipt, SessionMode,
};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::keys;
use crate::session::{Outgoing, SessionShared};

/// How many pipelined sends a producer keeps in flight before `send_async` waits.
pub const MAX_OUTSTANDING: usize = 4096;

/// Most sends one script call of the writer carries.
pub const MAX_BATCH: usize = 256;

/// A batch stops growing once its encoded messages reach this many bytes.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// What a producer's writer task is asked to do, in order.
pub(crate) enum Queued {
    /// A send: what goes to Redis, the stamped message and its receipt.
    Send(Box<(Outgoing, Message, SendCompletion)>),
    /// Answered once every send queued before it has its outcome.
    Flush(oneshot::Sender<()>),
}

/// A producer on a Redis session.
pub struct RedisProducer {
    session: Arc<SessionShared>,
    destination: Option<Destination>,
    options: Mutex<SendOptions>,
    closed: std::sync::atomic::AtomicBool,
    /// The writer task's queue of pipelined sends, started on first use.
    pipeline: Mutex<Option<mpsc::Sender<Queued>>>,
}

impl RedisProducer {
    pub(crate) fn new(session: Arc<SessionShared>, destination: Option<Destination>) -> Self {
        RedisProducer {
            session,
            destination,
            options: Mutex::new(SendOptions::default()),
            closed: std::sync::atomic::AtomicBool::new(false),
            pipeline: Mutex::new(None),
        }
    }

    /// The writer's queue, starting the writer on first use (the session knows it too, so
    /// its close waits for the sends).
    fn pipeline(&self) -> mpsc::Sender<Queued> {
        let mut pipeline = self.pipeline.lock();
        if let Some(sender) = pipeline.as_ref() {
            return sender.clone();
        }
        let (sender, queued) = mpsc::channel::<Queued>(MAX_OUTSTANDING);
        tokio::spawn(write(self.session.clone(), queued));
        self.session.add_pipeline(sender.downgrade());
        *pipeline = Some(sender.clone());
        sender
    }

    /// Waits until every pipelined send queued so far has its outcome.
    async fn wait_pipeline(&self) {
        let sender = self.pipeline.lock().clone();
        if let Some(sender) = sender {
            flush_pipeline(&sender).await;
        }
    }

    /// Stamps `message` for `destination` and encodes what goes to Redis.
    async fn prepare(
        &self,
        destination: Option<&Destination>,
        message: &mut Message,
        options: &SendOptions,
    ) -> Result<Outgoing> {
        let destination = resolve_destination(self.destination.as_ref(), destination)?.clone();
        let conn = &self.session.conn;
        if destination.is_temporary() && !conn.owns_temporary(&destination) {
            // A temporary destination of another connection: it lives while its connection does.
            let root = keys::root(&destination);
            let mut cmd = conn.cmd.clone();
            let owner: Option<String> = redis::cmd("GET")
                .arg(format!("{root}:owner"))
                .query_async(&mut cmd)
                .await
                .map_err(|e| conn.fail(e, None))?;
            let alive = match owner {
                Some(owner) => conn.owner_alive(&owner).await?,
                None => false,
            };
            if !alive {
                return Err(Error::invalid_destination(
                    destination.to_string(),
                    "the temporary destination was deleted (or its connection ended)",
                ));
            }
        }
        let id: Arc<str> = Arc::from(format!("ID:{}", uuid::Uuid::new_v4()).as_str());
        stamp_client(message, &destination, options, Some(id))?;
        let now = conn.now();
        stamp_times(
            message,
            options.time_to_live,
            options.delivery_delay,
            options.disable_timestamp,
            now,
        );
        let encoded = message.encode();
        if encoded.len() > crate::MAX_MESSAGE_BYTES {
            return Err(Error::ResourceLimit(format!(
                "the message is {} bytes encoded; at most {} are accepted",
                encoded.len(),
                crate::MAX_MESSAGE_BYTES
            )));
        }
        let fields = crate::fields::selector_fields(message);
        let h = message.header();
        Ok(Outgoing {
            fields,
            root: keys::root(&destination),
            topic: destination.is_topic(),
            encoded,
            priority: h.priority,
            expiration: h.expiration,
            due: if options.delivery_delay.is_zero() {
                0
            } else {
                h.delivery_time
            },
        })
    }
}

/// Asks a writer to answer once every send queued before has its outcome, and waits.
pub(crate) async fn flush_pipeline(sender: &mpsc::Sender<Queued>) {
    let (done, flushed) = oneshot::channel();
    if sender.send(Queued::Flush(done)).await.is_ok() {
        let _ = flushed.await;
    }
}

/// The writer task: runs queued sends in batches, in order, until its producer is gone.
async fn write(session: Arc<SessionShared>, mut queued: mpsc::Receiver<Queued>) {
    let mut taken = Vec::with_capacity(MAX_BATCH);
    let mut batch: Vec<(Outgoing, Message, SendCompletion)> = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut taken, MAX_BATCH).await > 0 {
        let mut bytes = 0;
        for next in taken.drain(..) {
            match next {
                Queued::Send(send) => {
                    let full = bytes >= MAX_BATCH_BYTES
                        || batch.first().is_some_and(|(o, _, _)| o.root != send.0.root);
                    if full {
                        run_batch(&session, &mut batch).await;
                        bytes = 0;
                    }
                    bytes += send.0.encoded.len();
                    batch.push(*send);
                }
                Queued::Flush(done) => {
                    run_batch(&session, &mut batch).await;
                    bytes = 0;
                    let _ = done.send(());
                }
            }
        }
        run_batch(&session, &mut batch).await;
    }
}

/// Sends a batch in one script call and completes its receipts in order.
async fn run_batch(session: &SessionShared, batch: &mut Vec<(Outgoing, Message, SendCompletion)>) {
    if batch.is_empty() {
        return;
    }
    let sends: Vec<Outgoing> = batch.iter().map(|(o, _, _)| o.clone()).collect();
    let outcome = session
        .commit_ops(&sends, &[], InDoubtOperation::Send)
        .await;
    for (_, message, completion) in batch.drain(..) {
        completion.complete(outcome.clone().map(|_| message));
    }
}

impl RedisProducer {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::illegal_state("the producer is closed"));
        }
        Ok(())
    }
}

#[async_trait]
impl Producer for RedisProducer {
    fn destination(&self) -> Option<&Destination> {
        self.destination.as_ref()
    }

    fn options(&self) -> SendOptions {
        *self.options.lock()
    }

    fn set_options(&self, options: SendOptions) -> Result<()> {
        self.check_open()?;
        self.session.check()?;
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
        self.session.check()?;
        self.check_open()?;
        let outgoing = self.prepare(destination, message, options).await?;
        if self.session.mode == SessionMode::Transacted {
            self.session.sends.lock().push(outgoing);
            return Ok(());
        }
        // A plain send keeps its place after the pipelined ones before it.
        self.wait_pipeline().await;
        self.session
            .commit_ops(&[outgoing], &[], InDoubtOperation::Send)
            .await?;
        Ok(())
    }

    async fn send_async_with(
        &self,
        destination: Option<&Destination>,
        message: Message,
        options: &SendOptions,
    ) -> Result<courier_api::SendReceipt> {
        self.check_open()?;
        self.session.check()?;
        let mut message = message;
        if self.session.mode == SessionMode::Transacted {
            let outcome = self.send_with(destination, &mut message, options).await;
            return Ok(SendReceipt::ready(outcome.map(|()| message)));
        }
        let outgoing = match self.prepare(destination, &mut message, options).await {
            Ok(outgoing) => outgoing,
            Err(e) => return Ok(SendReceipt::ready(Err(e))),
        };
        let (completion, receipt) = SendReceipt::pending();
        let queued = Queued::Send(Box::new((outgoing, message, completion)));
        // A full window waits here: at most MAX_OUTSTANDING sends are queued.
        if self.pipeline().send(queued).await.is_err() {
            return Err(Error::illegal_state("the producer's writer task ended"));
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
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.wait_pipeline().await;
        Ok(())
    }
}
