//! The README's example: a listener on a queue with a selector, and pipelined sends.
//! `courier/tests/readme.rs` checks the README shows this file's code.
//!
//! `cargo run --example readme`

use courier::*;

#[tokio::main]
async fn main() -> Result<()> {
    let factory = courier::connect("embedded:?client_id=shop").await?;
    let connection = factory.create_connection().await?;
    connection.start().await?;
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await?;
    let orders = Destination::queue("orders");

    // A listener: each message is acknowledged once the handler returns Ok;
    // an error or a panic gives it back for redelivery.
    let eu = session
        .create_consumer(&orders, ConsumerOptions::selector("region = 'eu'"))
        .await?;
    let (handled, mut done) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::spawn(async move {
        eu.listen(handler(move |m: Message| {
            let handled = handled.clone();
            async move {
                println!("eu order: {:?}", m.body_text());
                handled.send(()).ok();
                Ok(())
            }
        }))
        .await
    });

    // Pipelined sends: send_async returns a receipt at once, flush waits for them all.
    let producer = session.create_producer(Some(&orders)).await?;
    let mut receipts = Vec::new();
    for (i, region) in ["eu", "us", "eu"].into_iter().enumerate() {
        let mut order = Message::text(format!("order {i}"));
        order.set_property("region", region)?;
        receipts.push(producer.send_async(order).await?);
    }
    producer.flush().await?; // the broker has every order
    let first = receipts.remove(0).await?; // a receipt resolves to the sent message
    println!("sent {:?}", first.message_id());

    for _ in 0..2 {
        done.recv().await;
    }
    connection.close().await?; // closes the consumer, which ends the listener
    listener.await.expect("the listener task")
}
