"""The I/O shell of triggergate: sources, the bus, trigger executors, the HTTP server and the CLI."""
