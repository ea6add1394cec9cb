"""What the tests and the benchmarks share.

Throwaway servers (``servers``, ``live_server``), the app as production runs it and as the
README's first command starts it (``prod_app``), a Reflex websocket client (``reflex_socket``),
the secret scan (``capture``, ``secret_scan``), tables put straight into the app's database
(``database``), waiting for a condition (``waiting``), a sleep to inject that does not wait
(``sleeps``), where things are (``paths``), how a benchmark records its machine and its
figures (``machine``) and how bench/README.md sums them
up (``bench_summary``), and the README's screenshot (``screenshot``). ``bench/`` imports from
here (and the fakes in ``tests/fakes/``), never from the test modules; nothing in ``tests/``
imports ``bench/`` (tests/unit/test_test_layout.py checks both).
"""
