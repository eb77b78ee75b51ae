"""Reports on cassettes and runs: what the cassettes cover and how old it is (`xblreplay report`),
a dataset as a table (`xblreplay show`), and the HTML report of a validation log.

Modules: coverage (the coverage and staleness facts), show (a dataset as the engine answers it),
tables (rich on a terminal, plain aligned text elsewhere), cli (the subcommands' arguments and runs).
"""
