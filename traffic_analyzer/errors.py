"""Errors a user can act on: the command line prints them as one line, no traceback."""


class AnalyzerError(Exception):
    """A problem with the input, the configuration or the machine, explained in one line."""


class ConfigError(AnalyzerError):
    """A setting has a value the analyzer cannot use; the message names the setting."""


class CaptureError(AnalyzerError):
    """Capturing or reading packets failed (missing file, no permission, no tshark...)."""


class TruncatedCaptureError(CaptureError):
    """The capture file ended in the middle of a packet; what came before it was analysed."""
