//! Broker settings.

/// Settings of a [`crate::Broker`].
///
/// ```
/// use courier_broker::BrokerConfig;
/// let config = BrokerConfig { max_delivery_attempts: Some(3), ..BrokerConfig::default() };
/// assert_eq!(config.dead_letter_queue, "DLQ");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// After this many failed delivery attempts a message goes to the dead-letter queue;
    /// `None` redelivers for ever.
    pub max_delivery_attempts: Option<u32>,
    /// Name of the queue that takes dead letters.
    pub dead_letter_queue: String,
    /// Largest accepted message (properties and body), in bytes; larger sends fail with
    /// [`courier_api::Error::ResourceLimit`].
    pub max_message_size: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_delivery_attempts: Some(10),
            dead_letter_queue: "DLQ".to_owned(),
            max_message_size: 16 * 1024 * 1024,
        }
    }
}
