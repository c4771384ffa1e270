"""The outbox at send time: decide, compose, deliver and record each claimed message."""
