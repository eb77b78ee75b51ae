"""The pieces of benchmarks/bench_proxy.py: the floor and GC-probe mitmproxy scripts, the
datasets and request lists, the loader, the proxy processes under test and the result table."""
