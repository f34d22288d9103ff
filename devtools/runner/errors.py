"""Errors the runner raises; each names one reason the app cannot be served as asked."""

from __future__ import annotations


class RunnerError(Exception):
    """Base class: something about the app or its configuration stops the runner."""


class SettingsError(RunnerError):
    """The settings file is unreadable, or a `%NAME%` placeholder names no setting."""


class HostConfigError(RunnerError):
    """host.json is unreadable or has a value of the wrong shape."""


class AppLoadError(RunnerError):
    """The `module:attr` target cannot be imported or is not a FunctionApp."""


class AppIndexError(RunnerError):
    """The app's functions cannot be served: duplicates, bad routes, unsupported bindings."""


class OutputDeliveryError(RunnerError):
    """An output binding's value could not be encoded or sent after a successful run."""
