"""No FunctionApp at all."""

app = object()
