"""Traffic policy per caller: R10 rate limiting (throttle), the live call-pattern checks
(patterns), both over one sliding window (window) with the thresholds of rules/limits.yaml
(limits), and who a request counts for (keys)."""

from .keys import caller_key
from .limits import (
    DEFAULT_LIMITS, DEFAULT_MAX_CALLERS, DEFAULT_MAX_REQUESTS, LimitsError, load_limits, tracking_caps,
)
from .patterns import CODES, CallPatterns, retry_after_seconds
from .throttle import Throttle
from .window import add_capped

__all__ = [
    "CODES", "DEFAULT_LIMITS", "DEFAULT_MAX_CALLERS", "DEFAULT_MAX_REQUESTS", "CallPatterns", "LimitsError",
    "Throttle", "add_capped", "caller_key", "load_limits", "retry_after_seconds", "tracking_caps",
]
