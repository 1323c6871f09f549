"""Running locusd as a per-user service: a systemd user unit on Linux, a launchd LaunchAgent on
macOS (``locus daemon install|uninstall|start|stop|status|logs``; docs/daemon-service.md).

Three layers, so that each can be tested on its own: :mod:`~locusd.service.units` renders the
files (pure), :mod:`~locusd.service.control` knows where they go and which commands manage the
service (pure), :mod:`~locusd.service.install` writes files and runs ``systemctl``/``launchctl``.
"""

from locusd.service.control import (
    ServiceError,
    ServiceKind,
    config_home,
    detect,
    environment_file,
    format_command,
    launchd_log_dir,
    logs_command,
    restart_command,
    service_path,
    start_command,
    status_command,
    stop_command,
)
from locusd.service.install import (
    InstallResult,
    default_environment,
    default_exec_args,
    install,
    uninstall,
)
from locusd.service.units import (
    LAUNCHD_LABEL,
    SYSTEMD_UNIT_NAME,
    launchd_plist,
    quote_exec_args,
    systemd_unit,
)

__all__ = [
    "LAUNCHD_LABEL",
    "SYSTEMD_UNIT_NAME",
    "InstallResult",
    "ServiceError",
    "ServiceKind",
    "config_home",
    "default_environment",
    "default_exec_args",
    "detect",
    "environment_file",
    "format_command",
    "install",
    "launchd_log_dir",
    "launchd_plist",
    "logs_command",
    "quote_exec_args",
    "restart_command",
    "service_path",
    "start_command",
    "status_command",
    "stop_command",
    "systemd_unit",
    "uninstall",
]
