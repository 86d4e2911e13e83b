"""A real OTLP/HTTP receiver on loopback for the export tests: it keeps each POST and answers as told (200 by
default; a queue of statuses, or a gate that holds answers back), and decodes bodies with opentelemetry-proto."""

from __future__ import annotations

import http.server
import threading


def has_proto() -> bool:
    try:
        import opentelemetry.proto.collector.trace.v1.trace_service_pb2  # noqa: F401
    except ImportError:
        return False
    return True


class Receiver:
    """``url``, the ``bodies`` received (path, content type, bytes), ``statuses`` to answer next, and ``gate``:
    while cleared, answers wait (a collector that hangs)."""

    def __init__(self):
        self.bodies: list[tuple[str, str, bytes]] = []
        self.statuses: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server spelling
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recv.gate.wait(30)
                status = recv.statuses.pop(0) if recv.statuses else 200
                if status == 200:
                    recv.bodies.append((self.path, self.headers["Content-Type"], body))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def spans(bodies) -> list:
    """(service name, span) of every span in ``bodies``."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    out = []
    for _, _, body in bodies:
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            service = {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"]
            for ss in rs.scope_spans:
                out.extend((service, s) for s in ss.spans)
    return out
