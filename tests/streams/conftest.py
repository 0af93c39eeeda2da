from tests.streams.support import push_event_types, stream_bus_of_this_run  # noqa: F401
