"""Object-store connectors against real emulators: fake-gcs-server, azurite."""
