"""The artifact store a cluster shares: a JetStream object store bucket, at one seam.

Builders and nodes on several machines read and write one bucket (`kingpost-artifacts` unless
configured), named by what each object holds:

    sha256:<hex>          an artifact (the gzipped tar), named by the sha256 of its bytes
    builds/<build_id>     a build record (the builder's Build message as JSON)
    refs/<key>            a name → digest pointer

An object becomes visible when its meta message is published, after its last chunk, so a reader
sees a whole object or none; a second put under one name replaces the first atomically. Objects
are streamed in chunks both ways, never held whole in memory. NATS's errors become NotFound and
Unavailable here and nowhere else.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import ObjectMeta, ObjectMetaOptions, ObjectStoreConfig
from nats.js.errors import BucketNotFoundError, ObjectNotFoundError
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, ObjectStore

from kingpost.errors import KingpostError, NotFound, Unavailable
from kingpost.bus.connection import ConnectionLog, shown_url

DEFAULT_BUCKET = "kingpost-artifacts"
# Bucket names NATS accepts; the settings validate against this too.
BUCKET_PATTERN = r"^[A-Za-z0-9_-]+$"
# Under NATS's default 1 MiB max_payload; fewer, larger chunks mean fewer acks per upload.
CHUNK_BYTES = 512 * 1024
# A reader that hears no chunk for this long gives up (a purged or half-replicated object).
CHUNK_WAIT_SECONDS = 30.0


def nats_digest(digest: str) -> str:
    """`sha256:<hex>` → how the object store writes the same sha256 in an object's info."""
    _, _, hexpart = digest.partition(":")
    return "SHA-256=" + base64.urlsafe_b64encode(bytes.fromhex(hexpart)).decode()


class ArtifactBucket:
    """One object store bucket. `await ArtifactBucket.open(js, name)` on a connection you own,
    or `await ArtifactBucket.connect(url, name, client_name)` for one that `close()` closes."""

    def __init__(self, js: JetStreamContext, store: ObjectStore, name: str, nc: Client | None = None) -> None:
        self._js = js
        self._store = store
        self._owned = nc
        self.name = name

    @classmethod
    async def open(cls, js: JetStreamContext, name: str, *, _nc: Client | None = None) -> ArtifactBucket:
        """Bind to the bucket, creating it (one replica) when it does not exist yet."""
        try:
            try:
                store = await js.object_store(name)
            except BucketNotFoundError:
                store = await js.create_object_store(
                    name, ObjectStoreConfig(description="kingpost artifacts, build records and refs"))
        except KingpostError:
            raise
        except Exception as e:
            raise Unavailable(f"cannot open the JetStream object store {name!r}: {e}") from e
        return cls(js, store, name, _nc)

    @classmethod
    async def connect(cls, url: str, name: str, client_name: str, *, timeout: float = 10.0) -> ArtifactBucket:
        try:
            nc = Client()
            await nc.connect(url, name=client_name, connect_timeout=2, max_reconnect_attempts=-1,
                             reconnect_time_wait=0.5, allow_reconnect=True,
                             **ConnectionLog(url, nc).callbacks())
        except Exception as e:  # nats raises several unrelated types for "cannot connect"
            raise Unavailable(f"cannot connect to NATS at {shown_url(url)}: {e}") from e
        try:
            return await cls.open(nc.jetstream(timeout=timeout), name, _nc=nc)
        except BaseException:
            await nc.close()
            raise

    async def close(self) -> None:
        if self._owned is not None:
            await self._owned.close()
            self._owned = None

    async def holds_artifact(self, digest: str) -> bool:
        """Whether `digest` (`sha256:<hex>`) is here with bytes that hash to it (by the object's info)."""
        try:
            info = await self._store.get_info(digest)
        except ObjectNotFoundError:
            return False
        except Exception as e:
            raise self._unavailable(f"look up {digest}", e) from e
        return info.digest == nats_digest(digest)

    async def put_file(self, name: str, path: Path) -> None:
        """Upload the file at `path` as `name`, streamed in chunks."""
        try:
            with open(path, "rb") as f:
                await self._store.put(name, f, meta=_meta(name))
        except Exception as e:
            raise self._unavailable(f"store {name}", e) from e

    async def put_bytes(self, name: str, data: bytes) -> None:
        try:
            await self._store.put(name, data, meta=_meta(name))
        except Exception as e:
            raise self._unavailable(f"store {name}", e) from e

    async def get_bytes(self, name: str) -> bytes | None:
        """A small object's bytes (a record, a ref), or None when there is none by that name."""
        try:
            return b"".join([chunk async for chunk in self.chunks(name)])
        except NotFound:
            return None

    async def chunks(self, name: str) -> AsyncIterator[bytes]:
        """The object's bytes in the chunks it was stored in; NotFound when there is no such object.

        This is a worker agent's Fetcher: it checks the digest of what it receives itself.
        """
        try:
            info = await self._store.get_info(name)
        except ObjectNotFoundError:
            raise NotFound(f"{name} is not in the artifact bucket {self.name!r}") from None
        except Exception as e:
            raise self._unavailable(f"look up {name}", e) from e
        if not info.size:
            return
        subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=self.name, obj=info.nuid)
        try:
            sub = await self._js.subscribe(subject, ordered_consumer=True)
        except Exception as e:
            raise self._unavailable(f"read {name}", e) from e
        try:
            received = 0
            while received < info.size:
                try:
                    msg = await sub.next_msg(timeout=CHUNK_WAIT_SECONDS)
                except NatsTimeoutError:
                    raise Unavailable(f"reading {name} from the artifact bucket {self.name!r} stalled after "
                                      f"{received} of {info.size} bytes") from None
                except Exception as e:
                    raise self._unavailable(f"read {name}", e) from e
                received += len(msg.data)
                yield msg.data
        finally:
            try:
                await sub.unsubscribe()
            except Exception:  # the connection is gone: so is the subscription
                pass

    def _unavailable(self, doing: str, e: Exception) -> Unavailable:
        return Unavailable(f"cannot {doing} in the artifact bucket {self.name!r}: {type(e).__name__}: {e}")


def _meta(name: str) -> ObjectMeta:
    return ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=CHUNK_BYTES))
