"""Sends GenAI spans to an OTLP/HTTP receiver with the OpenTelemetry Python SDK, as an app would.

    send_spans.py ENDPOINT COUNT START_UNIX_NS

Span i (0-based) is a chat call: model `model-{i % 3}`, 100 + i input tokens, 10 + i output
tokens, a duration of 20 + i milliseconds, started i seconds after START, status ERROR when
i % 5 == 0. One more span is not a model call (a database query) and must be skipped. The SDK's
own TracerProvider, BatchSpanProcessor and OTLPSpanExporter (HTTP/protobuf, gzip) send them;
the program exits 1 if any export was not accepted. OTEL_TEST_TOKEN, when set, is sent as a
bearer token.
"""

import os
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode


class CheckedExporter(OTLPSpanExporter):
    """The SDK's exporter, counting the spans of exports that were not accepted."""

    failed = 0

    def export(self, spans):
        result = super().export(spans)
        if result is not SpanExportResult.SUCCESS:
            CheckedExporter.failed += len(spans)
        return result


def main():
    endpoint, count, start_ns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    token = os.environ.get("OTEL_TEST_TOKEN")
    headers = {"authorization": f"Bearer {token}"} if token else None
    exporter = CheckedExporter(
        endpoint=endpoint, compression=Compression.Gzip, headers=headers, timeout=30
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-python-test"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=64))
    tracer = provider.get_tracer("evalwatch-collect-test")
    for i in range(count):
        model = f"model-{i % 3}"
        start = start_ns + i * 1_000_000_000
        span = tracer.start_span(
            f"chat {model}",
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": 100 + i,
                "gen_ai.usage.output_tokens": 10 + i,
            },
        )
        if i % 5 == 0:
            span.set_status(Status(StatusCode.ERROR, "upstream timeout"))
        span.end(end_time=start + (20 + i) * 1_000_000)
    other = tracer.start_span("SELECT orders", start_time=start_ns, attributes={"db.system": "sqlite"})
    other.end(end_time=start_ns + 1_000_000)
    provider.shutdown()
    if CheckedExporter.failed:
        print(f"{CheckedExporter.failed} span(s) were not accepted", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
