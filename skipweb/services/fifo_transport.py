"""The embedded broker's transport: kombu's ``filesystem`` transport, first in, first out.

kombu names each message file ``<int(monotonic() * 1000)>_<uuid>.<queue>.msg`` and a consumer takes the
first name in *string* order. The number is not zero-padded, so once a machine has been up 10^7 ms
(2.8 hours) a new message ("10000123_…") sorts before every older one ("9999876_…"), and a reboot restarts
the clock: an experiment submitted at 10:52 could run before one queued at 10:38. Here a message is named
by the wall clock in nanoseconds, zero-padded to 20 digits, so string order is submission order; it is
written under a temporary name and renamed into place, so a consumer never takes a half-written file.
"""

from __future__ import annotations

import os
import time
import uuid

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs) -> None:
        name = os.path.join(self.data_folder_out, f"{time.time_ns():020d}_{uuid.uuid4()}.{queue}.msg")
        part = name + ".part"  # not "<queue>.msg": no consumer matches it until the rename
        try:
            with open(part, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(part, name)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
