"""One root for every error sitsense raises on purpose; leaves also inherit a builtin."""


class SitsenseError(Exception):
    """Root of all sitsense errors; the CLI prints its message as one line."""

    exit_code = 1


class ConfigError(SitsenseError, ValueError):
    """Error raised when a config file or setting is invalid."""

    exit_code = 78  # EX_CONFIG: systemd's RestartPreventExitStatus uses it


class TraceError(SitsenseError, ValueError):
    """Error raised when a trace file cannot be read or is malformed."""

    exit_code = 65  # EX_DATAERR


class DatasetError(SitsenseError, ValueError):
    """Error raised when a HAPT-layout folder is missing or malformed."""

    exit_code = 66  # EX_NOINPUT


class PlanError(SitsenseError, ValueError):
    """Error raised when a scenario plan string cannot be understood."""

    exit_code = 64  # EX_USAGE


class SensorError(SitsenseError, OSError):
    """Base for errors about the accelerometer or its bus."""

    exit_code = 69  # EX_UNAVAILABLE


class SensorNotFound(SensorError):
    """Error raised when no supported accelerometer answers on the bus."""


class SensorAccessDenied(SensorError, PermissionError):
    """Error raised when the I2C device node exists but this user may not open it."""


class CalibrationError(SitsenseError, ValueError):
    """Error raised when the wearer was not still and upright enough for a reference."""

    exit_code = 75  # EX_TEMPFAIL: try again


class ModelError(SitsenseError, ValueError):
    """Error raised when a posture model file is missing or malformed."""


class StoreError(SitsenseError, OSError):
    """Error raised when the state database cannot be used."""


class OutputError(SitsenseError, RuntimeError):
    """Error raised when an output (buzzer, MQTT) is misconfigured."""


class MqttSettingError(ConfigError, OutputError):
    """Error raised when an MQTT setting cannot work (credentials, TLS files): a config error, exit 78."""


class NothingToReport(SitsenseError, LookupError):
    """Error raised when there is no recorded day to report on (none stored, or a trace too short)."""

    exit_code = 66  # EX_NOINPUT: not a configuration problem (that is 78)
