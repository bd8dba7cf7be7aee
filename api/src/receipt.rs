//! Send receipts: the outcome of a pipelined send ([`crate::Producer::send_async`]), the Rust
//! form of JMS 2.0's `CompletionListener`.

use futures::channel::oneshot;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::{Error, InDoubtOperation, Message, Result};

/// A future resolving to the outcome of one pipelined send: the message as sent (with its
/// stamped headers, e.g. the message id) once the broker has it as its delivery mode promises
/// (persistent: durably; non-persistent: the broker holds it), or the error that refused it.
///
/// The send happens whether the receipt is awaited or not: dropping a receipt neither cancels
/// nor loses its send, it only forgets the outcome. A producer's receipts complete in the
/// order of its sends.
#[must_use = "a receipt reports whether its send succeeded; drop it only if the outcome does not matter"]
pub struct SendReceipt {
    outcome: BoxFuture<'static, Result<Message>>,
}

impl SendReceipt {
    /// A receipt whose send is already complete with `outcome` (a backend that completes sends
    /// before `send_async` returns).
    pub fn ready(outcome: Result<Message>) -> Self {
        SendReceipt {
            outcome: futures::future::ready(outcome).boxed(),
        }
    }

    /// A receipt and the completion a backend fills in when the broker confirms the send. If
    /// the completion is dropped unfilled (the backend lost the send's state, e.g. with its
    /// connection) the receipt resolves to an [`Error::InDoubt`] send: the broker may or may
    /// not have the message.
    pub fn pending() -> (SendCompletion, SendReceipt) {
        let (sender, receiver) = oneshot::channel();
        let outcome = receiver
            .map(|r| {
                r.unwrap_or_else(|_| {
                    Err(Error::in_doubt(
                        InDoubtOperation::Send,
                        "the send's confirmation was abandoned by the backend",
                    ))
                })
            })
            .boxed();
        (SendCompletion { sender }, SendReceipt { outcome })
    }
}

impl Future for SendReceipt {
    type Output = Result<Message>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.outcome.poll_unpin(cx)
    }
}

impl fmt::Debug for SendReceipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendReceipt").finish_non_exhaustive()
    }
}

/// The backend's half of a pending [`SendReceipt`]: completes it with the send's outcome.
#[derive(Debug)]
pub struct SendCompletion {
    sender: oneshot::Sender<Result<Message>>,
}

impl SendCompletion {
    /// Completes the receipt. A receipt already dropped by the user ignores the outcome.
    pub fn complete(self, outcome: Result<Message>) {
        let _ = self.sender.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ready_receipt_resolves_to_its_outcome() {
        let sent = SendReceipt::ready(Ok(Message::text("a"))).await.unwrap();
        assert_eq!(sent.body_text(), Some("a"));
        let refused = SendReceipt::ready(Err(Error::flow_control("full"))).await;
        assert!(matches!(refused, Err(Error::FlowControl(_))));
    }

    #[tokio::test]
    async fn a_pending_receipt_resolves_when_completed() {
        let (completion, receipt) = SendReceipt::pending();
        let waiting = tokio::spawn(receipt);
        completion.complete(Ok(Message::text("confirmed")));
        let sent = waiting.await.unwrap().unwrap();
        assert_eq!(sent.body_text(), Some("confirmed"));
    }

    #[tokio::test]
    async fn an_abandoned_completion_leaves_the_send_in_doubt() {
        let (completion, receipt) = SendReceipt::pending();
        drop(completion);
        let outcome = receipt.await;
        assert!(
            matches!(
                outcome,
                Err(Error::InDoubt {
                    operation: InDoubtOperation::Send,
                    ..
                })
            ),
            "{outcome:?}"
        );
    }

    #[test]
    fn completing_a_dropped_receipt_is_harmless() {
        let (completion, receipt) = SendReceipt::pending();
        drop(receipt);
        completion.complete(Ok(Message::text("nobody listens")));
    }
}
