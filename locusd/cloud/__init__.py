"""The daemon's side of the cloud: where its secret lives (:mod:`.credentials`), the REST
client (:mod:`.client`), and the durable outbox every cloud write goes through
(:mod:`.outbox`, with the writes themselves described in :mod:`.writes`)."""

from locusd.cloud.client import CloudClient, outbox_sender
from locusd.cloud.credentials import CredentialError, Credentials, CredentialStore
from locusd.cloud.errors import AuthError, CloudError, CloudUnavailable, Conflict
from locusd.cloud.outbox import Backoff, Outbox, OutboxEntry

__all__ = [
    "AuthError",
    "Backoff",
    "CloudClient",
    "CloudError",
    "CloudUnavailable",
    "Conflict",
    "CredentialError",
    "CredentialStore",
    "Credentials",
    "Outbox",
    "OutboxEntry",
    "outbox_sender",
]
