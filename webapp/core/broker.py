"""The embedded broker: kombu's filesystem transport with message names that sort in put order.

kombu's filesystem channel names each message ``<round(monotonic() * 1000)>_<uuid>.<queue>.msg``
and delivers the first name in sorted order. Those numbers have no fixed width, so when the clock
gains a digit (10⁶ ms = 16.7 min after boot, then 2.8 h, 27.8 h, ...) every newer message sorts
before every older one, and with celery beat putting the reaper on the ``cpu`` queue every 30 s an
old message can wait indefinitely; ``monotonic()`` also restarts at boot, so messages left from
before a reboot sort wrongly against new ones.

Here a name starts with the wall clock in nanoseconds, zero-padded to 20 digits (fixed width until
the year 5138) and never repeated or going backwards within a process (a clock step back or two
puts in the same nanosecond take the previous stamp + 1 ns), then a uuid that breaks ties between
processes. Sorted order is therefore put order, across restarts and reboots. The
``<name>.<queue>.msg`` shape that kombu's ``_get`` parses is kept, and the file is written under a
name ``_get`` skips and renamed into place once complete, so a consumer never reads half a message.

Every process loads this module through Celery's ``broker_transport`` setting (webapp/settings.py),
the web processes too: it imports nothing but the standard library and kombu.
"""

import os
import threading
import time
import uuid

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

STAMP_DIGITS = 20


class Channel(filesystem.Channel):
    """A filesystem channel whose message names sort in the order they were put."""

    #: Nanoseconds since the epoch; tests replace it with a controllable clock.
    clock = staticmethod(time.time_ns)

    _stamp_lock = threading.Lock()
    _last_stamp = 0

    @classmethod
    def _next_stamp(cls) -> int:
        with cls._stamp_lock:
            stamp = max(cls.clock(), Channel._last_stamp + 1)
            Channel._last_stamp = stamp
        return stamp

    @classmethod
    def message_name(cls, queue: str) -> str:
        return f"{cls._next_stamp():0{STAMP_DIGITS}d}_{uuid.uuid4().hex}.{queue}.msg"

    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`: written under a temporary name, then renamed into place."""
        name = os.path.join(self.data_folder_out, self.message_name(queue))
        partial = f"{name}.partial"  # ends in ".msg.partial": kombu's _get never takes it
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, name)
        except OSError as exc:
            try:
                os.unlink(partial)
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc


class Transport(filesystem.Transport):
    """kombu's filesystem transport with the order-keeping channel; select it with
    ``broker_transport = "webapp.core.broker:Transport"`` and a ``filesystem://`` broker URL."""

    Channel = Channel
