"""Reports on cassettes and runs: what the cassettes cover and how old it is (`xblreplay report
DIR`), a dataset as a table (`xblreplay show`), and the HTML report of a validation log
(`xblreplay report --log FILE --html OUT`).

Modules: coverage (coverage and staleness facts), show (a dataset as the engine answers it), tables
(rich on a terminal, plain aligned lines in a pipe), cli (the `report` and `show` subcommands);
logread, html, svg and cli_html (the HTML report).
"""
