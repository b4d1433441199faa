"""From metrics and models to what a person reads: tables (:mod:`ld.results.tables`), the paper's tables
(:mod:`ld.results.paper`), the ambiguity analysis (:mod:`ld.results.analysis`), executed notebooks
(:mod:`ld.results.notebooks`) and HTML reports (:mod:`ld.results.report`)."""
