"""The event bus: subjects (`subjects`), the interface (`interface`), NATS (`nats_bus`) and memory
(`memory_bus`) implementations. Importing this package imports no NATS client."""

from kingpost.bus.interface import (
    Bus,
    Entry,
    Job,
    KeyExists,
    KeyValue,
    Publisher,
    RevisionMismatch,
    Subscription,
    WorkQueue,
)

__all__ = ["Bus", "Entry", "Job", "KeyExists", "KeyValue", "Publisher", "RevisionMismatch", "Subscription",
           "WorkQueue"]
