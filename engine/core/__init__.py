"""Shared by every process: configuration, the event envelope, strict JSON in and out, the bus, the scheduler, metrics, what Redis shares between processes."""
