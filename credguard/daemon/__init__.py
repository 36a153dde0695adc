"""The background service: watcher, work queue, control server, runtime."""
