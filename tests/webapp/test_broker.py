"""The embedded broker keeps put order (webapp/core/broker.py), where kombu's own filesystem transport
does not once its millisecond counter gains a digit."""

import itertools
from unittest import mock

import pytest
from django.conf import settings
from kombu import Connection, Consumer, Queue

from webapp.core import broker

TRANSPORT = "webapp.core.broker:Transport"


def folders(tmp_path) -> dict:
    for name in ("queue", "control"):
        (tmp_path / name).mkdir(exist_ok=True)
    return {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "control_folder": str(tmp_path / "control"),
    }


def put_then_get(connection: Connection, count: int) -> list[int]:
    channel = connection.default_channel
    for number in range(count):
        channel._put("cpu", {"n": number})
    return [channel._get("cpu")["n"] for _ in range(count)]


@pytest.fixture
def fresh_stamps(monkeypatch):
    """Forget the stamps this process already issued, so a fake clock starting low is obeyed."""
    monkeypatch.setattr(broker.Channel, "_last_stamp", 0)


@pytest.mark.parametrize("boundary", [10**6 * 10**6, 10**18, 10**19])  # 10⁶ ms in ns; 18 → 19 and 19 → 20 digits
def test_messages_put_across_a_digit_boundary_come_out_in_put_order(tmp_path, monkeypatch, fresh_stamps, boundary):
    ticks = itertools.count(boundary - 3)
    monkeypatch.setattr(broker.Channel, "clock", lambda: next(ticks))

    with Connection("filesystem://", transport=TRANSPORT, transport_options=folders(tmp_path)) as connection:
        assert put_then_get(connection, 6) == [0, 1, 2, 3, 4, 5]


def test_kombus_own_filesystem_transport_loses_the_order_at_that_boundary(tmp_path):
    """What the test above guards against: the same puts on the stock channel, 999.998 s → 1000.000 s
    of monotonic() time, come out with the newest first."""
    seconds = iter([999.997, 999.998, 999.999, 1000.000, 1000.001, 1000.002])
    with mock.patch("kombu.transport.filesystem.monotonic", lambda: next(seconds)):
        with Connection("filesystem://", transport_options=folders(tmp_path)) as connection:
            assert put_then_get(connection, 6) == [3, 4, 5, 0, 1, 2]


def test_a_clock_that_steps_back_or_repeats_does_not_reorder_puts_of_one_process(tmp_path, monkeypatch, fresh_stamps):
    readings = iter([5_000, 5_000, 4_000, 5_000, 7_000])
    monkeypatch.setattr(broker.Channel, "clock", lambda: next(readings))

    with Connection("filesystem://", transport=TRANSPORT, transport_options=folders(tmp_path)) as connection:
        assert put_then_get(connection, 5) == [0, 1, 2, 3, 4]


def test_message_names_are_fixed_width_and_keep_the_shape_kombu_parses(tmp_path):
    with Connection("filesystem://", transport=TRANSPORT, transport_options=folders(tmp_path)) as connection:
        connection.default_channel._put("gpu-eval", {"n": 1})
    [name] = [path.name for path in (tmp_path / "queue").iterdir()]
    stamp, _, rest = name.partition("_")
    assert len(stamp) == broker.STAMP_DIGITS and stamp.isdigit()
    assert name.partition(".")[2] == "gpu-eval.msg"  # what kombu's _get matches a queue by
    assert not list((tmp_path / "queue").glob("*.partial"))


def test_500_tasks_sent_through_celery_come_out_in_the_order_they_were_sent(tmp_path, monkeypatch, fresh_stamps):
    """Through Celery's send_task and a kombu consumer, with the clock gaining a digit halfway."""
    from workers.celery_app import app

    ticks = itertools.count(10**18 - 250 * 1000, 1000)
    monkeypatch.setattr(broker.Channel, "clock", lambda: next(ticks))
    options = folders(tmp_path)
    queue = Queue("order-check", routing_key="order-check")
    received = []

    def on_message(body, message):
        args, _kwargs, _embed = body  # Celery's task message protocol 2
        received.append(args[0])
        message.ack()

    with app.connection_for_write(url="filesystem://localhost//", transport=TRANSPORT,
                                  transport_options=options) as connection:
        assert type(connection.transport) is broker.Transport
        with Consumer(connection, [queue], callbacks=[on_message], accept=["json"]):  # declares and binds the queue
            for number in range(500):
                app.send_task("workers.tasks.diagnostic_sleep", args=[number], queue=queue, connection=connection)
            while len(received) < 500:
                connection.drain_events(timeout=10)
    assert received == list(range(500))


@pytest.mark.skipif(not settings.CELERY_BROKER_URL.startswith("filesystem://"), reason="the embedded broker only")
def test_the_embedded_default_uses_the_order_keeping_transport():
    from workers.celery_app import app

    assert settings.CELERY_BROKER_TRANSPORT == TRANSPORT
    with app.connection_for_write() as connection:
        assert type(connection.transport) is broker.Transport
        assert connection.transport.Channel is broker.Channel
