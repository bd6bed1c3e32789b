"""MLLP listener (HL7 v2.5.1 Appendix C, Minimal Lower Layer Protocol): an asyncio TCP server.

Each frame is ``<SB=0x0B> message <EB=0x1C><CR=0x0D>``. Reading is asynchronous, so a slow or
half-open client only holds its own connection (closed after ``RECON_MLLP_IDLE_SECONDS`` of
silence); storing and processing run in a small thread pool (the ORM is synchronous). The ACK is
written only after ``services.ingest`` has committed: AA processed (or duplicate/unsupported,
stored), AE processing failed or the database is away (kept for retry / resend), AR unreadable or
oversize input (stored, refused). A frame larger than ``RECON_MAX_PAYLOAD_BYTES`` is never held
whole: its first bytes are kept and stored as rejected, the rest is read and dropped. At start and
every minute the listener sweeps messages left ``received`` (pharmacy/inbound.py).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import InterfaceError, OperationalError, close_old_connections, connections

from pharmacy.interop.hl7v2 import build_ack

from .conf import conf

SB, EB, CR = b"\x0b", b"\x1c", b"\r"
log = logging.getLogger("reconciliation.mllp")
SWEEP_EVERY_SECONDS = 60


def max_frame_bytes() -> int:
    """A frame larger than this is stored cut at this size and refused (AR); the bytes beyond it
    are read and dropped, never held in memory."""
    return conf("RECON_MAX_PAYLOAD_BYTES")


def handle_frame(frame: bytes, peer: str = "", process: bool = True, size: int | None = None) -> bytes:
    """Store, process and acknowledge one framed message (runs in a worker thread).

    ``process=False`` answers with an HL7 commit acknowledgment once the raw message is stored
    (enhanced mode, v2.5.1 §2.9.3: CA stored / CR refused); processing is then left to a retry.
    ``size`` is the frame's real size when only its first bytes were kept (oversize)."""
    from . import services

    close_old_connections()
    try:
        if process:
            result = services.ingest(channel="mllp", payload=frame, content_type="application/hl7-v2",
                                     source_name=peer, size=size)
            ack = build_ack(frame, result.ack_code, result.error)
        else:
            message = services.inbound_receive(channel="mllp", payload=frame, content_type="application/hl7-v2",
                                               source_name=peer, size=size)
            ack = build_ack(frame, "CR" if message.status == "rejected" else "CA", message.error)
    except (OperationalError, InterfaceError) as exc:  # database away: AE, the sender resends
        log.warning("MLLP message not stored: database unavailable (%s)", exc)
        ack = build_ack(frame, "AE", "database unavailable; the message was not stored, resend later")
    except Exception as exc:  # noqa: BLE001 — the sender always gets an answer
        log.exception("MLLP message could not be stored")
        ack = build_ack(frame, "AE", f"internal error: {type(exc).__name__}")
    return ack.encode("utf-8")


def sweep_once() -> int:
    """Process this channel's messages left received (a listener died between store and process)
    and failed ones whose backoff is over; never raises (the database may be away)."""
    from .services import PIPELINE

    close_old_connections()
    try:
        return PIPELINE.sweep()
    except Exception as exc:  # noqa: BLE001 — the next sweep tries again
        log.warning("MLLP listener sweep failed: %s", exc)
        return 0
    finally:
        close_old_connections()


class MLLPServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 2575, *, workers: int | None = None,
                 idle_timeout: float | None = None, process: bool = True, sweep_every: float | None = None):
        self.host, self.requested_port = host, port
        self.process = process
        self.sweep_every = SWEEP_EVERY_SECONDS if sweep_every is None else sweep_every
        self._sweeper: asyncio.Task | None = None
        self.workers = workers or conf("RECON_MLLP_WORKERS")
        if connections["default"].vendor == "sqlite":
            self.workers = 1  # SQLite has one writer: parallel processing would only hit "table is locked"
        self.idle_timeout = idle_timeout if idle_timeout is not None else conf("RECON_MLLP_IDLE_SECONDS")
        self.executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mllp")
        self.server: asyncio.base_events.Server | None = None
        self.connections = 0
        self._tasks: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1] if self.server else self.requested_port

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, self.host, self.requested_port)
        if self.sweep_every > 0:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        """At start (a predecessor may have died mid-message) and every minute after."""
        loop = asyncio.get_running_loop()
        while True:
            await loop.run_in_executor(self.executor, sweep_once)
            await asyncio.sleep(self.sweep_every)

    async def serve_forever(self) -> None:
        if self.server is None:
            await self.start()
        async with self.server:
            await self.server.serve_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = "{}:{}".format(*(writer.get_extra_info("peername") or ("?", "?"))[:2])
        loop = asyncio.get_running_loop()
        self.connections += 1
        task = asyncio.current_task()
        self._tasks.add(task)
        buffer = bytearray()
        limit = max_frame_bytes()
        oversize: bytes | None = None  # the kept first bytes of a frame past the limit
        dropped = 0  # bytes of that frame read and dropped
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), timeout=self.idle_timeout)
                except (TimeoutError, ConnectionError):
                    break
                if not chunk:
                    break
                if oversize is not None:  # inside an oversize frame: drop bytes until its end
                    end = chunk.find(EB)
                    if end < 0:
                        dropped += len(chunk)
                        continue
                    dropped += end
                    chunk = chunk[end + 1:]
                    ack = await loop.run_in_executor(self.executor, handle_frame, oversize, peer, self.process,
                                                     len(oversize) + dropped)
                    writer.write(SB + ack + EB + CR)
                    await writer.drain()
                    oversize, dropped = None, 0
                buffer += chunk
                while True:
                    start = buffer.find(SB)
                    if start < 0:
                        buffer.clear()  # bytes outside a frame are not a message
                        break
                    end = buffer.find(EB, start + 1)
                    if end < 0:
                        del buffer[:start]
                        if len(buffer) - 1 > limit:  # too large: keep its first bytes, drop the rest
                            oversize, dropped = bytes(buffer[1:limit + 1]), len(buffer) - 1 - limit
                            buffer.clear()
                        break
                    frame = bytes(buffer[start + 1:end])
                    del buffer[:end + 1]
                    if buffer[:1] == CR:
                        del buffer[:1]
                    ack = await loop.run_in_executor(self.executor, handle_frame, frame, peer, self.process)
                    writer.write(SB + ack + EB + CR)
                    await writer.drain()
            if oversize is not None:  # the sender gave up mid-frame: still stored (rejected)
                await loop.run_in_executor(self.executor, handle_frame, oversize, peer, self.process,
                                           len(oversize) + dropped + 1)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            self.connections -= 1
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self.server is not None:
            self.server.close()
        for task in list(self._tasks):  # open connections end with the listener
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()
        await asyncio.get_running_loop().run_in_executor(None, self.shutdown_workers)

    def shutdown_workers(self) -> None:
        # Each worker thread closes its own database connection: one job per thread, held at a
        # barrier so no thread takes two.
        barrier = threading.Barrier(self.workers)

        def close_own():
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
            connections.close_all()

        for future in [self.executor.submit(close_own) for _ in range(self.workers)]:
            future.result()
        self.executor.shutdown(wait=True)


class BackgroundMLLPServer:
    """The listener on its own event loop in a thread (tests, benchmarks)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **kwargs):
        self.server = MLLPServer(host, port, **kwargs)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="mllp-loop")

    def __enter__(self) -> BackgroundMLLPServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    @property
    def port(self) -> int:
        return self.server.port

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.server.aclose(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
