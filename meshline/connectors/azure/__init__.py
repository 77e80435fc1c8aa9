"""Azure connectors: Event Hubs and Activity Logs (through Event Hubs' Kafka endpoint), Data Lake."""
