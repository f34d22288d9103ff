"""The host <-> worker messages, as plain Python objects, for driving `azure-functions-runtime`.

The Functions host talks to the Python worker over gRPC with the messages of Microsoft's public
language-worker contract. `azure_functions_runtime` never builds those classes itself: the
host side hands it a `protos` namespace in each request's `properties` and it constructs its
answers from that. This module is that namespace, written from the contract's field names
(nothing generated from, or copied out of, Microsoft's .proto files): every message is a
keyword-constructed object whose unset fields read as the contract's defaults, and the
`oneof` groups the worker inspects answer `WhichOneof` as protobuf messages do.
"""

from __future__ import annotations

from typing import Any, ClassVar

_LIST = list
_DICT = dict


class Message:
    """A protobuf-like message: keyword fields, defaults for unset ones, `WhichOneof`."""

    FIELDS: ClassVar[dict[str, Any]] = {}
    ONEOFS: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, **fields: Any) -> None:
        unknown = set(fields) - set(self.FIELDS)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        self._set: set[str] = set()
        for name, default in self.FIELDS.items():
            if name in fields and fields[name] is not None:
                value = fields[name]
                self._set.add(name)
            elif default is _LIST:
                value = []
            elif default is _DICT:
                value = {}
            else:
                value = default
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in self.FIELDS:
            self._set.add(name)

    def WhichOneof(self, group: str) -> str | None:
        for name in self.ONEOFS.get(group, ()):
            if name in self._set:
                return name
        return None

    def HasField(self, name: str) -> bool:
        return name in self._set

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.FIELDS if n in self._set)
        return f"{type(self).__name__}({shown})"


# -- values ------------------------------------------------------------------------------


class NullableString(Message):
    FIELDS = {"value": ""}


class NullableBool(Message):
    FIELDS = {"value": False}


class NullableDouble(Message):
    FIELDS = {"value": 0.0}


class Timestamp(Message):
    FIELDS = {"seconds": 0, "nanos": 0}


class NullableTimestamp(Message):
    FIELDS = {"value": None}


class CollectionBytes(Message):
    FIELDS = {"bytes": _LIST}


class CollectionString(Message):
    FIELDS = {"string": _LIST}


class CollectionDouble(Message):
    FIELDS = {"double": _LIST}


class CollectionSInt64(Message):
    FIELDS = {"sint64": _LIST}


class ModelBindingData(Message):
    """What the host sends for an SDK-type binding: the extension decodes `content`."""

    FIELDS = {"version": "", "source": "", "content_type": "", "content": b""}


class CollectionModelBindingData(Message):
    FIELDS = {"model_binding_data": _LIST}


class _SameSite:
    # Enum values of the cookie's same-site attribute ("None" is a Python keyword's twin).
    Lax = 1
    Strict = 2
    ExplicitNone = 3


setattr(_SameSite, "None", 0)


class RpcHttpCookie(Message):
    FIELDS = {
        "name": "",
        "value": "",
        "domain": None,
        "path": None,
        "expires": None,
        "secure": None,
        "http_only": None,
        "same_site": 0,
        "max_age": None,
    }
    SameSite = _SameSite


class RpcHttp(Message):
    FIELDS = {
        "method": "",
        "url": "",
        "headers": _DICT,
        "body": None,
        "params": _DICT,
        "status_code": "",
        "query": _DICT,
        "enable_content_negotiation": False,
        "raw_body": None,
        "identities": _LIST,
        "cookies": _LIST,
        "nullable_headers": _DICT,
        "nullable_params": _DICT,
        "nullable_query": _DICT,
    }


class TypedData(Message):
    """One value on the wire; exactly one member of the `data` group is set."""

    FIELDS = {
        "string": "",
        "json": "",
        "bytes": b"",
        "stream": b"",
        "http": None,
        "int": 0,
        "double": 0.0,
        "collection_bytes": None,
        "collection_string": None,
        "collection_double": None,
        "collection_sint64": None,
        "model_binding_data": None,
        "collection_model_binding_data": None,
    }
    ONEOFS = {"data": tuple(FIELDS)}


