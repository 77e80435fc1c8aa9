"""The live view of a running integration: its Prometheus endpoint and its page."""
