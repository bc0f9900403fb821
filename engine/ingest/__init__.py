"""Events in: the bounded queue and its one batch writer, and the sources that feed it."""