class ParameterBinding(Message):
    FIELDS = {"name": "", "data": None, "rpc_shared_memory": None}
    ONEOFS = {"rpc_data": ("data", "rpc_shared_memory")}


# -- metadata ----------------------------------------------------------------------------


class BindingInfo(Message):
    FIELDS = {"type": "", "direction": 0, "data_type": 0, "properties": _DICT}
    out = 1
    inout = 2
    undefined = 0
    string = 1
    binary = 2
    stream = 3


setattr(BindingInfo, "in", 0)


class RpcRetryOptions(Message):
    FIELDS = {
        "max_retry_count": 0,
        "delay_interval": None,
        "minimum_interval": None,
        "maximum_interval": None,
        "retry_strategy": "",
    }


class RpcFunctionMetadata(Message):
    FIELDS = {
        "name": "",
        "directory": "",
        "script_file": "",
        "entry_point": "",
        "bindings": _DICT,
        "is_proxy": False,
        "status": None,
        "language": "",
        "raw_bindings": _LIST,
        "function_id": "",
        "managed_dependency_enabled": False,
        "retry_options": None,
        "properties": _DICT,
    }


class RpcException(Message):
    FIELDS = {"source": "", "stack_trace": "", "message": "", "is_user_exception": False}


class StatusResult(Message):
    FIELDS = {"status": 0, "result": "", "exception": None, "logs": _LIST}
    Failure = 0
    Success = 1
    Cancelled = 2


class WorkerMetadata(Message):
    FIELDS = {
        "runtime_name": "",
        "runtime_version": "",
        "worker_version": "",
        "worker_bitness": "",
        "custom_properties": _DICT,
    }


# -- requests (host -> worker) -------------------------------------------------------------


class WorkerInitRequest(Message):
    FIELDS = {
        "host_version": "",
        "capabilities": _DICT,
        "log_categories": _DICT,
        "worker_directory": "",
        "function_app_directory": "",
    }


class FunctionsMetadataRequest(Message):
    FIELDS = {"function_app_directory": ""}


class FunctionLoadRequest(Message):
    FIELDS = {"function_id": "", "metadata": None, "managed_dependency_enabled": False}


class FunctionEnvironmentReloadRequest(Message):
    FIELDS = {
        "environment_variables": _DICT,
        "function_app_directory": "",
    }


class RpcTraceContext(Message):
    FIELDS = {"trace_parent": "", "trace_state": "", "attributes": _DICT}


class RetryContext(Message):
    FIELDS = {"retry_count": 0, "max_retry_count": 0, "exception": None}


class InvocationRequest(Message):
    FIELDS = {
        "invocation_id": "",
        "function_id": "",
        "input_data": _LIST,
        "trigger_metadata": _DICT,
        "trace_context": None,
        "retry_context": None,
    }


class StreamingMessage(Message):
    """The envelope: the worker reads `request.<kind>_request` and nothing else of it."""

    FIELDS = {
        "request_id": "",
        "worker_init_request": None,
        "functions_metadata_request": None,
        "function_load_request": None,
        "function_environment_reload_request": None,
        "invocation_request": None,
    }
    ONEOFS = {"content": tuple(FIELDS)[1:]}


class WorkerRequest:
    """What the worker's handlers take: the message plus the host's `properties`."""

    def __init__(self, request: StreamingMessage, properties: dict[str, Any]) -> None:
        self.request = request
        self.properties = properties


# -- responses (worker -> host) --------------------------------------------------------------


class WorkerInitResponse(Message):
    FIELDS = {
        "worker_version": "",
        "capabilities": _DICT,
        "result": None,
        "worker_metadata": None,
    }


class FunctionMetadataResponse(Message):
    FIELDS = {
        "function_metadata_results": _LIST,
        "result": None,
        "use_default_metadata_indexing": False,
    }


class FunctionLoadResponse(Message):
    FIELDS = {"function_id": "", "result": None, "is_dependency_downloaded": False}


class FunctionEnvironmentReloadResponse(Message):
    FIELDS = {"worker_metadata": None, "capabilities": _DICT, "result": None}


class InvocationResponse(Message):
    FIELDS = {"invocation_id": "", "output_data": _LIST, "return_value": None, "result": None}
