"""Status events: the bus that carries them, and (later) the watcher and webhook ingestion."""
