from tests.streams.support import stream_bus_of_this_run  # noqa: F401
