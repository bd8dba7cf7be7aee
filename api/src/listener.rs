//! The listener form of consuming ([`crate::Consumer::listen`]), the Rust form of a JMS
//! `MessageListener`: a message is acknowledged only after its handler succeeds.
//!
//! A backend supports it with one hook, [`crate::Consumer::receive_delivery`]: the next
//! message as a [`Delivery`], held unacknowledged — in every session mode — until the
//! listener settles it.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::fmt;
use std::future::Future;

use crate::{Consumer, Message, Result};

/// The handler [`crate::Consumer::listen`] calls for each message: an async closure boxed for
/// object safety. Build one with [`handler`].
pub type MessageHandler<'a> = Box<dyn FnMut(Message) -> BoxFuture<'a, Result<()>> + Send + 'a>;

/// Boxes an async closure as a [`MessageHandler`].
///
/// ```
/// use courier_api::listener::handler;
/// let mut seen = 0;
/// let h = handler(move |m| {
///     seen += 1;
///     async move {
///         println!("{:?}", m.body_text());
///         Ok(())
///     }
/// });
/// # drop(h);
/// ```
pub fn handler<'a, F, Fut>(mut f: F) -> MessageHandler<'a>
where
    F: FnMut(Message) -> Fut + Send + 'a,
    Fut: Future<Output = Result<()>> + Send + 'a,
{
    Box::new(move |message| f(message).boxed())
}

/// How a backend settles one held message. Implemented by backends, used by [`Delivery`].
pub trait Settle: Send {
    /// The handler succeeded: acknowledge the message as the session's mode says (see
    /// [`crate::Consumer::listen`]).
    fn acknowledge(self: Box<Self>) -> BoxFuture<'static, Result<()>>;

    /// The handler failed, panicked or was cancelled: give the message back as the session's
    /// mode says, to be redelivered with `redelivered` set. Called from `Drop`, so it must
    /// not block (a network backend queues its recover or reject frame).
    fn redeliver(self: Box<Self>);
}

/// A received message not yet acknowledged: acknowledged by [`Delivery::acknowledge`], given
/// back for redelivery when dropped unacknowledged (so a handler's panic or a cancelled
/// listener loses nothing).
pub struct Delivery {
    message: Message,
    settle: Option<Box<dyn Settle>>,
}

impl Delivery {
    /// A delivery of `message`, settled by `settle` (a backend's constructor).
    pub fn new(message: Message, settle: Box<dyn Settle>) -> Self {
        Delivery {
            message,
            settle: Some(settle),
        }
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Acknowledges the message (after its handler succeeded).
    pub async fn acknowledge(mut self) -> Result<()> {
        match self.settle.take() {
            Some(settle) => settle.acknowledge().await,
            None => Ok(()),
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(settle) = self.settle.take() {
            settle.redeliver();
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("settled", &self.settle.is_none())
            .finish()
    }
}

/// The listener loop behind [`crate::Consumer::listen`]: each message goes to `handler`, is
/// acknowledged after it returns `Ok`, and given back for redelivery when it returns `Err`
/// or panics (the `Delivery` drops unacknowledged while unwinding). Ends with `Ok` when the
/// consumer closes; a receive or acknowledge error ends it with that error.
pub async fn run<C: Consumer + ?Sized>(
    consumer: &C,
    mut handler: MessageHandler<'_>,
) -> Result<()> {
    while let Some(delivery) = consumer.receive_delivery().await? {
        let outcome = handler(delivery.message().clone()).await;
        match outcome {
            Ok(()) => delivery.acknowledge().await?,
            // Dropping it unacknowledged gives the message back.
            Err(_) => drop(delivery),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records how a delivery was settled.
    struct Recorder(Arc<Mutex<Vec<&'static str>>>);

    impl Settle for Recorder {
        fn acknowledge(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
            self.0.lock().unwrap().push("acknowledged");
            futures::future::ready(Ok(())).boxed()
        }

        fn redeliver(self: Box<Self>) {
            self.0.lock().unwrap().push("redelivered");
        }
    }

    fn delivery(log: &Arc<Mutex<Vec<&'static str>>>) -> Delivery {
        Delivery::new(Message::text("m"), Box::new(Recorder(log.clone())))
    }

    #[tokio::test]
    async fn an_acknowledged_delivery_is_not_redelivered() {
        let log = Arc::default();
        delivery(&log).acknowledge().await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["acknowledged"]);
    }

    #[test]
    fn a_dropped_delivery_is_redelivered_once() {
        let log = Arc::default();
        drop(delivery(&log));
        assert_eq!(*log.lock().unwrap(), ["redelivered"]);
    }

    #[test]
    fn a_panicking_handler_gives_its_delivery_back() {
        let log = Arc::default();
        let d = delivery(&log);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = d;
            panic!("handler crashed");
        }));
        assert!(unwound.is_err());
        assert_eq!(*log.lock().unwrap(), ["redelivered"]);
    }
}
