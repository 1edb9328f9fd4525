"""Build the one Resource that traces, metrics and logs share."""

from __future__ import annotations

import os
import platform
import socket
import sys
import uuid

from opentelemetry.sdk.resources import Resource

from .._version import __version__
from ..config import Settings
from ..redaction import default_redactor


def new_instance_id() -> str:
    return str(uuid.uuid4())


def build_resource(settings: Settings, instance_id: str | None = None) -> Resource:
    """Identity, host and process attributes; never the command line (it may hold secrets)."""
    attrs: dict[str, str | int] = {
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.distro.name": "tradeobs",
        "telemetry.distro.version": __version__,
        "host.name": socket.gethostname(),
        "host.arch": platform.machine(),
        "os.type": sys.platform,
        "process.pid": os.getpid(),
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "process.executable.name": os.path.basename(sys.executable),
    }
    # Free-form attributes (OTEL_RESOURCE_ATTRIBUTES) may carry a secret: masked like any attribute.
    attrs.update(default_redactor().attributes(settings.resource_attributes))
    # Explicit identity settings win over the free-form attribute map.
    attrs.update(
        {
            "service.name": settings.service_name,
            "service.version": settings.service_version,
            "service.instance.id": instance_id or new_instance_id(),
            "deployment.environment": settings.environment,
            "deployment.environment.name": settings.environment,
            "trading.mode": settings.trading_mode,
        }
    )
    try:
        from opentelemetry.sdk.version import __version__ as sdk_version

        attrs["telemetry.sdk.version"] = sdk_version
    except ImportError:  # pragma: no cover
        pass
    return Resource(attrs)
