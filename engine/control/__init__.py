"""The control page: event templates, scenarios, the stress test, and their API."""
