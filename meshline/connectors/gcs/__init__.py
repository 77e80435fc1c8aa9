"""Google Cloud Storage: the ``google.storage`` source (notifications or polling) and target."""
