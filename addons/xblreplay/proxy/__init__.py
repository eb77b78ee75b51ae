"""The proxy's per-request policy, free of mitmproxy: what a request for the host gets
(:mod:`.policy`), what is done with its response (:mod:`.responses`), what is logged about it
(:mod:`.logline`), under the configuration in force (:mod:`.configuration`), built from the
checked option values (:mod:`.options`, the option table); an exchange is plain data
(:mod:`.state`). The mitmproxy addon (``mitm/addon.py``) only translates flows to and from these
and carries out the outcome."""

from .configuration import Configuration, build, loaded_line
from .logline import close_log, log_exchange
from .policy import RECORD_CODES, Outcome, Policy
from .responses import judge
from .state import FlowState, Reply, exchange, exchange_secrets, shown_url

__all__ = [
    "Configuration",
    "FlowState",
    "Outcome",
    "Policy",
    "RECORD_CODES",
    "Reply",
    "build",
    "close_log",
    "exchange",
    "exchange_secrets",
    "judge",
    "loaded_line",
    "log_exchange",
    "shown_url",
]
