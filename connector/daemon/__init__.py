"""The daemon: outbound, inbound and status pipelines around the store, hub and local side."""
